"""``switchyard admin``: the organisation's Admin API (``/v1/organization/...``, in OpenAI's
shapes) from the command line. Every command prints a plain table, or with ``--json`` the API's
JSON; list commands follow ``after``/``has_more`` to the last page unless ``--limit`` is given.

The package, by what each module owns:

- ``_access``: where to connect and with which key (options, environment, the local stack);
- ``_client``: ``AdminClient``, the HTTP calls and paging, httpx's failures translated into
  ``_errors``' tree at that boundary;
- ``_json``, ``_output``: the answers' JSON (amounts as Decimals both ways) and the tables;
- ``_values``: dollar amounts and durations as typed on the command line;
- ``_command``: what every command shares (its client, how it fails, the common options);
- one module per resource group: ``_projects``; ``_keys`` (API keys and service accounts);
  ``_models`` (model permissions and rate limits); ``_money`` (spend limit and credit);
  ``_people`` (users and admin keys); ``_audit``;
- ``_app``: ``create_app``, which assembles them under ``switchyard admin``.

``services.cli`` imports this package for every ``switchyard`` command, so it imports httpx only
when a command runs. Tests build the app with ``create_app(transport=httpx.MockTransport(...))``.
"""

from services.admin_cli._access import ApiAccess
from services.admin_cli._app import create_app
from services.admin_cli._client import AdminClient
from services.admin_cli._errors import AdminError, ApiRefused, ApiUnreachable, BadAnswer
from services.admin_cli._models import rate_limit_id
from services.admin_cli._values import (
    decimal_text,
    parse_amount,
    parse_duration,
    parse_usd,
    usd_to_cents,
)

__all__ = [
    "AdminClient",
    "AdminError",
    "ApiAccess",
    "ApiRefused",
    "ApiUnreachable",
    "BadAnswer",
    "create_app",
    "decimal_text",
    "parse_amount",
    "parse_duration",
    "parse_usd",
    "rate_limit_id",
    "usd_to_cents",
]
