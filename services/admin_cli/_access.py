"""Where ``switchyard admin`` connects, and with which key, settled by ``ApiAccess.resolve``:

- base URL: ``--base-url``, else ``SWITCHYARD_BASE_URL``, else
  ``http://127.0.0.1:$SWITCHYARD_INGRESS_PORT/v1`` with the port from the environment or the
  local stack's ``$SWITCHYARD_HOME/stack.env`` (else 8080 plus ``SWITCHYARD_PORT_OFFSET``);
- key: ``--api-key``, else ``SWITCHYARD_API_KEY``, else ``SWITCHYARD_ADMIN_KEY``, else the key
  the local stack runs with (``stack.env``, then ``$SWITCHYARD_HOME/admin_key``, both written by
  ``switchyard up``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from services.admin_cli._errors import AdminError
from services.common.stack_env import parse_stack_env


@dataclass(frozen=True, kw_only=True)
class ApiAccess:
    base_url: str
    api_key: str = field(repr=False)
    # Named when the API refuses the key: the usual cause is a key from the wrong place
    # (a project key left in SWITCHYARD_API_KEY, say).
    key_source: str

    @classmethod
    def resolve(
        cls, *, base_url: str | None, api_key: str | None, environ: Mapping[str, str]
    ) -> ApiAccess:
        # The layout `switchyard up` writes by names the files and the default port; imported
        # here, as services.stack loads httpx, redis and aiokafka.
        from services.stack import StackLayout

        try:
            layout = StackLayout.from_env(environ)
        except ValueError as exc:
            raise AdminError(str(exc)) from None
        stack_env = _read_stack_env(layout.stack_env_file)
        key, source = _find_key(api_key, environ, stack_env, layout.stack_env_file)
        if key is None:
            key, source = _read_key_file(layout.admin_key_file), str(layout.admin_key_file)
        if not key:
            raise AdminError(
                "no admin key: pass --api-key, set SWITCHYARD_API_KEY or SWITCHYARD_ADMIN_KEY, "
                "or run where the local stack lives (`switchyard up` keeps its key in "
                "$SWITCHYARD_HOME/admin_key)"
            )
        url = base_url or environ.get("SWITCHYARD_BASE_URL")
        if not url:
            port = environ.get("SWITCHYARD_INGRESS_PORT") or stack_env.get(
                "SWITCHYARD_INGRESS_PORT", str(layout.ingress_port)
            )
            url = f"http://127.0.0.1:{port}/v1"
        return cls(base_url=url.rstrip("/"), api_key=key, key_source=source)


def _find_key(
    given: str | None, environ: Mapping[str, str], stack_env: Mapping[str, str], stack_file: Path
) -> tuple[str | None, str]:
    if given:
        return given, "--api-key"
    for name in ("SWITCHYARD_API_KEY", "SWITCHYARD_ADMIN_KEY"):
        if environ.get(name):
            return environ[name], name
    # stack.env before admin_key: a stack started with SWITCHYARD_ADMIN_KEY set runs with that
    # key, which stack.env records and admin_key does not.
    if stack_env.get("SWITCHYARD_ADMIN_KEY"):
        return stack_env["SWITCHYARD_ADMIN_KEY"], str(stack_file)
    return None, ""


def _read_stack_env(path: Path) -> dict[str, str]:
    """The local stack's variables; none where no stack has been started."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise AdminError(f"cannot read {path}: {exc}") from None
    return parse_stack_env(text)


def _read_key_file(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AdminError(f"cannot read {path}: {exc}") from None
