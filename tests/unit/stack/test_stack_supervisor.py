"""The supervisor's process handling, with stand-in processes in place of the real services
(``Stack(components=...)`` is the seam): start, pid files, health waits, stop, kill, restart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.stack import Component, Stack, StackError, StackLayout, Tier
from services.stack._health import Probe
from services.stack._pidfile import is_alive, read_pid_file
from services.stack._supervisor import describe_exit

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


def healthy() -> str | None:
    return None


def stand_in(
    name: str,
    argv: list[str] = SLEEPER,
    *,
    tier: Tier = Tier.BACKEND,
    port: int = 1,  # port 1 is never listening here, so the "port in use" guard stays quiet
    probe: Probe = healthy,
    timeout_s: float = 10.0,
) -> Component:
    return Component(
        name=name,
        tier=tier,
        port=port,
        command=lambda: argv,
        probe=probe,
        start_timeout_s=timeout_s,
    )


@pytest.fixture
def layout(tmp_path: Path) -> StackLayout:
    return StackLayout(home=tmp_path / "home")


@pytest.fixture
def stack(layout: StackLayout) -> Iterator[Stack]:
    stack = Stack(
        layout,
        components=[stand_in("infra", tier=Tier.INFRA), stand_in("svc"), stand_in("edge")],
        environ={"PATH": os.environ.get("PATH", "")},
    )
    yield stack
    stack.down()


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_up_starts_in_order_and_records_pids(stack: Stack, layout: StackLayout) -> None:
    assert stack.up() == ["infra", "svc", "edge"]
    for name in ("infra", "svc", "edge"):
        record = read_pid_file(layout.pid_file(name))
        assert record is not None
        assert is_alive(record)
        # Its own session and process group, so a terminal's Ctrl-C does not reach it.
        assert os.getpgid(record.pid) == record.pid
        assert os.getsid(record.pid) == record.pid
        assert layout.log_file(name).exists()
    assert stack.up() == []  # already running: nothing new


def test_up_only_starts_the_named_components(stack: Stack) -> None:
    assert stack.up(["svc"]) == ["svc"]
    assert [s.name for s in stack.status() if s.running] == ["svc"]
    with pytest.raises(StackError, match="no component 'nope'"):
        stack.up(["nope"])


def test_stack_env_file_is_private_and_complete(stack: Stack, layout: StackLayout) -> None:
    stack.up(["svc"])
    text = layout.stack_env_file.read_text()
    assert f"SWITCHYARD_KAFKA_BOOTSTRAP={layout.kafka_bootstrap}\n" in text
    assert f"SWITCHYARD_ADMIN_KEY={stack.admin_key()}\n" in text
    assert oct(layout.stack_env_file.stat().st_mode & 0o777) == "0o600"


def test_children_get_the_stack_environment(layout: StackLayout) -> None:
    dump = layout.home / "env.txt"
    script = (
        "import os, sys, time; "
        f"open({str(dump)!r}, 'w').write(os.environ['SWITCHYARD_REDIS_URL'] + ' ' "
        "+ os.environ.get('OPENAI_API_KEY', '-')); time.sleep(120)"
    )
    stack = Stack(
        layout,
        components=[stand_in("svc", [sys.executable, "-c", script])],
        environ={"OPENAI_API_KEY": "sk-test", "PATH": os.environ.get("PATH", "")},
    )
    try:
        stack.up()
        deadline = time.monotonic() + 10
        while not dump.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert dump.read_text() == f"{layout.redis_url} sk-test"
    finally:
        stack.down()


def test_down_stops_in_reverse_order_and_removes_pid_files(
    stack: Stack, layout: StackLayout
) -> None:
    stack.up()
    pids = [stack.pid(name) for name in ("infra", "svc", "edge")]
    assert stack.down() == ["edge", "svc", "infra"]
    assert all(pid is not None and _gone(pid) for pid in pids)
    assert list(layout.run_dir.glob("*.pid")) == []
    assert stack.down() == []


def test_down_never_touches_a_process_no_pid_file_names(stack: Stack, layout: StackLayout) -> None:
    bystander = subprocess.Popen(SLEEPER)
    try:
        stack.up(["svc"])
        stack.down()
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_a_stale_pid_file_is_removed_without_killing(stack: Stack, layout: StackLayout) -> None:
    bystander = subprocess.Popen(SLEEPER)
    try:
        layout.run_dir.mkdir(parents=True)
        # The bystander's pid with another start time: a pid file outliving its process,
        # whose number was handed to an unrelated one.
        layout.pid_file("svc").write_text(f"{bystander.pid}\n1\n")
        assert not stack.is_running("svc")
        assert stack.down() == []
        assert bystander.poll() is None
        assert not layout.pid_file("svc").exists()
    finally:
        bystander.kill()
        bystander.wait()


def test_down_also_stops_pid_files_of_unknown_components(layout: StackLayout) -> None:
    old = Stack(layout, components=[stand_in("renamed-worker")])
    old.up()
    pid = old.pid("renamed-worker")
    assert pid is not None
    new = Stack(layout, components=[stand_in("svc")])
    assert new.down() == ["renamed-worker"]
    assert old.exited() == {"renamed-worker": -signal.SIGTERM}  # reaps the zombie
    assert _gone(pid)


def test_stopping_a_component_stops_what_it_spawned(layout: StackLayout) -> None:
    grandchild_pid = layout.home / "grandchild.pid"
    script = (
        "import subprocess, sys, time; "
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']); "
        f"open({str(grandchild_pid)!r}, 'w').write(str(p.pid)); time.sleep(120)"
    )
    stack = Stack(layout, components=[stand_in("parent", [sys.executable, "-c", script])])
    stack.up()
    deadline = time.monotonic() + 10
    while not grandchild_pid.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    pid = int(grandchild_pid.read_text())
    stack.down()
    deadline = time.monotonic() + 10
    # The grandchild is re-parented to init, which reaps it.
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(pid)


def test_sigterm_ignored_escalates_to_sigkill(
    layout: StackLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("services.stack._supervisor.STOP_GRACE_S", 0.5)
    stubborn = [
        sys.executable,
        "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)",
    ]
    stack = Stack(layout, components=[stand_in("stubborn", stubborn)])
    stack.up()
    assert stack.down() == ["stubborn"]
    assert not stack.is_running("stubborn")


def test_kill_then_restart(stack: Stack) -> None:
    stack.up()
    before = stack.pid("svc")
    stack.kill("svc", signal.SIGKILL)
    assert not stack.is_running("svc")
    assert {s.name: s.running for s in stack.status()} == {
        "infra": True,
        "svc": False,
        "edge": True,
    }
    assert stack.exited() == {"svc": -signal.SIGKILL}
    stack.restart("svc")
    assert stack.is_running("svc")
    assert stack.pid("svc") != before
    stack.down(["svc"])
    with pytest.raises(StackError, match="svc is not running"):
        stack.kill("svc")


def test_a_component_that_exits_during_start_is_reported_with_its_log(
    layout: StackLayout,
) -> None:
    crash = [sys.executable, "-c", "import sys; print('bad config: no such option'); sys.exit(3)"]
    stack = Stack(layout, components=[stand_in("broken", crash, probe=lambda: "not yet")])
    with pytest.raises(StackError) as caught:
        stack.up()
    message = str(caught.value)
    assert "broken exited during start (exit code 3)" in message
    assert "bad config: no such option" in message
    assert stack.started == ["broken"]


def test_a_component_that_never_gets_healthy_times_out(layout: StackLayout) -> None:
    stack = Stack(
        layout, components=[stand_in("slow", probe=lambda: "still warming up", timeout_s=0.5)]
    )
    try:
        with pytest.raises(StackError, match=r"slow did not become healthy .*still warming up"):
            stack.up()
        # It was started, so the caller can stop it.
        assert stack.stop_started() == ["slow"]
    finally:
        stack.down()


def test_stop_started_leaves_what_another_handle_started(layout: StackLayout) -> None:
    components = [stand_in("infra", tier=Tier.INFRA), stand_in("svc")]
    developer = Stack(layout, components=components)
    session = Stack(layout, components=components)
    try:
        developer.up(["infra"])
        assert session.up() == ["svc"]
        assert session.stop_started() == ["svc"]
        assert developer.is_running("infra")
    finally:
        developer.down()


def test_a_port_taken_by_a_stranger_is_a_clear_error(layout: StackLayout) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        stack = Stack(layout, components=[stand_in("svc", port=port)])
        with pytest.raises(StackError, match=f"port {port} is already in use"):
            stack.up()
    assert stack.started == []


def test_exit_descriptions() -> None:
    assert describe_exit(None) == ""
    assert describe_exit(3) == " (exit code 3)"
    assert describe_exit(-signal.SIGKILL) == " (killed by SIGKILL)"
