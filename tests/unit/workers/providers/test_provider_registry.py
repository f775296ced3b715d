"""The closed provider set and the endpoint rule."""

from __future__ import annotations

import pytest

from contracts.topics import PROVIDERS as DISPATCHED_PROVIDERS
from services.workers.providers import PROVIDERS, UnknownProviderError, adapter_for, endpoint_for
from services.workers.providers.anthropic import AnthropicAdapter
from services.workers.providers.base import ProviderEndpoint
from services.workers.providers.openai_compat import (
    MISTRAL_DIALECT,
    OPENAI_DIALECT,
    OpenAICompatAdapter,
)

SIMULATOR = "http://127.0.0.1:8700/"


def test_every_dispatched_provider_has_an_adapter_and_no_more() -> None:
    assert set(PROVIDERS) == set(DISPATCHED_PROVIDERS)


def test_adapters_and_dialects() -> None:
    assert isinstance(adapter_for("anthropic"), AnthropicAdapter)
    openai = adapter_for("openai")
    assert isinstance(openai, OpenAICompatAdapter)
    assert openai.dialect == OPENAI_DIALECT
    mistral = adapter_for("mistral")
    assert isinstance(mistral, OpenAICompatAdapter)
    assert mistral.dialect == MISTRAL_DIALECT
    for name in ("deepseek", "xai", "moonshot", "dashscope", "zai", "minimax", "gemini"):
        assert isinstance(adapter_for(name), OpenAICompatAdapter)


def test_unknown_provider() -> None:
    with pytest.raises(UnknownProviderError) as caught:
        adapter_for("openia")
    assert isinstance(caught.value, KeyError)
    assert "unknown provider 'openia'" in str(caught.value)
    assert "openai" in str(caught.value)
    with pytest.raises(UnknownProviderError):
        endpoint_for("openia", {}, SIMULATOR)


@pytest.mark.parametrize(
    ("provider", "prefix", "default"),
    [
        ("openai", "OPENAI", "https://api.openai.com/v1"),
        ("anthropic", "ANTHROPIC", "https://api.anthropic.com"),
        ("deepseek", "DEEPSEEK", "https://api.deepseek.com/v1"),
        ("mistral", "MISTRAL", "https://api.mistral.ai/v1"),
        ("xai", "XAI", "https://api.x.ai/v1"),
        ("moonshot", "MOONSHOT", "https://api.moonshot.ai/v1"),
        ("dashscope", "DASHSCOPE", "https://dashscope-intl.aliyuncs.com/compatible-mode/v1"),
        ("zai", "ZAI", "https://api.z.ai/api/paas/v4"),
        ("minimax", "MINIMAX", "https://api.minimax.io/v1"),
        ("gemini", "GEMINI", "https://generativelanguage.googleapis.com/v1beta/openai"),
    ],
)
def test_key_selects_the_real_vendor(provider: str, prefix: str, default: str) -> None:
    environ = {f"{prefix}_API_KEY": "k-123"}
    assert endpoint_for(provider, environ, SIMULATOR) == ProviderEndpoint(
        provider=provider, base_url=default, api_key="k-123", simulated=False
    )
    override = {**environ, f"{prefix}_BASE_URL": "https://proxy.example.com/v1/"}
    endpoint = endpoint_for(provider, override, SIMULATOR)
    assert endpoint.base_url == "https://proxy.example.com/v1"
    assert endpoint.api_key == "k-123"


def test_no_key_means_the_simulator() -> None:
    openai = endpoint_for("openai", {}, SIMULATOR)
    assert openai == ProviderEndpoint(
        provider="openai", base_url="http://127.0.0.1:8700/v1", api_key=None, simulated=True
    )
    anthropic = endpoint_for("anthropic", {"ANTHROPIC_API_KEY": "  "}, SIMULATOR)
    assert anthropic.base_url == "http://127.0.0.1:8700"
    assert anthropic.simulated


def test_base_url_without_key_is_a_keyless_real_server() -> None:
    environ = {"OPENAI_BASE_URL": "http://localhost:11434/v1"}
    assert endpoint_for("openai", environ, SIMULATOR) == ProviderEndpoint(
        provider="openai", base_url="http://localhost:11434/v1", api_key=None, simulated=False
    )


def test_one_providers_key_does_not_leak_to_another() -> None:
    endpoint = endpoint_for("deepseek", {"OPENAI_API_KEY": "sk-1"}, SIMULATOR)
    assert endpoint.simulated
    assert endpoint.api_key is None
