"""The failures an admin command cannot go on from. ``AdminClient`` translates httpx's into
them at its boundary; the command prints the message once, on stderr, and exits with code 1::

    AdminError
    ├── ApiUnreachable    no HTTP answer: connection refused, timeout, ...
    ├── ApiRefused        an HTTP error answer, with OpenAI's error fields
    └── BadAnswer         an answer that is not the JSON the command expects

Bad input on the command line (an amount in fractions of a cent, ``--expires-in 3x``) is not
one of them: it is typer's usage error, exit code 2, and sends nothing.
"""

from __future__ import annotations


class AdminError(Exception):
    """Ends an admin command: its message goes to stderr and the exit code is 1."""


class ApiUnreachable(AdminError):
    pass


class ApiRefused(AdminError):
    """An error answer; the message is the API's, followed by the status and OpenAI's ``code``
    (or ``type``) and ``param``."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: str | None = None,
        error_type: str | None = None,
        param: str | None = None,
    ) -> None:
        detail = " ".join(str(part) for part in (status, code or error_type) if part)
        if param:
            detail += f", param {param}"
        super().__init__(f"{message} ({detail})")
        self.status = status
        self.code = code
        self.error_type = error_type
        self.param = param


class BadAnswer(AdminError):
    pass
