"""``AdminClient``: the Admin API over one connection pool, with httpx's failures translated
into ``AdminError``s here, at the boundary, and lists followed page after page."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from services.admin_cli._access import ApiAccess
from services.admin_cli._errors import ApiRefused, ApiUnreachable, BadAnswer
from services.admin_cli._json import Json, excerpt, read_json

if TYPE_CHECKING:
    import httpx

_PAGE_SIZE = 100  # the Admin API's largest page
_TIMEOUT_S = 30.0


class AdminClient:
    """The Admin API over one connection pool. Every method returns the answer's JSON object
    or raises an ``AdminError``; paths are relative to the base URL (``/organization/...``)."""

    def __init__(self, access: ApiAccess, transport: httpx.BaseTransport | None = None) -> None:
        # Imported when a command runs, not with the package: `switchyard` loads this package
        # for every command, and most never talk to the Admin API.
        import httpx

        self._access = access
        self._http = httpx.Client(
            base_url=access.base_url,
            headers={"authorization": f"Bearer {access.api_key}"},
            timeout=_TIMEOUT_S,
            transport=transport,
            trust_env=False,  # a proxy set for the internet must not see the admin key
        )

    def close(self) -> None:
        self._http.close()

    def get(self, path: str, params: Sequence[tuple[str, str]] = ()) -> Json:
        return self._send("GET", path, params=params)

    def post(self, path: str, body: Json | None = None) -> Json:
        return self._send("POST", path, body=body)

    def delete(self, path: str) -> Json:
        return self._send("DELETE", path)

    def list_all(
        self, path: str, params: Sequence[tuple[str, str]] = (), limit: int | None = None
    ) -> Json:
        """Every item of a list (at most ``limit``), page after page, as one list object in
        the API's shape; ``has_more`` says whether ``limit`` left items behind."""
        items: list[Any] = []
        after: str | None = None
        while True:
            size = _PAGE_SIZE if limit is None else min(_PAGE_SIZE, limit - len(items))
            query = [*params, ("limit", str(size))]
            if after is not None:
                query.append(("after", after))
            page = self.get(path, query)
            data = page.get("data")
            if not isinstance(data, list):
                raise BadAnswer(f"GET {path} did not answer a list: {excerpt(page)}")
            items.extend(data)
            has_more = bool(page.get("has_more"))
            if not has_more or not data or (limit is not None and len(items) >= limit):
                break
            cursor = page.get("last_id") or _id_of(data[-1])
            if not isinstance(cursor, str) or cursor == after:
                # A server that pages without moving would keep this loop going for ever.
                raise BadAnswer(f"GET {path} said has_more but gave no next page")
            after = cursor
        return {
            "object": "list",
            "data": items,
            "first_id": _id_of(items[0]) if items else None,
            "last_id": _id_of(items[-1]) if items else None,
            "has_more": has_more,
        }

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] = (),
        body: Json | None = None,
    ) -> Json:
        import httpx

        url = self._access.base_url + path
        try:
            response = self._http.request(method, path, params=list(params), json=body)
        except httpx.ConnectError as exc:
            raise ApiUnreachable(
                f"cannot connect to the Switchyard API at {url} ({_reason(exc)}); is the stack "
                "running? (`switchyard up` starts it; --base-url or SWITCHYARD_BASE_URL names "
                "another)"
            ) from exc
        except httpx.TimeoutException as exc:
            raise ApiUnreachable(f"no answer from {url} within {_TIMEOUT_S:g} s") from exc
        except httpx.HTTPError as exc:
            raise ApiUnreachable(f"{method} {url} failed: {_reason(exc)}") from exc
        return self._answer(method, url, response)

    def _answer(self, method: str, url: str, response: httpx.Response) -> Json:
        try:
            body = read_json(response.content)
        except ValueError:
            body = None
        if response.is_error:
            error = body.get("error") if isinstance(body, dict) else None
            if not isinstance(error, dict) or not error.get("message"):
                raise ApiRefused(
                    f"{method} {url} answered {excerpt(response.text) or 'nothing'}",
                    status=response.status_code,
                )
            message = str(error["message"])
            if response.status_code in (401, 403):
                message += f" (the key came from {self._access.key_source})"
            raise ApiRefused(
                message,
                status=response.status_code,
                code=_optional_str(error.get("code")),
                error_type=_optional_str(error.get("type")),
                param=_optional_str(error.get("param")),
            )
        if not isinstance(body, dict):
            raise BadAnswer(f"{method} {url} did not answer a JSON object: {excerpt(body)}")
        return body


def _id_of(item: object) -> object:
    return item.get("id") if isinstance(item, dict) else None


def _reason(exc: Exception) -> str:
    return str(exc) or exc.__class__.__name__


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)
