"""The closed set of providers Switchyard can call: for each, its adapter, the environment
variables holding its credentials, and its public base URL.

Endpoint rule (``endpoint_for``), in order:

1. ``<PREFIX>_API_KEY`` set: the real vendor, at ``<PREFIX>_BASE_URL`` or the default base URL.
2. No key but ``<PREFIX>_BASE_URL`` set: that URL, without credentials, not simulated. This is
   how a keyless local server is used (vLLM, Ollama, llama.cpp speak the OpenAI protocol).
3. Neither: Switchyard's vendor simulator, and everything it answers is labelled simulated.

The variable names are the vendors' own SDK names (``OPENAI_API_KEY``, ``ANTHROPIC_BASE_URL``),
so an environment that already works with a vendor's SDK works here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from services.workers.providers.anthropic import AnthropicAdapter
from services.workers.providers.base import ProviderAdapter, ProviderEndpoint
from services.workers.providers.openai_compat import (
    GENERIC_DIALECT,
    MISTRAL_DIALECT,
    OPENAI_DIALECT,
    OpenAICompatAdapter,
)

__all__ = [
    "PROVIDERS",
    "ProviderSpec",
    "UnknownProviderError",
    "adapter_for",
    "endpoint_for",
    "spec_for",
]

WireProtocol = Literal["openai", "anthropic"]


@dataclass(frozen=True, kw_only=True)
class ProviderSpec:
    name: str
    protocol: WireProtocol  # also decides the simulator path: OpenAI-style URLs end in /v1
    adapter: ProviderAdapter
    env_prefix: str  # "OPENAI" -> OPENAI_API_KEY, OPENAI_BASE_URL
    default_base_url: str


def _openai_style(name: str, prefix: str, url: str, adapter: OpenAICompatAdapter) -> ProviderSpec:
    return ProviderSpec(
        name=name, protocol="openai", adapter=adapter, env_prefix=prefix, default_base_url=url
    )


_GENERIC = OpenAICompatAdapter(GENERIC_DIALECT)

PROVIDERS: Mapping[str, ProviderSpec] = {
    spec.name: spec
    for spec in (
        _openai_style(
            "openai", "OPENAI", "https://api.openai.com/v1", OpenAICompatAdapter(OPENAI_DIALECT)
        ),
        ProviderSpec(
            name="anthropic",
            protocol="anthropic",
            adapter=AnthropicAdapter(),
            env_prefix="ANTHROPIC",
            default_base_url="https://api.anthropic.com",
        ),
        _openai_style("deepseek", "DEEPSEEK", "https://api.deepseek.com/v1", _GENERIC),
        _openai_style(
            "mistral", "MISTRAL", "https://api.mistral.ai/v1", OpenAICompatAdapter(MISTRAL_DIALECT)
        ),
        _openai_style("xai", "XAI", "https://api.x.ai/v1", _GENERIC),
        _openai_style("moonshot", "MOONSHOT", "https://api.moonshot.ai/v1", _GENERIC),
        _openai_style(
            "dashscope",
            "DASHSCOPE",
            "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
            _GENERIC,
        ),
        _openai_style("zai", "ZAI", "https://api.z.ai/api/paas/v4", _GENERIC),
        _openai_style("minimax", "MINIMAX", "https://api.minimax.io/v1", _GENERIC),
        _openai_style(
            "gemini", "GEMINI", "https://generativelanguage.googleapis.com/v1beta/openai", _GENERIC
        ),
    )
}


class UnknownProviderError(KeyError):
    def __init__(self, provider: str) -> None:
        super().__init__(provider)
        self.provider = provider

    def __str__(self) -> str:
        return f"unknown provider {self.provider!r}; known: {', '.join(sorted(PROVIDERS))}"


def spec_for(provider: str) -> ProviderSpec:
    try:
        return PROVIDERS[provider]
    except KeyError:
        raise UnknownProviderError(provider) from None


def adapter_for(provider: str) -> ProviderAdapter:
    return spec_for(provider).adapter


def endpoint_for(provider: str, environ: Mapping[str, str], simulator_url: str) -> ProviderEndpoint:
    """Where to call ``provider``, by the rule in the module docstring. ``environ`` is passed in
    (not read here) so a service reads its environment once, in its factory."""
    spec = spec_for(provider)
    api_key = environ.get(f"{spec.env_prefix}_API_KEY", "").strip() or None
    base_url = environ.get(f"{spec.env_prefix}_BASE_URL", "").strip().rstrip("/") or None
    if api_key is not None or base_url is not None:
        return ProviderEndpoint(
            provider=provider,
            base_url=base_url or spec.default_base_url,
            api_key=api_key,
            simulated=False,
        )
    simulator = simulator_url.rstrip("/")
    return ProviderEndpoint(
        provider=provider,
        base_url=f"{simulator}/v1" if spec.protocol == "openai" else simulator,
        api_key=None,
        simulated=True,
    )
