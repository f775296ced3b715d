"""``RunningStack``: a started stack and what a client needs to reach it. The test fixtures
``infra`` and ``full_stack`` yield one."""

from __future__ import annotations

from dataclasses import dataclass

from services.stack._layout import StackLayout
from services.stack._supervisor import Stack


@dataclass(frozen=True, kw_only=True)
class RunningStack:
    stack: Stack
    admin_key: str

    @property
    def layout(self) -> StackLayout:
        return self.stack.layout

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL, e.g. ``http://127.0.0.1:8080/v1``."""
        return self.layout.base_url

    @property
    def kafka_bootstrap(self) -> str:
        return self.layout.kafka_bootstrap

    @property
    def redis_url(self) -> str:
        return self.layout.redis_url

    @property
    def env(self) -> dict[str, str]:
        """The ``SWITCHYARD_*`` variables the stack's services get."""
        return self.layout.service_env(admin_key=self.admin_key)
