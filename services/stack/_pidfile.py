"""Pid files: the only record of what the stack started, and so the only thing ``down`` kills.

A pid file holds the pid on its first line and, on Linux, the process's start time (clock ticks
since boot, from ``/proc/<pid>/stat``) on its second. A pid alone is not an identity: after a
reboot or a long time, the number may belong to an unrelated process, and killing that would be
the worst thing a supervisor can do. The start time pins the record to the one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PidRecord:
    pid: int
    # None where /proc is unavailable: then the pid alone is trusted.
    start_ticks: int | None


def _proc_stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may itself hold spaces or parentheses;
    # everything after the last ')' is space-separated, starting with the state (field 3).
    return raw[raw.rfind(")") + 2 :].split()


def process_start_ticks(pid: int) -> int | None:
    fields = _proc_stat_fields(pid)
    # starttime is field 22 of stat; fields here start at field 3.
    return int(fields[19]) if fields is not None and len(fields) > 19 else None


def _is_zombie(pid: int) -> bool:
    fields = _proc_stat_fields(pid)
    return fields is not None and fields[0] in ("Z", "X")


def write_pid_file(path: Path, pid: int) -> PidRecord:
    record = PidRecord(pid=pid, start_ticks=process_start_ticks(pid))
    path.parent.mkdir(parents=True, exist_ok=True)
    ticks = "" if record.start_ticks is None else f"{record.start_ticks}\n"
    tmp = path.with_suffix(".pid.tmp")
    tmp.write_text(f"{pid}\n{ticks}")
    tmp.replace(path)  # a reader never sees a half-written file
    return record


def read_pid_file(path: Path) -> PidRecord | None:
    """The record in ``path``, or None if there is none or it is not a pid file."""
    try:
        lines = path.read_text().split()
    except FileNotFoundError:
        return None
    try:
        pid = int(lines[0])
        ticks = int(lines[1]) if len(lines) > 1 else None
    except (IndexError, ValueError):
        return None
    return PidRecord(pid=pid, start_ticks=ticks) if pid > 1 else None


def is_alive(record: PidRecord) -> bool:
    """Whether the process the record names still runs: it exists, has not exited (a zombie
    waiting for its parent counts as exited), and is the same process (same start time)."""
    try:
        os.kill(record.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else; the start time below decides
    if _is_zombie(record.pid) and not _threads_still_exiting(record.pid):
        return False
    if record.start_ticks is None:
        return True
    return process_start_ticks(record.pid) == record.start_ticks


def _threads_still_exiting(pid: int) -> bool:
    """A multithreaded process's leader turns zombie before its other threads are gone, and
    its sockets stay open until the last one is: until then it has not really exited."""
    try:
        return len(os.listdir(f"/proc/{pid}/task")) > 1
    except OSError:
        return False


def remove_pid_file(path: Path) -> None:
    path.unlink(missing_ok=True)
