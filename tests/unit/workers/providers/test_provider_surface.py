"""The providers package's public surface, pinned (as httpx pins its exported members)."""

from __future__ import annotations

import services.workers.providers as providers
from services.workers.providers import ProviderAdapter, StreamDecoder
from services.workers.providers.anthropic import AnthropicAdapter
from services.workers.providers.openai_compat import OpenAICompatAdapter


def test_exported_members() -> None:
    assert sorted(providers.__all__) == [
        "PROVIDERS",
        "ProviderAdapter",
        "ProviderEndpoint",
        "ProviderError",
        "ProviderSpec",
        "RequestTranslationError",
        "StreamDecoder",
        "UnknownProviderError",
        "VendorProtocolError",
        "VendorRequest",
        "VendorStreamError",
        "adapter_for",
        "classify_transport_error",
        "endpoint_for",
    ]
    assert all(hasattr(providers, name) for name in providers.__all__)


def test_adapters_satisfy_the_protocols() -> None:
    # Checked by mypy through these annotations; the asserts keep pytest honest too.
    adapters: list[ProviderAdapter] = [OpenAICompatAdapter(), AnthropicAdapter()]
    for adapter in adapters:
        decoder: StreamDecoder = adapter.stream_decoder()
        assert decoder.finished is False
        assert adapter.stream_decoder() is not decoder  # a fresh decoder per stream
