"""The decision ``switchyard routing eval`` times: what ingress reads of a prompt and what the
router then chooses under a policy, one after the other, in one process (no Kafka between)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from contracts._base import now_ms
from contracts.catalogue import default_catalogue
from contracts.envelope import ClientProtocol, Mode, RequestEnvelope
from contracts.features import RequestFeatures
from contracts.sealing import SealedBody
from services.common.prompt_features import text_features
from services.common.routing_config import RoutingConfig
from services.router.auto import AutoChooser, NoCandidate


def decision_envelope(policy_name: str, features: RequestFeatures | None = None) -> RequestEnvelope:
    """An envelope that asks for ``policy_name``, for deciding outside the services."""
    return RequestEnvelope(
        request_id="eval",
        tenant="eval",
        key_id="eval",
        client_protocol=ClientProtocol.OPENAI_CHAT,
        mode=Mode.SYNC,
        requested_model=policy_name,
        prompt_tokens_estimate=features.prompt_tokens if features else None,
        features=features,
        sealed_body=SealedBody(nonce="", ciphertext=""),
        created_at_ms=now_ms(),
        deadline_ms=now_ms(),
    )


def full_decision(policy_name: str = "auto:balanced") -> Callable[[str], RequestFeatures]:
    """Features of a prompt, then the ranking of every candidate under ``policy_name`` (with the
    shipped quality table and no observed latencies); returns the features it decided on."""
    config = RoutingConfig()
    policy = config.policy(policy_name)
    if policy is None:
        raise ValueError(f"unknown policy {policy_name!r}")
    chooser = AutoChooser(default_catalogue())
    envelope = decision_envelope(policy_name)

    def decide(text: str) -> RequestFeatures:
        features = text_features(text)
        with contextlib.suppress(NoCandidate):  # counted all the same: it was decided
            chooser.choose(envelope, features, policy, config)
        return features

    return decide
