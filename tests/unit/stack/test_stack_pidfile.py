from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from services.stack._pidfile import (
    PidRecord,
    is_alive,
    process_start_ticks,
    read_pid_file,
    write_pid_file,
)


def test_round_trip_of_a_live_process(tmp_path: Path) -> None:
    path = tmp_path / "run" / "me.pid"
    written = write_pid_file(path, os.getpid())
    assert read_pid_file(path) == written
    assert written.start_ticks == process_start_ticks(os.getpid())
    assert is_alive(written)


def test_missing_or_garbage_pid_file_reads_as_none(tmp_path: Path) -> None:
    assert read_pid_file(tmp_path / "absent.pid") is None
    garbage = tmp_path / "garbage.pid"
    garbage.write_text("not a pid\n")
    assert read_pid_file(garbage) is None
    init = tmp_path / "init.pid"
    init.write_text("1\n")
    assert read_pid_file(init) is None  # never a component's pid


def test_a_reused_pid_is_not_our_process() -> None:
    # Same pid, another start time: the number now names some other process.
    ticks = process_start_ticks(os.getpid())
    assert ticks is not None
    assert not is_alive(PidRecord(pid=os.getpid(), start_ticks=ticks + 1))


def test_an_exited_process_is_not_alive(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    record = write_pid_file(tmp_path / "child.pid", child.pid)
    child.wait()
    assert not is_alive(record)


def test_an_unreaped_zombie_is_not_alive(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    record = write_pid_file(tmp_path / "child.pid", child.pid)
    # Wait for the exit without reaping, so the child stays a zombie while we look.
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
    try:
        assert not is_alive(record)
    finally:
        child.wait()
