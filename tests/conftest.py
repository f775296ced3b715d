"""Session fixtures that start real services with the same code as `make up` (services.stack).

The suite owns its own stack home, ``.local/test``, on ports shifted by 10000 (kafka 19092,
redis 16380, ingress 18080, ...), so it never touches a developer's running stack. Overrides:
``SWITCHYARD_TEST_HOME``, ``SWITCHYARD_TEST_PORT_OFFSET``. With ``SWITCHYARD_TEST_REUSE_STACK=1``
the suite keeps what already runs in the test home and leaves it running at the end (a fast
edit-test loop); by default every session starts from empty Kafka, Redis and chDB data.

Fixtures:
- ``test_layout``: the ``StackLayout`` of the test home.
- ``infra``: Kafka and Redis, started once per session; a ``RunningStack``.
- ``kafka_bootstrap``, ``redis_url``: the addresses of ``infra``.
- ``full_stack``: every component, as ``make up`` starts them; a ``RunningStack`` with
  ``base_url`` (``http://127.0.0.1:18080/v1``), ``admin_key``, ``layout`` and ``stack`` (the
  ``Stack`` handle, to ``kill`` or ``restart`` a component).
- ``service_env``: the ``SWITCHYARD_*`` variables a service of the test stack gets, for tests
  that run a service's code in-process against ``infra``.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import FrameType

import pytest

from services.stack import RunningStack, Stack, StackLayout
from services.stack._layout import REPO_ROOT

DEFAULT_TEST_PORT_OFFSET = 10_000
# How long a session waits for another one to finish with the test home.
_LOCK_WAIT_S = 1800.0
INFRA = ("kafka", "redis")
# The test stack's routing config: routes and provider limits the tests rely on.
TEST_ROUTING_CONFIG = Path(__file__).with_name("routing.test.yaml")
# Written into the test home when the suite creates it. The suite wipes that directory at the
# start of a session, and refuses to if the marker is missing: SWITCHYARD_TEST_HOME pointed at a
# developer's real home must never be wiped.
_TEST_HOME_MARKER = ".switchyard-test-home"


def _layout_from_env() -> StackLayout:
    home = Path(os.environ.get("SWITCHYARD_TEST_HOME") or REPO_ROOT / ".local" / "test")
    offset = os.environ.get("SWITCHYARD_TEST_PORT_OFFSET") or str(DEFAULT_TEST_PORT_OFFSET)
    return StackLayout(home=home.resolve(), port_offset=int(offset))


def _child_environ() -> dict[str, str]:
    """The environment the test stack's processes inherit: this one, minus the developer's own
    Switchyard settings and vendor keys, so the services talk to the vendor simulator and to
    nothing real, whatever the shell that ran pytest had exported."""
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("SWITCHYARD_") and not key.endswith("_API_KEY")
    }
    # Key-use summaries every 2 s rather than every minute, so the audit test sees one; spend
    # alert webhooks may reach the test's receiver on 127.0.0.1.
    return {
        **inherited,
        "SWITCHYARD_KEY_USE_SUMMARY_S": "2",
        "SWITCHYARD_WEBHOOK_ALLOW_PRIVATE": "true",
    }


def _claim_and_wipe(home: Path) -> None:
    marker = home / _TEST_HOME_MARKER
    if home.exists() and any(home.iterdir()) and not marker.exists():
        raise pytest.UsageError(
            f"{home} holds files but is not a test home (no {_TEST_HOME_MARKER}); "
            "refusing to wipe it. Point SWITCHYARD_TEST_HOME at an empty or test directory."
        )
    if home.exists():
        for entry in home.iterdir():
            if entry.name == _TEST_HOME_MARKER:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    home.mkdir(parents=True, exist_ok=True)
    marker.touch()


@contextmanager
def _exclusive(home: Path) -> Iterator[None]:
    """Hold the test home for this session. Two sessions on one home would kill each other's
    stack (each stops the other's processes as "leftovers"); the second one waits instead. The
    kernel drops the lock when a session dies, so a free lock means any pid files are stale."""
    lock_path = home.with_name(home.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as lock:
        deadline = time.monotonic() + _LOCK_WAIT_S
        said = False
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise pytest.UsageError(
                        f"another test session has held {home} for {_LOCK_WAIT_S:.0f} s; "
                        "set SWITCHYARD_TEST_HOME and SWITCHYARD_TEST_PORT_OFFSET to run beside it"
                    ) from None
                if not said:
                    print(f"\nwaiting for another test session to release {home}", file=sys.stderr)
                    said = True
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def stop_on_sigterm() -> None:
    """Turn SIGTERM (a CI time-out, `kill`) into KeyboardInterrupt, on which pytest still runs
    the session finalizers that stop the test stack."""

    def raise_interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, raise_interrupt)


@pytest.fixture(scope="session")
def test_layout() -> StackLayout:
    return _layout_from_env()


@pytest.fixture(scope="session")
def test_stack(test_layout: StackLayout) -> Iterator[Stack]:
    """The test home's ``Stack``. Requested by ``infra`` and ``full_stack`` only, so a unit-only
    run starts and wipes nothing."""
    reuse = os.environ.get("SWITCHYARD_TEST_REUSE_STACK") == "1"
    stack = Stack(test_layout, environ=_child_environ())
    with ExitStack() as cleanup:
        if not reuse:
            cleanup.enter_context(_exclusive(test_layout.home))
            # Leftovers of a session that died before its finalizers ran: its pid files.
            stack.down()
            _claim_and_wipe(test_layout.home)
            shutil.copyfile(TEST_ROUTING_CONFIG, test_layout.routing_config_file)
            # Registered after the lock, so it runs before the lock is released: everything
            # this session started, even if a later start failed half-way.
            cleanup.callback(stack.stop_started)
        previous = signal.getsignal(signal.SIGTERM)
        stop_on_sigterm()
        cleanup.callback(signal.signal, signal.SIGTERM, previous)
        yield stack


@pytest.fixture(scope="session")
def infra(test_stack: Stack) -> RunningStack:
    test_stack.up(INFRA)
    return RunningStack(stack=test_stack, admin_key=test_stack.admin_key())


@pytest.fixture(scope="session")
def kafka_bootstrap(infra: RunningStack) -> str:
    return infra.kafka_bootstrap


@pytest.fixture(scope="session")
def redis_url(infra: RunningStack) -> str:
    return infra.redis_url


@pytest.fixture(scope="session")
def service_env(infra: RunningStack) -> dict[str, str]:
    return infra.env


@pytest.fixture(scope="session")
def full_stack(test_stack: Stack) -> RunningStack:
    test_stack.up()
    return RunningStack(stack=test_stack, admin_key=test_stack.admin_key())
