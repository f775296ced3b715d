"""The model catalogue: the shipped data, name resolution, and the build script."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from contracts.catalogue import (
    Capabilities,
    Catalogue,
    ModelCard,
    Prices,
    UnknownModel,
    default_catalogue,
)
from contracts.errors import ErrorCode
from contracts.plan import RouteReason
from contracts.topics import PROVIDERS
from scripts.build_catalogue import DEFAULT_SOURCE, build_cards, main, per_million

SHIPPED = Path(__file__).resolve().parents[3] / "contracts" / "data" / "catalogue.json"


def card(provider: str, model: str, *aliases: str, **fields: object) -> ModelCard:
    return ModelCard.model_validate(
        {
            "canonical_id": f"{provider}/{model}",
            "provider": provider,
            "model": model,
            "aliases": list(aliases),
            **fields,
        }
    )


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return default_catalogue()


# --- the shipped data ------------------------------------------------------------------------


def test_every_provider_is_present_and_the_total_is_large(catalogue: Catalogue) -> None:
    per_provider = Counter(c.provider for c in catalogue.cards())
    assert set(per_provider) == set(PROVIDERS)
    assert len(catalogue) == sum(per_provider.values()) >= 200
    # the providers with big public line-ups must not have been filtered down to a handful
    assert per_provider["openai"] >= 50
    assert per_provider["anthropic"] >= 10
    assert per_provider["gemini"] >= 20


def test_shipped_file_header_matches_its_cards() -> None:
    document = json.loads(SHIPPED.read_text(encoding="utf-8"))
    assert document["count"] == len(document["models"])
    assert document["count_by_provider"] == dict(Counter(m["provider"] for m in document["models"]))
    ids = [m["canonical_id"] for m in document["models"]]
    assert ids == sorted(ids)


def test_shipped_file_is_what_the_script_builds(tmp_path: Path) -> None:
    if not DEFAULT_SOURCE.exists():
        pytest.skip("the LiteLLM source file is not checked out next to the repository")
    out = tmp_path / "catalogue.json"
    assert main([str(DEFAULT_SOURCE), "--out", str(out)]) == 0
    assert out.read_bytes() == SHIPPED.read_bytes()
    assert main([str(DEFAULT_SOURCE), "--out", str(SHIPPED), "--check"]) == 0


def test_check_mode_reports_a_stale_file(tmp_path: Path) -> None:
    source = tmp_path / "source.json"
    source.write_text(json.dumps({"gpt-4o": _chat_row("openai")}), encoding="utf-8")
    out = tmp_path / "catalogue.json"
    out.write_text("{}", encoding="utf-8")
    assert main([str(source), "--out", str(out), "--check"]) == 1
    assert main([str(source), "--out", str(out)]) == 0
    assert main([str(source), "--out", str(out), "--check"]) == 0


def test_prices_are_exact_decimals_per_million(catalogue: Catalogue) -> None:
    gpt_4o = catalogue.get("openai/gpt-4o")
    assert gpt_4o is not None
    # the source says 2.5e-06 and 1e-05 USD per token
    assert gpt_4o.prices.input == Decimal("2.5")
    assert gpt_4o.prices.output == Decimal("10")
    assert gpt_4o.priced
    assert gpt_4o.context_window == 128_000
    assert gpt_4o.max_output_tokens == 16_384
    assert gpt_4o.capabilities.tools
    assert gpt_4o.capabilities.vision


def test_deepseek_cache_hit_price_becomes_cache_read(catalogue: Catalogue) -> None:
    deepseek = catalogue.get("deepseek/deepseek-chat")
    assert deepseek is not None
    assert deepseek.prices.cache_read == Decimal("0.028")


def test_batch_prices_come_from_the_source_where_the_vendor_has_a_batch_api(
    catalogue: Catalogue,
) -> None:
    sonnet = catalogue.get("anthropic/claude-sonnet-4-5")
    mini = catalogue.get("openai/gpt-4o-mini")
    assert sonnet is not None
    assert mini is not None
    assert sonnet.prices.for_batch() == Prices(
        input=Decimal("1.5"),
        output=Decimal("7.5"),
        cache_read=Decimal("0.15"),
        cache_write=Decimal("1.875"),
    )
    # No batch price listed for OpenAI's cached input: the usual one stays.
    assert mini.prices.for_batch() == Prices(
        input=Decimal("0.075"), output=Decimal("0.3"), cache_read=mini.prices.cache_read
    )
    deepseek = [c for c in catalogue.cards() if c.provider == "deepseek"]
    assert deepseek
    assert all(c.prices.for_batch() is None for c in deepseek)


def test_the_shipped_file_writes_prices_in_plain_notation() -> None:
    document = json.loads(SHIPPED.read_text(encoding="utf-8"))
    for model in document["models"]:
        for price in model["prices"].values():
            assert price is None or ("E" not in price and "e" not in price), model


def test_catalogue_loads_from_an_explicit_path(tmp_path: Path) -> None:
    copy = tmp_path / "catalogue.json"
    copy.write_bytes(SHIPPED.read_bytes())
    loaded = Catalogue.load(copy)
    assert len(loaded) == len(default_catalogue())
    assert loaded.version == default_catalogue().version


def test_a_file_whose_count_disagrees_is_refused(tmp_path: Path) -> None:
    document = json.loads(SHIPPED.read_text(encoding="utf-8"))
    document["count"] += 1
    broken = tmp_path / "catalogue.json"
    broken.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(ValueError, match="header says"):
        Catalogue.load(broken)


# --- resolution ------------------------------------------------------------------------------


def test_canonical_id_resolves_explicitly(catalogue: Catalogue) -> None:
    resolution = catalogue.resolve("anthropic/claude-sonnet-4-5-20250929")
    assert resolution.how is RouteReason.EXPLICIT
    assert resolution.card.provider == "anthropic"
    assert resolution.card.model == "claude-sonnet-4-5-20250929"


@pytest.mark.parametrize(
    ("name", "canonical_id"),
    [
        ("gpt-4o", "openai/gpt-4o"),
        ("claude-sonnet-4-5-20250929", "anthropic/claude-sonnet-4-5-20250929"),
        ("deepseek-chat", "deepseek/deepseek-chat"),
        ("gemini-2.5-flash", "gemini/gemini-2.5-flash"),
        ("MiniMax-M2", "minimax/MiniMax-M2"),
    ],
)
def test_bare_vendor_id_resolves_from_the_catalogue(
    catalogue: Catalogue, name: str, canonical_id: str
) -> None:
    resolution = catalogue.resolve(name)
    assert resolution.how is RouteReason.CATALOGUE_ID
    assert resolution.card.canonical_id == canonical_id


@pytest.mark.parametrize(
    ("alias", "canonical_id"),
    [
        ("claude-sonnet-latest", "anthropic/claude-sonnet-5-5"),  # LiteLLM's alias_of rows
        ("grok-latest", "xai/grok-4.7"),
        ("xai/grok-latest", "xai/grok-4.7"),
        ("google/gemini-2.5-flash", "gemini/gemini-2.5-flash"),  # a foreign namespace
    ],
)
def test_alias_resolves(catalogue: Catalogue, alias: str, canonical_id: str) -> None:
    resolution = catalogue.resolve(alias)
    assert resolution.how is RouteReason.ALIAS
    assert resolution.card.canonical_id == canonical_id


def test_aliases_are_unique_and_shadow_no_id(catalogue: Catalogue) -> None:
    ids = {c.canonical_id for c in catalogue.cards()} | {c.model for c in catalogue.cards()}
    aliases = [a for c in catalogue.cards() for a in c.aliases]
    assert len(aliases) == len(set(aliases))
    assert not ids & set(aliases)


def test_a_bare_id_served_by_a_reseller_goes_to_its_maker(catalogue: Catalogue) -> None:
    # glm-5.1 is listed under both zai (its maker) and dashscope (a reseller)
    assert catalogue.get("dashscope/glm-5.1") is not None
    assert catalogue.resolve("glm-5.1").card.canonical_id == "zai/glm-5.1"
    assert catalogue.resolve("dashscope/glm-5.1").card.provider == "dashscope"


def test_a_bare_id_served_only_by_resellers_is_ambiguous() -> None:
    catalogue = Catalogue([card("dashscope", "llama-9"), card("mistral", "llama-9")])
    with pytest.raises(UnknownModel) as caught:
        catalogue.resolve("llama-9")
    assert caught.value.name == "llama-9"
    assert caught.value.suggestions == ["dashscope/llama-9", "mistral/llama-9"]
    assert catalogue.resolve("mistral/llama-9").how is RouteReason.EXPLICIT


def test_case_insensitive_fallback(catalogue: Catalogue) -> None:
    assert catalogue.resolve("GPT-4o").card.canonical_id == "openai/gpt-4o"
    assert catalogue.resolve("minimax/minimax-m2").card.canonical_id == "minimax/MiniMax-M2"


def test_case_insensitive_fallback_refuses_when_folding_clashes() -> None:
    catalogue = Catalogue([card("openai", "Foo"), card("mistral", "foo")])
    assert catalogue.resolve("Foo").card.provider == "openai"
    assert catalogue.resolve("foo").card.provider == "mistral"
    with pytest.raises(UnknownModel):
        catalogue.resolve("FOO")


def test_exact_match_wins_over_case_folding() -> None:
    catalogue = Catalogue([card("openai", "m-1", "Alpha"), card("mistral", "m-2", "alpha")])
    assert catalogue.resolve("Alpha").card.canonical_id == "openai/m-1"
    assert catalogue.resolve("alpha").card.canonical_id == "mistral/m-2"


def test_unknown_model_suggests_close_names(catalogue: Catalogue) -> None:
    with pytest.raises(UnknownModel) as caught:
        catalogue.resolve("gpt-4oo")
    assert caught.value.name == "gpt-4oo"
    assert "gpt-4o" in caught.value.suggestions
    assert 1 <= len(caught.value.suggestions) <= 3
    assert "gpt-4o" in str(caught.value)
    assert isinstance(caught.value, LookupError)


def test_unknown_model_without_anything_close_suggests_nothing(catalogue: Catalogue) -> None:
    with pytest.raises(UnknownModel) as caught:
        catalogue.resolve("zzzzzzzzzzzzzzzzzzzzzz")
    assert caught.value.suggestions == []


def test_conflicting_cards_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        Catalogue([card("openai", "a"), card("openai", "a")])
    with pytest.raises(ValueError, match="alias"):
        Catalogue([card("openai", "a", "x"), card("mistral", "b", "x")])
    with pytest.raises(ValueError, match="alias"):
        Catalogue([card("openai", "a", "b"), card("mistral", "b")])


def test_card_validation() -> None:
    with pytest.raises(ValueError, match="provider"):
        card("acme", "m")
    with pytest.raises(ValueError, match="canonical_id"):
        ModelCard(
            canonical_id="openai/x",
            provider="openai",
            model="y",
            aliases=[],
            context_window=None,
            max_output_tokens=None,
            prices=Prices(),
            capabilities=Capabilities(),
        )


def test_version_follows_the_cards_not_their_order() -> None:
    a, b = card("openai", "a"), card("mistral", "b")
    assert Catalogue([a, b]).version == Catalogue([b, a]).version
    repriced = card("openai", "a", prices={"input": "1", "output": "2"})
    assert Catalogue([repriced, b]).version != Catalogue([a, b]).version


def test_resolution_is_a_lookup_of_a_prebuilt_object(catalogue: Catalogue) -> None:
    assert catalogue.resolve("gpt-4o") is catalogue.resolve("gpt-4o")


# --- the build script ------------------------------------------------------------------------


def _chat_row(provider: str, **fields: object) -> dict[str, object]:
    return {
        "litellm_provider": provider,
        "mode": "chat",
        "input_cost_per_token": 2.5e-06,
        "output_cost_per_token": 1e-05,
        **fields,
    }


@pytest.mark.parametrize(
    ("per_token", "per_million_expected"),
    [
        (2.5e-06, Decimal("2.5")),
        (1e-05, Decimal("10")),
        (2.19e-06, Decimal("2.19")),
        (1.5e-07, Decimal("0.15")),
        (0.000168, Decimal("168")),
        (0, Decimal("0")),
        ("3e-06", Decimal("3")),
        (None, None),
        ("free", None),
        (True, None),
        (-1e-06, None),
        (float("nan"), None),
        ([1e-06], None),
    ],
)
def test_per_million(per_token: object, per_million_expected: Decimal | None) -> None:
    converted = per_million(per_token)
    assert converted == per_million_expected
    if converted is not None:
        assert "E" not in str(converted)


def test_script_picks_our_providers_chat_models_only() -> None:
    raw: dict[str, object] = {
        "sample_spec": {"litellm_provider": "one of https://docs.litellm.ai/docs/providers"},
        "gpt-4o": _chat_row("openai"),
        "ft:gpt-4o-2024-08-06": _chat_row("openai"),
        "text-embedding-3-small": _chat_row("openai", mode="embedding"),
        "gpt-5-pro": _chat_row("openai", mode="responses"),
        "vertex_ai/claude-x": _chat_row("vertex_ai-anthropic_models"),
        "gemini/gemini-2.5-flash": _chat_row("gemini"),
        "dashscope/qwen-plus": _chat_row("dashscope"),
        "fallback_generalizations": {"rules": []},
        "not-a-row": 42,
    }
    ids = [c.canonical_id for c in build_cards(raw)]
    assert ids == ["dashscope/qwen-plus", "gemini/gemini-2.5-flash", "openai/gpt-4o"]


def test_script_survives_bad_rows() -> None:
    raw: dict[str, object] = {
        "claude-missing": {"litellm_provider": "anthropic", "mode": "chat"},
        "claude-strings": _chat_row(
            "anthropic",
            input_cost_per_token="0.000003",
            output_cost_per_token="lots",
            max_input_tokens="200000",
            max_output_tokens="64k",
            supports_vision="yes",
        ),
        "claude-nulls": _chat_row(
            "anthropic",
            input_cost_per_token=None,
            max_input_tokens=None,
            max_tokens=8192.0,
            supports_function_calling=None,
        ),
        "qwen-tiered": {
            "litellm_provider": "dashscope",
            "mode": "chat",
            "tiered_pricing": [
                {
                    "input_cost_per_token": 2.5e-07,
                    "output_cost_per_token": 2e-06,
                    "range": [256e3, 1e6],
                },
                {
                    "input_cost_per_token": 5e-08,
                    "output_cost_per_token": 4e-07,
                    "range": [0, 256e3],
                },
            ],
        },
        "qwen-bad-tiers": {"litellm_provider": "dashscope", "mode": "chat", "tiered_pricing": "x"},
        "mystery": {"litellm_provider": "openai"},  # no mode, nothing that says chat
        "gpt-no-mode": {"litellm_provider": "openai", "output_cost_per_token": 1e-06},
        "gpt-tts-no-mode": {"litellm_provider": "openai", "output_cost_per_token": 1e-06},
        "weird": {"litellm_provider": None, "mode": "chat"},
        "openai/": _chat_row("openai"),
    }
    cards = {c.canonical_id: c for c in build_cards(raw)}
    assert set(cards) == {
        "anthropic/claude-missing",
        "anthropic/claude-strings",
        "anthropic/claude-nulls",
        "dashscope/qwen-tiered",
        "dashscope/qwen-bad-tiers",
        "openai/gpt-no-mode",
    }

    missing = cards["anthropic/claude-missing"]
    assert missing.prices == Prices()
    assert not missing.priced
    assert missing.context_window is None

    strings = cards["anthropic/claude-strings"]
    assert strings.prices.input == Decimal("3")
    assert strings.prices.output is None
    assert not strings.priced
    assert strings.context_window == 200_000
    assert strings.max_output_tokens is None
    assert not strings.capabilities.vision

    nulls = cards["anthropic/claude-nulls"]
    assert nulls.prices.input is None
    assert nulls.context_window == 8192
    assert not nulls.capabilities.tools

    tiered = cards["dashscope/qwen-tiered"]  # the tier starting at 0 tokens is the price
    assert (tiered.prices.input, tiered.prices.output) == (Decimal("0.05"), Decimal("0.4"))
    assert not cards["dashscope/qwen-bad-tiers"].priced

    # unpriced cards load into a catalogue and resolve like any other
    catalogue = Catalogue(cards.values())
    assert catalogue.resolve("claude-missing").card is missing


def test_script_merges_duplicate_rows_preferring_the_prefixed_key() -> None:
    raw: dict[str, object] = {
        "deepseek-chat": _chat_row("deepseek", input_cost_per_token=9e-06),
        "deepseek/deepseek-chat": _chat_row("deepseek", input_cost_per_token=2.8e-07),
    }
    (only,) = build_cards(raw)
    assert only.canonical_id == "deepseek/deepseek-chat"
    assert only.prices.input == Decimal("0.28")


def test_script_aliases() -> None:
    raw: dict[str, object] = {
        "claude-opus-9": _chat_row("anthropic"),
        "claude-opus-latest": {"alias_of": "claude-opus-9"},
        "claude-via-alias": {"alias_of": "claude-opus-latest"},  # an alias of an alias
        "claude-dangling": {"alias_of": "claude-nowhere"},
        "xai/grok-9": _chat_row("xai"),
        "xai/grok-latest": {"alias_of": "xai/grok-9"},
        # two cards claim "shared": it is dropped from both
        "mistral/m-a": _chat_row("mistral"),
        "mistral/m-b": _chat_row("mistral"),
        "shared": {"alias_of": "mistral/m-a"},
        "mistral/shared": {"alias_of": "mistral/m-b"},
        # an alias that would shadow a real model id is dropped
        "mistral/m-c": _chat_row("mistral"),
        "m-c-alias": {"alias_of": "mistral/m-c"},
        "mistral/m-a-shadow": {"alias_of": "mistral/m-c"},
        "m-a": {"alias_of": "mistral/m-c"},
    }
    cards = {c.canonical_id: c for c in build_cards(raw)}
    assert cards["anthropic/claude-opus-9"].aliases == [
        "anthropic/claude-opus-latest",
        "anthropic/claude-via-alias",
        "claude-opus-latest",
        "claude-via-alias",
    ]
    assert cards["xai/grok-9"].aliases == ["grok-latest", "x-ai/grok-9", "xai/grok-latest"]
    both = cards["mistral/m-a"].aliases + cards["mistral/m-b"].aliases
    assert "shared" not in both
    assert "mistral/shared" not in both
    assert cards["mistral/m-c"].aliases == [
        "m-a-shadow",
        "m-c-alias",
        "mistral/m-a-shadow",
        "mistral/m-c-alias",
        "mistralai/m-c",
    ]
    assert "m-a" not in cards["mistral/m-c"].aliases
    # and the result is a consistent catalogue
    catalogue = Catalogue(cards.values())
    assert catalogue.resolve("m-a").card.canonical_id == "mistral/m-a"


def test_script_output_is_deterministic() -> None:
    rows = {
        "b-model": _chat_row("openai"),
        "a-model": _chat_row("openai"),
        "zai/glm-9": _chat_row("zai"),
    }
    forward = build_cards(rows)
    backward = build_cards(dict(reversed(list(rows.items()))))
    assert forward == backward
    assert [c.canonical_id for c in forward] == sorted(c.canonical_id for c in forward)


def test_unknown_model_becomes_the_callers_404_with_suggestions() -> None:
    info = UnknownModel("gpt-4o-minu", ["gpt-4o-mini"]).error_info()
    assert (info.code, info.param, info.code.http_status) == (
        ErrorCode.MODEL_NOT_FOUND,
        "model",
        404,
    )
    assert info.message == "The model 'gpt-4o-minu' does not exist. Did you mean: gpt-4o-mini?"
    ambiguous = UnknownModel("m", ["a/m", "b/m"], ambiguous=True).error_info()
    assert ambiguous.message.startswith("The model 'm' is served by several providers")
