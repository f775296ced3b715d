"""``create_app``: the ``switchyard admin`` command group, assembled from the resource groups."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from services.admin_cli._audit import audit
from services.admin_cli._command import Invocation
from services.admin_cli._keys import keys_app, service_accounts_app
from services.admin_cli._models import limits_app, models_app
from services.admin_cli._money import credit_app, spend_limit_app
from services.admin_cli._people import admin_keys_app, users_app
from services.admin_cli._projects import projects_app

if TYPE_CHECKING:
    import httpx

# In the order `switchyard admin --help` lists them.
_GROUPS = (
    ("projects", projects_app),
    ("service-accounts", service_accounts_app),
    ("keys", keys_app),
    ("models", models_app),
    ("limits", limits_app),
    ("spend-limit", spend_limit_app),
    ("credit", credit_app),
    ("users", users_app),
    ("admin-keys", admin_keys_app),
)


def create_app(*, transport: httpx.BaseTransport | None = None) -> typer.Typer:
    """The ``switchyard admin`` command group; ``transport`` replaces the network (tests)."""
    app = typer.Typer(no_args_is_help=True)

    @app.callback()
    def admin(
        ctx: typer.Context,
        base_url: Annotated[
            str | None,
            typer.Option(
                help="The API's base URL. Default: SWITCHYARD_BASE_URL, else the local"
                " stack's ingress, http://127.0.0.1:$SWITCHYARD_INGRESS_PORT/v1."
            ),
        ] = None,
        api_key: Annotated[
            str | None,
            typer.Option(
                help="An admin key. Default: SWITCHYARD_API_KEY, else SWITCHYARD_ADMIN_KEY,"
                " else the local stack's (from $SWITCHYARD_HOME). Prefer the environment: it"
                " keeps the key out of the process list."
            ),
        ] = None,
    ) -> None:
        """Manage projects, keys, limits, credit and users through the Admin API
        (/v1/organization/...). Every command takes --json to print the API's JSON."""
        ctx.obj = Invocation(base_url=base_url, api_key=api_key, transport=transport)

    for name, group in _GROUPS:
        app.add_typer(group, name=name)
    app.command("audit")(audit)
    return app
