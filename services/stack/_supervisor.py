"""``Stack``: starts, watches and stops the local stack's processes. No systemd, no Docker.

Each component runs as a child in a session (and process group) of its own, with its output in
``$SWITCHYARD_HOME/log/<name>.log`` and its pid in ``$SWITCHYARD_HOME/run/<name>.pid``:
- its own session, so a Ctrl-C in the terminal reaches only the supervisor, which then stops the
  components in reverse order (the ingress before the broker it publishes to);
- its own group, so stopping a component also stops whatever it spawned;
- a pid file, because ``switchyard up`` returns while the stack runs on: a later ``down`` or
  ``status`` learns from the pid files what runs, and ``down`` stops nothing else.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO

from services.stack._admin_key import load_or_create_admin_key, write_secret_file
from services.stack._components import Component, stack_components
from services.stack._errors import StackError
from services.stack._health import tcp_open
from services.stack._layout import StackLayout
from services.stack._pidfile import (
    PidRecord,
    is_alive,
    read_pid_file,
    remove_pid_file,
    write_pid_file,
)

STOP_GRACE_S = 10.0
_POLL_S = 0.1
_LOG_TAIL_LINES = 30


@dataclass(frozen=True, kw_only=True)
class ComponentStatus:
    name: str
    running: bool
    pid: int | None
    port: int
    # None when healthy (or not running); otherwise the probe's reason.
    problem: str | None

    @property
    def healthy(self) -> bool:
        return self.running and self.problem is None


class Stack:
    """The local stack of one layout. ``components`` is a seam for tests that supervise a stand-in
    process instead of the real services; ``environ`` is the user environment handed to children
    (vendor keys pass through) and defaults to this process's."""

    def __init__(
        self,
        layout: StackLayout,
        *,
        components: Sequence[Component] | None = None,
        environ: Mapping[str, str] | None = None,
        out: IO[str] | None = None,
    ) -> None:
        self.layout = layout
        self._components = list(components) if components is not None else None
        self._environ = dict(os.environ if environ is None else environ)
        self._out = out
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        # Every component this handle started, in order, even if a later one failed: the
        # caller (a test session, `switchyard run`) stops exactly these.
        self.started: list[str] = []

    # Introspection -------------------------------------------------------------------------

    @property
    def components(self) -> list[Component]:
        if self._components is None:
            self._components = stack_components(self.layout)
        return self._components

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.components]

    def component(self, name: str) -> Component:
        for component in self.components:
            if component.name == name:
                return component
        raise StackError(f"no component {name!r}; the stack has: {', '.join(self.names)}")

    def select(self, only: Iterable[str] | None) -> list[Component]:
        """The named components (all if ``only`` is None), in start order."""
        if only is None:
            return list(self.components)
        wanted = set(only)
        for name in wanted:
            self.component(name)  # raises on an unknown name
        return [c for c in self.components if c.name in wanted]

    def admin_key(self) -> str:
        return load_or_create_admin_key(self.layout.admin_key_file, self._environ)

    def pid(self, name: str) -> int | None:
        record = self._live_record(name)
        return None if record is None else record.pid

    def is_running(self, name: str) -> bool:
        return self._live_record(name) is not None

    def status(self) -> list[ComponentStatus]:
        statuses = []
        for component in self.components:
            record = self._live_record(component.name)
            problem = component.probe() if record is not None else None
            statuses.append(
                ComponentStatus(
                    name=component.name,
                    running=record is not None,
                    pid=None if record is None else record.pid,
                    port=component.port,
                    problem=problem,
                )
            )
        return statuses

    def log_tail(self, name: str, lines: int = _LOG_TAIL_LINES) -> str:
        try:
            with self.layout.log_file(name).open("rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - 16_384))
                text = log.read().decode(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # Starting ------------------------------------------------------------------------------

    def up(self, only: Iterable[str] | None = None) -> list[str]:
        """Start the selected components that are not running, tier by tier, and return once
        all selected ones are healthy. Returns the names it started (not those already up).
        A component that is already running is waited on, not restarted."""
        selected = self.select(only)
        self._prepare_home()
        started_now: list[str] = []
        for tier in sorted({c.tier for c in selected}):
            layer = [c for c in selected if c.tier == tier]
            for component in layer:
                if not self.is_running(component.name):
                    self._spawn(component)
                    started_now.append(component.name)
            for component in layer:
                self._wait_healthy(component)
        return started_now

    def restart(self, name: str) -> None:
        """Stop ``name`` if it runs, start it again, and wait until it is healthy."""
        component = self.component(name)
        self._stop(component.name)
        self._prepare_home()
        self._spawn(component)
        self._wait_healthy(component)

    def wait_healthy(self, name: str) -> None:
        self._wait_healthy(self.component(name))

    def _prepare_home(self) -> None:
        for directory in (self.layout.log_dir, self.layout.run_dir):
            directory.mkdir(parents=True, exist_ok=True)
        if not self.layout.routing_config_file.exists():
            # Seeded once: from then on it is the user's to edit (services reload it live).
            shutil.copyfile(
                self.layout.repo_root / "deploy" / "routing" / "routing.yaml",
                self.layout.routing_config_file,
            )
        env_lines = self.layout.service_env(admin_key=self.admin_key())
        write_secret_file(
            self.layout.stack_env_file, "".join(f"{k}={v}\n" for k, v in env_lines.items())
        )

    def _spawn(self, component: Component) -> None:
        if tcp_open(component.port):
            raise StackError(
                f"{component.name}: port {component.port} is already in use by a process this "
                f"stack did not start (pid files in {self.layout.run_dir}); stop it, or pick "
                f"another SWITCHYARD_PORT_OFFSET"
            )
        if component.prepare is not None:
            component.prepare()
        argv = list(component.command())
        env = {
            **self._environ,
            **self.layout.service_env(admin_key=self.admin_key()),
            **component.env,
            # Logs are files: without this a crash loses the last, most telling lines.
            "PYTHONUNBUFFERED": "1",
        }
        log_path = self.layout.log_file(component.name)
        with log_path.open("ab") as log:
            log.write(f"\n=== {time.strftime('%F %T')} starting {component.name}\n".encode())
            log.flush()
            child = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.layout.repo_root,
                start_new_session=True,
            )
        self._children[component.name] = child
        write_pid_file(self.layout.pid_file(component.name), child.pid)
        self.started.append(component.name)
        self._say(f"started {component.name} (pid {child.pid}, port {component.port})")

    def _wait_healthy(self, component: Component) -> None:
        deadline = time.monotonic() + component.start_timeout_s
        problem: str | None = "not probed yet"
        while True:
            if not self.is_running(component.name):
                how = describe_exit(self._exit_code(component.name))
                raise StackError(
                    f"{component.name} exited during start{how}; "
                    f"last lines of {self.layout.log_file(component.name)}:\n"
                    f"{self.log_tail(component.name)}"
                )
            problem = component.probe()
            if problem is None:
                return
            if time.monotonic() > deadline:
                raise StackError(
                    f"{component.name} did not become healthy within "
                    f"{component.start_timeout_s:.0f} s ({problem}); last lines of "
                    f"{self.layout.log_file(component.name)}:\n{self.log_tail(component.name)}"
                )
            time.sleep(_POLL_S if problem.startswith("port") else 2 * _POLL_S)

    # Stopping ------------------------------------------------------------------------------

    def down(self, only: Iterable[str] | None = None) -> list[str]:
        """Stop the selected components that pid files name, in reverse start order; returns
        the names it stopped. Never signals a process that no pid file of this layout names."""
        names = [c.name for c in reversed(self.select(only))]
        if only is None:
            # Pid files of names the stack no longer has (a renamed worker group, a previous
            # version's component) still record processes this layout started.
            recorded = sorted(p.stem for p in self.layout.run_dir.glob("*.pid"))
            names += [name for name in recorded if name not in names]
        return [name for name in names if self._stop(name)]

    def stop_started(self) -> list[str]:
        """Stop what this handle started, newest first (a test session's or `run`'s cleanup)."""
        stopped = []
        for name in reversed(self.started):
            if self._stop(name):
                stopped.append(name)
        self.started.clear()
        return stopped

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Send ``sig`` to the component's process group, as a crash or an operator would; the
        pid file stays, so ``status`` shows it stopped and ``up``/``restart`` start it again."""
        record = self._live_record(name)
        if record is None:
            raise StackError(f"{name} is not running")
        self._signal_group(record.pid, sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            self._wait_gone(name, record, STOP_GRACE_S)

    def _stop(self, name: str) -> bool:
        pid_path = self.layout.pid_file(name)
        record = read_pid_file(pid_path)
        if record is None:
            remove_pid_file(pid_path)
            self._children.pop(name, None)
            return False
        stopped = False
        if self._record_alive(name, record):
            self._signal_group(record.pid, signal.SIGTERM)
            if not self._wait_gone(name, record, STOP_GRACE_S):
                self._say(f"{name} ignored SIGTERM for {STOP_GRACE_S:.0f} s; sending SIGKILL")
                self._signal_group(record.pid, signal.SIGKILL)
                self._wait_gone(name, record, STOP_GRACE_S)
            stopped = True
            self._say(f"stopped {name}")
        # Stragglers: a child of the component that outlived it still has its group.
        self._kill_stragglers(record.pid)
        remove_pid_file(pid_path)
        self._children.pop(name, None)
        return stopped

    def _wait_gone(self, name: str, record: PidRecord, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while self._record_alive(name, record):
            if time.monotonic() > deadline:
                return False
            time.sleep(_POLL_S / 2)
        return True

    @staticmethod
    def _signal_group(pid: int, sig: signal.Signals) -> None:
        """Signal a live component and everything it spawned."""
        try:
            # Started with start_new_session, so the pid is its group's id. If it is not (the
            # process moved itself to another group), signal the process alone.
            if os.getpgid(pid) == pid:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
        except ProcessLookupError:
            pass

    @staticmethod
    def _kill_stragglers(pid: int) -> None:
        """SIGKILL what is left of a stopped component's process group. Only once the leader's
        pid is gone: the kernel does not reuse a pid while a group of that id has members, so
        the group then holds only the component's own children. If the pid exists (the leader
        lives, or the number now names an unrelated process) this does nothing."""
        try:
            os.getpgid(pid)
            return
        except ProcessLookupError:
            pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)

    # Liveness ------------------------------------------------------------------------------

    def _live_record(self, name: str) -> PidRecord | None:
        record = read_pid_file(self.layout.pid_file(name))
        if record is None or not self._record_alive(name, record):
            return None
        return record

    def _record_alive(self, name: str, record: PidRecord) -> bool:
        child = self._children.get(name)
        if child is not None and child.pid == record.pid:
            # Our own child: poll() reaps it, so a dead one does not linger as a zombie.
            return child.poll() is None
        return is_alive(record)

    def _exit_code(self, name: str) -> int | None:
        child = self._children.get(name)
        return None if child is None else child.poll()

    def exited(self) -> dict[str, int | None]:
        """Components this handle started that have since died, with their exit codes."""
        return {name: self._exit_code(name) for name in self.started if not self.is_running(name)}

    def _say(self, message: str) -> None:
        if self._out is not None:
            print(message, file=self._out, flush=True)


def describe_exit(code: int | None) -> str:
    """' (exit code 3)', ' (killed by SIGKILL)', or '' when the code is unknown (a process
    another supervisor started)."""
    if code is None:
        return ""
    if code < 0:
        try:
            return f" (killed by {signal.Signals(-code).name})"
        except ValueError:
            return f" (killed by signal {-code})"
    return f" (exit code {code})"
