"""How long automatic model choice takes, in-process, split where the services split it:

- ingress reads the prompt's features (``services.common.prompt_features.features_of``);
- the router ranks the candidates from them (``CataloguePlanner.plan`` under a policy; no Kafka,
  no Redis: the circuits and live-worker views it reads are in-memory snapshots there too).

Prompts: this project's own labelled task prompts (``scripts/routing_data``, not the evaluation
hold-out), as they are and pasted into long documents of 50,000 and 400,000 characters, with
images and tools on some. Prints p50/p99/max per stage and the resident memory the models add.

    .local/venv/bin/python scripts/bench_decision.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from contracts.catalogue import default_catalogue  # noqa: E402
from contracts.chat import ChatRequest, ImagePart, Message, Role, TextPart, ToolSpec  # noqa: E402
from services.common import prompt_features  # noqa: E402
from services.common.routing_config import RoutingConfig  # noqa: E402
from services.router.auto import AutoChooser  # noqa: E402
from services.router.evaluation.decision import decision_envelope  # noqa: E402
from services.router.planning import CataloguePlanner  # noqa: E402

POLICIES = ("auto:balanced", "auto:cheap", "auto:best", "auto:fast")


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def requests() -> list[ChatRequest]:
    texts = [
        json.loads(line)["prompt"]
        for path in sorted((REPO / "scripts" / "routing_data").glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    rng = random.Random(3)
    chats: list[ChatRequest] = []
    for i, text in enumerate(texts):
        parts: list[TextPart | ImagePart] = [TextPart(text=text)]
        if i % 10 == 0:
            parts.append(ImagePart(url="https://example.com/cat.png"))
        tools = [ToolSpec(name="lookup", description="look a thing up")] if i % 10 == 1 else []
        chats.append(ChatRequest(messages=[Message(role=Role.USER, content=parts)], tools=tools))
    for size in (50_000, 400_000):
        for _ in range(20):
            document = " ".join(rng.choices(texts, k=size // 100))[:size]
            ask = "Summarise the document above in five bullet points."
            chats.append(
                ChatRequest(
                    messages=[
                        Message(role=Role.USER, content=[TextPart(text=f"{document}\n\n{ask}")])
                    ]
                )
            )
    return chats


def summary(name: str, samples_ns: list[int]) -> str:
    ordered = sorted(samples_ns)
    n = len(ordered)

    def at(q: float) -> float:
        return ordered[min(n - 1, max(0, round(q * n) - 1))] / 1e6

    return f"{name:34} {n:7} {at(0.5):9.3f} {at(0.99):9.3f} {ordered[-1] / 1e6:9.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    before = rss_mib()
    started = time.perf_counter()
    prompt_features.warm()
    print(
        f"models loaded in {time.perf_counter() - started:.2f} s, "
        f"+{rss_mib() - before:.0f} MiB resident"
    )
    chats = requests()
    catalogue = default_catalogue()
    config = RoutingConfig()
    planner = CataloguePlanner(catalogue, lambda: config, chooser=AutoChooser(catalogue))
    features_ns: list[int] = []
    long_features_ns: list[int] = []
    plan_ns: list[int] = []
    for _ in range(args.rounds):
        for i, chat in enumerate(chats):
            t0 = time.perf_counter_ns()
            features = prompt_features.features_of(chat)
            t1 = time.perf_counter_ns()
            envelope = decision_envelope(POLICIES[i % len(POLICIES)], features)
            t2 = time.perf_counter_ns()
            planner.plan(envelope)
            t3 = time.perf_counter_ns()
            (long_features_ns if features.prompt_tokens > 5_000 else features_ns).append(t1 - t0)
            plan_ns.append(t3 - t2)
    print(f"{'stage':34} {'calls':>7} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9}")
    print(summary("ingress: features, short prompts", features_ns))
    print(summary("ingress: features, long documents", long_features_ns))
    print(summary("router: plan under a policy", plan_ns))


if __name__ == "__main__":
    main()
