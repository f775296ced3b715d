"""Build ``contracts/data/catalogue.json`` from LiteLLM's public price file.

Usage: ``python scripts/build_catalogue.py [SOURCE] [--out PATH] [--check]``

This script owns the translation from LiteLLM's loosely typed rows to our ``ModelCard``s:
which rows are our providers' chat models, how USD-per-token floats become exact Decimal USD
per million tokens, which aliases a card gets. The output is deterministic (cards sorted by
canonical id, aliases sorted, no timestamps), so rebuilding from the same source gives the same
bytes and a test can tell when the shipped file is stale.

The source is third-party data with odd rows (strings for numbers, nulls, tiered prices, rows
that are documentation). A row that cannot be read as a chat model is skipped, and a field that
cannot be read is left unknown: the build never fails on one bad row.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path

from contracts.catalogue import Capabilities, ModelCard, Prices
from contracts.topics import PROVIDERS

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO_ROOT / ".." / "shared" / "data" / "model_prices_and_context_window.json"
DEFAULT_OUT = REPO_ROOT / "contracts" / "data" / "catalogue.json"
UPSTREAM = "BerriAI/litellm model_prices_and_context_window.json"

# LiteLLM's `litellm_provider` for each vendor's own API. Cloud resellers of the same models
# (vertex_ai-*, bedrock, azure, ...) are other providers to us and are left out.
LITELLM_PROVIDERS: Mapping[str, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "gemini": "gemini",  # Google AI Studio; vertex_ai-* is Vertex, not this API
    "deepseek": "deepseek",
    "mistral": "mistral",
    "xai": "xai",
    "moonshot": "moonshot",
    "dashscope": "dashscope",
    "zai": "zai",
    "minimax": "minimax",
}
if set(LITELLM_PROVIDERS.values()) != set(PROVIDERS):
    raise RuntimeError("LITELLM_PROVIDERS must map onto contracts.topics.PROVIDERS exactly")

# Vendor namespaces other routers (OpenRouter, Vertex) use for our providers' models, so a name
# pasted from there ("google/gemini-2.5-flash") resolves. Ours differ from theirs only here.
FOREIGN_NAMESPACES: Mapping[str, tuple[str, ...]] = {
    "gemini": ("google",),
    "xai": ("x-ai",),
    "mistral": ("mistralai",),
    "moonshot": ("moonshotai",),
    "zai": ("z-ai",),
}

# Rows without a `mode` are chat only if they look like it; these name parts say they are not.
NOT_CHAT_MARKERS = (
    *("embed", "tts", "whisper", "transcribe", "dall-e", "image"),
    *("moderation", "rerank", "realtime", "speech", "video"),
)

_PER_MILLION = Decimal(1_000_000)
_MAX_ALIAS_HOPS = 4


# --- reading loose fields -------------------------------------------------------------------


def per_million(value: object) -> Decimal | None:
    """USD per token (a float, an int or a numeric string) as exact USD per 1M tokens."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        # repr gives the shortest string that round-trips, i.e. the number the file wrote
        # ("2.5e-06"), not the binary float's long expansion.
        exact = Decimal(repr(value))
    elif isinstance(value, int):
        exact = Decimal(value)
    elif isinstance(value, str):
        try:
            exact = Decimal(value.strip())
        except InvalidOperation:
            return None
        if not exact.is_finite():
            return None
    else:
        return None
    if exact < 0:
        return None
    scaled = (exact * _PER_MILLION).normalize()
    # normalize() writes 10 as 1E+1; an integral price is stored with exponent 0 instead.
    return scaled.quantize(Decimal(1)) if scaled == scaled.to_integral_value() else scaled


def token_count(value: object) -> int | None:
    """A positive token count, from an int, an integral float or a digit string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    return value if isinstance(value, int) and value > 0 else None


def flag(row: Mapping[str, object], key: str) -> bool:
    return row.get(key) is True


def base_tier(row: Mapping[str, object]) -> Mapping[str, object]:
    """The first tier of a `tiered_pricing` list (the one starting at 0 tokens), if any.

    Long-context surcharges are not modelled by our schema, for tiered rows as for flat rows
    with `*_above_200k_tokens` keys: a card carries the price of a request of ordinary size.
    """
    tiers = row.get("tiered_pricing")
    if not isinstance(tiers, list):
        return {}
    for tier in tiers:
        if not isinstance(tier, dict):
            continue
        bounds = tier.get("range")
        if isinstance(bounds, list) and bounds and bounds[0] in (0, 0.0):
            return tier
    return {}


def prices_of(row: Mapping[str, object]) -> Prices:
    tier = base_tier(row)

    def price(*keys: str) -> Decimal | None:
        for key in keys:
            for source in (row, tier):
                found = per_million(source.get(key))
                if found is not None:
                    return found
        return None

    return Prices(
        input=price("input_cost_per_token"),
        output=price("output_cost_per_token"),
        # DeepSeek's rows spell the cached-input price `input_cost_per_token_cache_hit`.
        cache_read=price("cache_read_input_token_cost", "input_cost_per_token_cache_hit"),
        cache_write=price("cache_creation_input_token_cost"),
        batch_input=price("input_cost_per_token_batches"),
        batch_output=price("output_cost_per_token_batches"),
        batch_cache_read=price("cache_read_input_token_cost_batches"),
        batch_cache_write=price("cache_creation_input_token_cost_batches"),
    )


def capabilities_of(row: Mapping[str, object]) -> Capabilities:
    response_schema = flag(row, "supports_response_schema")
    return Capabilities(
        tools=flag(row, "supports_function_calling"),
        vision=flag(row, "supports_vision"),
        # LiteLLM has no JSON-object-mode flag. A model that follows a JSON schema can return
        # a plain JSON object, so json_mode follows response_schema; models with JSON mode but
        # no schema support (gpt-4-turbo) are missed, which errs on the side of not promising.
        json_mode=response_schema or flag(row, "supports_json_mode"),
        response_schema=response_schema,
        reasoning=flag(row, "supports_reasoning"),
        prompt_caching=flag(row, "supports_prompt_caching"),
    )


def is_chat(key: str, row: Mapping[str, object]) -> bool:
    mode = row.get("mode")
    if mode is not None:
        # "responses" rows are served by OpenAI's Responses API only, not Chat Completions.
        return mode == "chat"
    if any(marker in key.lower() for marker in NOT_CHAT_MARKERS):
        return False
    return per_million(row.get("output_cost_per_token")) is not None or flag(
        row, "supports_function_calling"
    )


# --- rows to cards --------------------------------------------------------------------------


def wire_id(key: str, litellm_provider: str) -> str:
    """The vendor's own id: the LiteLLM key without its `provider/` prefix."""
    prefix = f"{litellm_provider}/"
    return key[len(prefix) :] if key.startswith(prefix) else key


def _chat_rows(raw: Mapping[str, object]) -> dict[str, list[tuple[str, Mapping[str, object]]]]:
    """Our providers' chat rows, grouped by canonical id (LiteLLM often lists a model twice)."""
    groups: dict[str, list[tuple[str, Mapping[str, object]]]] = defaultdict(list)
    for key, row in raw.items():
        if not isinstance(key, str) or not isinstance(row, dict):
            continue
        litellm_provider = row.get("litellm_provider")
        if not isinstance(litellm_provider, str) or litellm_provider not in LITELLM_PROVIDERS:
            continue
        model = wire_id(key, litellm_provider)
        if not model or model != model.strip() or model.startswith("ft:"):
            continue  # fine-tune templates are not callable models
        if not is_chat(key, row):
            continue
        provider = LITELLM_PROVIDERS[litellm_provider]
        groups[f"{provider}/{model}"].append((key, row))
    return groups


def _preferred(
    canonical_id: str, rows: list[tuple[str, Mapping[str, object]]]
) -> Mapping[str, object]:
    # When LiteLLM lists a model under both "deepseek-chat" and "deepseek/deepseek-chat", the
    # provider-prefixed row wins whole (mixing fields of two rows would invent a model), then
    # the first key in sort order, so the choice does not depend on the file's row order.
    return min(rows, key=lambda kr: (kr[0] != canonical_id, kr[0]))[1]


def _alias_targets(
    raw: Mapping[str, object], card_of_key: Mapping[str, str]
) -> dict[str, set[str]]:
    """Aliases LiteLLM declares (`{"alias_of": key}` rows), as alias name -> canonical ids."""
    claims: dict[str, set[str]] = defaultdict(set)
    for key, row in raw.items():
        if not isinstance(key, str) or not isinstance(row, dict):
            continue
        target = row.get("alias_of")
        for _ in range(_MAX_ALIAS_HOPS):  # an alias of an alias, within reason
            if not isinstance(target, str) or target in card_of_key:
                break
            hop = raw.get(target)
            target = hop.get("alias_of") if isinstance(hop, dict) else None
        if not isinstance(target, str) or target not in card_of_key:
            continue
        canonical_id = card_of_key[target]
        provider = canonical_id.split("/", 1)[0]
        claims[key].add(canonical_id)
        # "xai/grok-latest" is also asked for as "grok-latest", and "claude-sonnet-latest" as
        # "anthropic/claude-sonnet-latest".
        bare = key.split("/", 1)[1] if key.startswith(f"{provider}/") else key
        claims[bare].add(canonical_id)
        claims[f"{provider}/{bare}"].add(canonical_id)
    return claims


def build_cards(raw: Mapping[str, object]) -> list[ModelCard]:
    """Every chat model of our providers in ``raw`` (LiteLLM's parsed file), sorted by id."""
    groups = _chat_rows(raw)
    card_of_key = {key: cid for cid, rows in groups.items() for key, _ in rows}

    claims: dict[str, set[str]] = defaultdict(set)
    for canonical_id, rows in groups.items():
        provider, model = canonical_id.split("/", 1)
        for key, _ in rows:
            claims[key].add(canonical_id)
        for namespace in FOREIGN_NAMESPACES.get(provider, ()):
            claims[f"{namespace}/{model}"].add(canonical_id)
    for alias, targets in _alias_targets(raw, card_of_key).items():
        claims[alias] |= targets

    # An alias must name one card and must not shadow a canonical or bare id; one claimed by
    # two cards is dropped from both rather than awarded by an order nobody chose.
    taken = set(groups) | {cid.split("/", 1)[1] for cid in groups}
    aliases: dict[str, list[str]] = defaultdict(list)
    for alias, targets in claims.items():
        if len(targets) == 1 and alias not in taken:
            aliases[next(iter(targets))].append(alias)

    cards = []
    for canonical_id in sorted(groups):
        provider, model = canonical_id.split("/", 1)
        row = _preferred(canonical_id, groups[canonical_id])
        cards.append(
            ModelCard(
                canonical_id=canonical_id,
                provider=provider,
                model=model,
                aliases=sorted(aliases[canonical_id]),
                context_window=token_count(row.get("max_input_tokens"))
                or token_count(row.get("max_tokens")),
                max_output_tokens=token_count(row.get("max_output_tokens")),
                prices=prices_of(row),
                capabilities=capabilities_of(row),
            )
        )
    return cards


def render(cards: Sequence[ModelCard], *, source_name: str, source_sha256: str) -> str:
    """The catalogue file's text: a header recording where the data came from, then cards."""
    document = {
        "schema_version": 1,
        "source": {"upstream": UPSTREAM, "file": source_name, "sha256": source_sha256},
        "count": len(cards),
        "count_by_provider": dict(sorted(Counter(c.provider for c in cards).items())),
        "models": [card.model_dump(mode="json") for card in cards],
    }
    return json.dumps(document, indent=1, ensure_ascii=True) + "\n"


def build(source: Path) -> str:
    data = source.read_bytes()
    raw = json.loads(data)
    if not isinstance(raw, dict):
        raise SystemExit(f"{source.name}: expected a JSON object of models")
    return render(
        build_cards(raw), source_name=source.name, source_sha256=hashlib.sha256(data).hexdigest()
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("source", nargs="?", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if --out differs from a fresh build"
    )
    args = parser.parse_args(argv)
    text = build(args.source)
    out: Path = args.out
    if args.check:
        current = out.read_text(encoding="utf-8") if out.exists() else None
        if current != text:
            print(f"{out} is out of date; rebuild with scripts/build_catalogue.py", file=sys.stderr)
            return 1
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(f"wrote {json.loads(text)['count']} models to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
