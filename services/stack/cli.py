"""``switchyard up|down|status|run``: the local stack from the command line.

``services.cli.main`` calls ``register(app)``; the commands read the layout from
``SWITCHYARD_HOME`` and ``SWITCHYARD_PORT_OFFSET`` like everything else.
"""

from __future__ import annotations

import signal
import sys
import time
from types import FrameType
from typing import Annotated

import typer

from services.stack._errors import StackError
from services.stack._layout import StackLayout
from services.stack._supervisor import Stack, describe_exit

_ONLY_HELP = "Comma-separated components to act on (e.g. kafka,redis); default: all."


def register(app: typer.Typer) -> None:
    app.command("up")(up)
    app.command("down")(down)
    app.command("status")(status)
    app.command("run")(run)


def _stack() -> Stack:
    return Stack(StackLayout.from_env(), out=sys.stdout)


def _parse_only(only: str | None) -> list[str] | None:
    if not only:
        return None
    return [name.strip() for name in only.split(",") if name.strip()]


def _fail(exc: StackError) -> typer.Exit:
    print(f"error: {exc}", file=sys.stderr)
    return typer.Exit(code=1)


def _print_access(stack: Stack) -> None:
    print(f"OpenAI base URL: {stack.layout.base_url}")
    print(f"Admin key:       {stack.admin_key()}")
    print(f"Logs:            {stack.layout.log_dir}")


def up(only: Annotated[str | None, typer.Option(help=_ONLY_HELP)] = None) -> None:
    """Start the local stack (what is not running yet) and return once it is healthy."""
    stack = _stack()
    try:
        stack.up(_parse_only(only))
    except StackError as exc:
        if stack.started:
            # Left running on purpose: the log of what failed is often explained by them, and
            # the next `up` starts only what is missing.
            print(f"still running: {', '.join(stack.started)} (`switchyard down` stops them)")
        raise _fail(exc) from None
    _print_access(stack)


def down(only: Annotated[str | None, typer.Option(help=_ONLY_HELP)] = None) -> None:
    """Stop the components the pid files name (and nothing else)."""
    stack = _stack()
    try:
        stopped = stack.down(_parse_only(only))
    except StackError as exc:
        raise _fail(exc) from None
    if not stopped:
        print("nothing was running")


def status() -> None:
    """Show each component: running or stopped, pid, port, health."""
    stack = Stack(StackLayout.from_env())
    print(f"{'COMPONENT':<18}{'STATE':<10}{'PID':<9}{'PORT':<7}HEALTH")
    for part in stack.status():
        state = "running" if part.running else "stopped"
        pid = str(part.pid) if part.pid is not None else "-"
        health = "-" if not part.running else ("ok" if part.healthy else part.problem)
        print(f"{part.name:<18}{state:<10}{pid:<9}{part.port:<7}{health}")


def run(only: Annotated[str | None, typer.Option(help=_ONLY_HELP)] = None) -> None:
    """Run the stack in the foreground; Ctrl-C stops what this command started."""
    stack = _stack()

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    # `kill <pid>` and a CI runner's SIGTERM get the same orderly stop as Ctrl-C. SIGINT is set
    # too: a shell without job control starts background commands with SIGINT ignored, and
    # Python keeps an inherited "ignore".
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    code = 0
    try:
        stack.up(_parse_only(only))
        _print_access(stack)
        print("running; Ctrl-C stops the stack")
        reported: set[str] = set()
        while True:
            time.sleep(1.0)
            for name, exit_code in stack.exited().items():
                if name in reported:
                    continue
                reported.add(name)
                how = describe_exit(exit_code)
                print(f"{name} exited{how}; last lines of its log:", file=sys.stderr)
                print(stack.log_tail(name, 15), file=sys.stderr)
                print(f"(`switchyard up --only {name}` starts it again)", file=sys.stderr)
    except KeyboardInterrupt:
        print("\nstopping")
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 1
    finally:
        # A second Ctrl-C must not cut the orderly stop short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop_started()
    raise typer.Exit(code=code)
