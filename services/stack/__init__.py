"""The local stack: Kafka, Redis and every Switchyard service as supervised processes on one
machine, the embedded default behind ``make run`` and the test suite's fixtures.

Public surface: ``StackLayout`` (where things live, which ports), ``Stack`` (up, down, status,
restart, kill), ``ComponentStatus``, ``RunningStack`` (a started stack's addresses) and
``StackError``. The CLI commands are in ``cli``.
"""

from services.stack._components import Component, Tier
from services.stack._errors import StackError
from services.stack._layout import StackLayout
from services.stack._running import RunningStack
from services.stack._supervisor import ComponentStatus, Stack

__all__ = [
    "Component",
    "ComponentStatus",
    "RunningStack",
    "Stack",
    "StackError",
    "StackLayout",
    "Tier",
]
