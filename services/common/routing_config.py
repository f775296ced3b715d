"""The routing config: named routes, per-model fallbacks, circuit thresholds and provider limits.

One YAML file (``SWITCHYARD_ROUTING_CONFIG``; the local stack keeps it at
``<home>/routing.yaml``, seeded from ``deploy/routing.yaml``) read by the router (routes and
fallbacks), the workers (limits, circuits, health checks) and ingress (route names, for a fast
404, and ``GET /v1/providers``). ``deploy/routing.yaml`` documents every field.

It is validated whole, against the catalogue, at start (a bad file stops the service: better
than serving with half a config) and at every reload (a bad edit is refused, logged, and the last
good config stays in force). ``ConfigWatch`` reloads it without a restart: every process looks at
the file's modification time and size once a second. A ``stat`` a second costs nothing, and
unlike inotify it sees the symlink swap by which Kubernetes updates a mounted ConfigMap.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from contracts.catalogue import Catalogue, UnknownModel
from contracts.topics import PROVIDERS
from services.common.capacity import AccountLimits
from services.common.circuits import CircuitPolicy
from services.common.model_quality import QualityEntry, shipped_quality
from services.common.periodic import Periodic
from services.common.routing_policy import BUILT_IN, POLICY_NAME, Policy, policy_name

log = logging.getLogger(__name__)

_RELOAD_CHECK_S = 1.0

Positive = Annotated[float, Field(gt=0)]


class _Strict(BaseModel):
    # A misspelt field is refused, not ignored: ``cooldown: 5`` silently doing nothing would
    # be found out during an outage.
    model_config = ConfigDict(frozen=True, extra="forbid")


class Candidate(_Strict):
    model: str
    weight: Positive = 1.0


class Route(_Strict):
    """A name callers may use as their ``model``: its candidates are tried in an order drawn by
    weight (a weight-3 candidate comes first three times as often as a weight-1 one), the rest
    following as fallbacks."""

    candidates: list[Candidate] = Field(min_length=1)


class CircuitSettings(_Strict):
    failures: int = Field(default=5, ge=1)  # failures within ``window_s`` that open a circuit
    window_s: Positive = 30.0
    cooldown_s: Positive = 30.0  # how long an open circuit sends nothing
    probes: int = Field(default=2, ge=1)  # probe calls at a time when half-open; successes to close


class HealthCheck(_Strict):
    """A cheap call (listing the vendor's models) on an interval, by one replica at a time; its
    failures count against the provider like a failed request. Never run against a real vendor
    without an API key."""

    interval_s: float = Field(default=30.0, ge=1.0)


class ProviderSettings(_Strict):
    """Limits of one provider account, enforced across every worker replica together."""

    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=1)
    max_concurrency: int | None = Field(default=None, ge=1)
    min_concurrency: int = Field(default=1, ge=1)
    # The share of each limit the batch lane may use; interactive traffic may use all of it.
    batch_share: float = Field(default=0.5, gt=0, le=1)
    circuit: CircuitSettings | None = None  # this provider's models' thresholds, if not global
    health_check: HealthCheck | None = None
    # The operator's contract with this vendor keeps no prompts: policies that require it
    # (``require_zero_data_retention``) may use this provider.
    zero_data_retention: bool = False

    @model_validator(mode="after")
    def _concurrency_range(self) -> Self:
        if self.max_concurrency is not None and self.min_concurrency > self.max_concurrency:
            raise ValueError("min_concurrency is above max_concurrency")
        return self


class RoutingConfig(_Strict):
    routes: dict[str, Route] = Field(default_factory=dict)
    # Canonical model id -> the models its requests may fall back to, in order.
    fallbacks: dict[str, list[str]] = Field(default_factory=dict)
    circuit: CircuitSettings = CircuitSettings()
    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    # Routing policies for ``model: "auto:<name>"``, beside (or replacing) the built-in ones.
    policies: dict[str, Policy] = Field(default_factory=dict)
    # Quality entries that add to or replace the shipped table (services.common.model_quality).
    quality: dict[str, QualityEntry] = Field(default_factory=dict)

    def policy(self, name: str) -> Policy | None:
        return self.policies.get(name) or BUILT_IN.get(name)

    def policy_names(self) -> list[str]:
        return sorted({*BUILT_IN, *self.policies})

    def quality_table(self) -> dict[str, QualityEntry]:
        """The shipped table with this config's entries over it, by canonical id (``resolved``
        has made them so)."""
        return {**_canonical_quality(), **self.quality}

    def circuit_for(self, provider: str) -> CircuitSettings:
        settings = self.providers.get(provider)
        return settings.circuit if settings and settings.circuit else self.circuit

    def provider(self, name: str) -> ProviderSettings:
        return self.providers.get(name) or _NO_LIMITS

    def circuit_policy(self, key: str) -> CircuitPolicy:
        """The thresholds of a circuit keyed ``provider/model``, or of a provider's own circuit
        (``provider/*``, fed by health checks only): that one opens after two failed checks in
        a row, whatever the interval, since checks come seconds apart, not in bursts."""
        provider, _, model = key.partition("/")
        settings = self.circuit_for(provider)
        failures, window_s = settings.failures, settings.window_s
        check = self.provider(provider).health_check
        if model == "*" and check is not None:
            failures, window_s = min(failures, 2), max(window_s, 2.5 * check.interval_s)
        return CircuitPolicy(
            failures=failures,
            window_s=window_s,
            cooldown_s=settings.cooldown_s,
            probes=settings.probes,
        )

    def account_limits(self, provider: str) -> AccountLimits:
        settings = self.provider(provider)
        return AccountLimits(
            rpm=settings.rpm,
            tpm=settings.tpm,
            max_concurrency=settings.max_concurrency,
            min_concurrency=settings.min_concurrency,
            batch_share=settings.batch_share,
        )

    def resolved(self, catalogue: Catalogue) -> RoutingConfig:
        """This config with every model name turned into its canonical id; raises ``ConfigError``
        naming each name the catalogue does not know and each route that shadows a model."""
        problems: list[str] = []

        def canonical(name: str, where: str) -> str:
            try:
                return catalogue.resolve(name).card.canonical_id
            except UnknownModel as exc:
                problems.append(f"{where}: {exc}")
                return name

        routes: dict[str, Route] = {}
        for name, route in self.routes.items():
            with contextlib.suppress(UnknownModel):
                catalogue.resolve(name)
                problems.append(f"routes.{name}: the name is a catalogue model; pick another")
            if policy_name(name) is not None:
                problems.append(f"routes.{name}: auto and auto:<name> name routing policies")
            routes[name] = Route(
                candidates=[
                    c.model_copy(update={"model": canonical(c.model, f"routes.{name}")})
                    for c in route.candidates
                ]
            )
        fallbacks = {
            canonical(model, "fallbacks"): [canonical(m, f"fallbacks.{model}") for m in targets]
            for model, targets in self.fallbacks.items()
        }
        problems.extend(
            f"providers.{name}: unknown provider (known: {', '.join(PROVIDERS)})"
            for name in self.providers
            if name not in PROVIDERS
        )
        quality = {canonical(m, "quality"): entry for m, entry in self.quality.items()}
        rated = {**_canonical_quality(), **quality}
        policies = {
            name: _resolved_policy(name, policy, canonical, rated, problems)
            for name, policy in self.policies.items()
        }
        if problems:
            raise ConfigError("; ".join(problems))
        return self.model_copy(
            update={
                "routes": routes,
                "fallbacks": fallbacks,
                "policies": policies,
                "quality": quality,
            }
        )


def _resolved_policy(
    name: str,
    policy: Policy,
    canonical: Callable[[str, str], str],
    rated: dict[str, QualityEntry],
    problems: list[str],
) -> Policy:
    where = f"policies.{name}"
    if not POLICY_NAME.fullmatch(name):
        problems.append(
            f"{where}: a policy's name is auto:<name> (lower-case letters, digits, '_', '.', '-')"
        )

    def models(names: list[str] | None, at: str) -> list[str] | None:
        if names is None:
            return None
        resolved = [canonical(n, at) for n in names]
        problems.extend(
            f"{at}: no quality entry for {m}; add one under quality:"
            for m in resolved
            if m not in rated and "/" in m
        )
        return resolved

    for provider in [*(policy.providers or []), *policy.exclude_providers]:
        if provider not in PROVIDERS:
            problems.append(f"{where}: unknown provider {provider!r}")
    tasks = {
        task: override.model_copy(
            update={"candidates": models(override.candidates, f"{where}.tasks.{task}")}
        )
        for task, override in policy.tasks.items()
    }
    return policy.model_copy(
        update={"candidates": models(policy.candidates, where), "tasks": tasks}
    )


@functools.cache
def _canonical_quality() -> dict[str, QualityEntry]:
    """The shipped quality table, checked against the shipped catalogue once."""
    from contracts.catalogue import default_catalogue

    catalogue = default_catalogue()
    table: dict[str, QualityEntry] = {}
    for name, entry in shipped_quality().items():
        table[catalogue.resolve(name).card.canonical_id] = entry
    return table


_NO_LIMITS = ProviderSettings()
EMPTY = RoutingConfig()


class ConfigError(ValueError):
    """The routing config is not valid; the message names every problem found."""


def load_config(path: Path, catalogue: Catalogue) -> RoutingConfig:
    """Read and validate the file; raises ``ConfigError``."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    try:
        config = RoutingConfig.model_validate(raw or {})
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"{path}: {details}") from None
    try:
        return config.resolved(catalogue)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


class ConfigWatch:
    """The current config of one process, reloaded when its file changes.

    ``path`` None: no file, every default (no routes, no limits). ``on_change`` runs after each
    successful reload, with the new config."""

    def __init__(
        self,
        path: Path | None,
        catalogue: Catalogue,
        *,
        on_change: Callable[[RoutingConfig], None] | None = None,
    ) -> None:
        self._path = path
        self._catalogue = catalogue
        self._on_change = on_change
        self._loop = Periodic("routing-config-watch", _RELOAD_CHECK_S, self._check_now)
        self._seen: tuple[int, int] | None = None
        self.current: RoutingConfig = EMPTY
        self.last_error: str | None = None
        if path is not None:
            self._seen = _fingerprint(path)
            self.current = load_config(path, catalogue)  # a bad file at start is fatal

    @property
    def path(self) -> Path | None:
        return self._path

    def __call__(self) -> RoutingConfig:
        return self.current

    def check(self) -> bool:
        """Reload if the file changed; True when a new config took effect."""
        if self._path is None:
            return False
        seen = _fingerprint(self._path)
        if seen == self._seen:
            return False
        self._seen = seen
        try:
            config = load_config(self._path, self._catalogue)
        except ConfigError as exc:
            self.last_error = str(exc)
            log.error("routing config refused, the previous one stays in force: %s", exc)
            return False
        self.current = config
        self.last_error = None
        log.info("routing config reloaded from %s", self._path)
        if self._on_change is not None:
            self._on_change(config)
        return True

    async def start(self) -> None:
        if self._path is not None:
            await self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def _check_now(self) -> None:
        self.check()


def _fingerprint(path: Path) -> tuple[int, int]:
    try:
        stat = os.stat(path)  # follows symlinks: a ConfigMap swap changes the target
    except FileNotFoundError:
        return (0, -1)
    return (stat.st_mtime_ns, stat.st_size)
