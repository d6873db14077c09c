"""The Graph API client: the only module of the project that calls the Graph API.

Send API (``POST /me/messages``), User Profile API (``GET /<psid>``) and Messenger Profile API
(``POST``/``DELETE /me/messenger_profile``), with the page's token. Every failure becomes a
:class:`messenger.exceptions.GraphError` classified transient or permanent (DESIGN.md section 7);
this module never retries: the outbox decides when to try again.

The page token and its ``appsecret_proof`` travel as query parameters. Neither is ever logged or
put in an error message: failures are reported with the endpoint only, and the ``requests``
exception (whose text contains the full URL) is not chained to the ``GraphError``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import threading
import uuid
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import requests
from django.conf import settings
from django.utils.functional import Promise

from messenger.exceptions import NETWORK_ERROR_CODE, TIMEOUT_ERROR_CODE, GraphError

if TYPE_CHECKING:
    from messenger.models import MessengerPage

logger = logging.getLogger(__name__)


class _RedactTokens(logging.Filter):
    """urllib3 logs each request line, query string included, at DEBUG: mask the token and the
    proof there, so turning debug logging on never writes a page token to the logs."""

    _pattern = re.compile(r"(access_token|appsecret_proof)=[^&\s\"']+")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "access_token=" in message or "appsecret_proof=" in message:
            record.msg, record.args = self._pattern.sub(r"\1=***", message), ()
        return True


_urllib3_logger = logging.getLogger("urllib3.connectionpool")
if not any(isinstance(f, _RedactTokens) for f in _urllib3_logger.filters):
    _urllib3_logger.addFilter(_RedactTokens())

CONNECT_TIMEOUT_SECONDS = 3.0
READ_TIMEOUT_SECONDS = 10.0
PROFILE_FIELDS = ("first_name", "last_name", "profile_pic", "locale", "timezone")


# --------------------------------------------------------------------------------------------
# JSON with exact decimals: receipt amounts are ``Decimal`` and must reach Graph as the same
# number, never through a binary float.
# --------------------------------------------------------------------------------------------


def json_dumps_exact(value: Any) -> str:
    """``json.dumps`` that writes each ``Decimal`` as a JSON number with exactly its digits.

    ``Decimal("12.50")`` is written ``12.50``; a non-finite Decimal raises ``ValueError`` (JSON
    has no NaN or infinity). Lazy translations become their text. Other types are as
    ``json.dumps`` (strict: no NaN floats either).
    """
    marker = f"__decimal_{uuid.uuid4().hex}_"
    decimals: list[str] = []

    def replace(item: Any) -> Any:
        if isinstance(item, Decimal):
            if not item.is_finite():
                raise ValueError(f"{item} cannot be written as a JSON number")
            decimals.append(format(item, "f"))
            return f"{marker}{len(decimals) - 1}"
        if isinstance(item, Promise):  # a lazy translation
            return str(item)
        if isinstance(item, dict):
            return {str(key): replace(val) for key, val in item.items()}
        if isinstance(item, list | tuple):
            return [replace(val) for val in item]
        return item

    text = json.dumps(replace(value), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for index, digits in enumerate(decimals):
        text = text.replace(f'"{marker}{index}"', digits, 1)
    return text


def json_normalize(value: Any) -> Any:
    """``value`` as plain JSON types (what a ``JSONField`` can store): Decimals become the
    nearest float, whose shortest representation is the same digits for any amount of up to 15
    significant digits, so it serializes back to the same number."""
    return json.loads(json_dumps_exact(value))


# --------------------------------------------------------------------------------------------
# Transport
# --------------------------------------------------------------------------------------------

_local = threading.local()


def _session() -> requests.Session:
    """One keep-alive session per thread and process (a forked worker never reuses the
    parent's sockets)."""
    pid = os.getpid()
    if getattr(_local, "pid", None) != pid:
        _local.session = requests.Session()
        _local.session.headers["User-Agent"] = "chatcommerce-messenger/1"
        _local.pid = pid
    return _local.session


def _timeout() -> tuple[float, float]:
    """``(connect, read)`` seconds: ``settings.GRAPH_API_TIMEOUT`` (a number: the read timeout,
    or a ``(connect, read)`` pair), default 3 s and 10 s."""
    value = getattr(settings, "GRAPH_API_TIMEOUT", None)
    if value is None:
        return (CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS)
    if isinstance(value, Sequence) and not isinstance(value, str):
        connect, read = value
        return (float(connect), float(read))
    return (min(CONNECT_TIMEOUT_SECONDS, float(value)), float(value))


def appsecret_proof(token: str, app_secret: str) -> str:
    """HMAC-SHA256 of the access token keyed with the app secret, hex (Graph's
    ``appsecret_proof``)."""
    return hmac.new(app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()


def _redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "••••")
    return text


def _error_from_response(
    response: requests.Response, endpoint: str, secrets: Iterable[str]
) -> GraphError:
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return GraphError(
            None, None, f"{endpoint}: HTTP {response.status_code}", None, response.status_code
        )
    code, subcode = error.get("code"), error.get("error_subcode")
    return GraphError(
        code if isinstance(code, int) else None,
        subcode if isinstance(subcode, int) else None,
        _redact(str(error.get("message") or ""), secrets)[:400],
        None,
        response.status_code,
        error_type=str(error.get("type") or ""),
        fbtrace_id=str(error.get("fbtrace_id") or ""),
    )


class GraphClient:
    """Graph API calls on behalf of one Messenger page (its token, the app's secret).

    The base URL and version are read from settings at each call (``GRAPH_API_BASE``,
    ``GRAPH_API_VERSION``), so tests and the sandbox can point them elsewhere.
    """

    def __init__(self, page: MessengerPage):
        self.page = page

    # ---- public calls -----------------------------------------------------------------------

    def send(self, body: dict[str, Any]) -> str:
        """``POST /me/messages`` with a full Send API body; returns Graph's ``message_id``
        (empty for a sender action, which gets none).

        :raises GraphError: the call failed (``.transient`` says whether to retry).
        """
        data = self._call("POST", "me/messages", body=body)
        message_id = data.get("message_id") if isinstance(data, dict) else None
        if not message_id:
            if "sender_action" in body and "message" not in body:
                return ""
            raise GraphError(None, None, "me/messages: answer without message_id", False, 200)
        return str(message_id)

    def user_profile(self, psid: str, fields: Iterable[str] = PROFILE_FIELDS) -> dict[str, Any]:
        """The User Profile API fields of ``psid`` (missing ones are simply absent).

        :raises GraphError: the call failed.
        """
        if not str(psid).isdigit():
            raise ValueError("a PSID has digits only")
        data = self._call("GET", str(psid), params={"fields": ",".join(fields)})
        return data if isinstance(data, dict) else {}

    def profile_set(self, body: dict[str, Any]) -> None:
        """``POST /me/messenger_profile`` (greeting, get_started, persistent_menu, ...).

        :raises GraphError: the call failed or Graph did not answer ``success``.
        """
        self._expect_success(self._call("POST", "me/messenger_profile", body=body))

    def profile_delete(self, fields: list[str]) -> None:
        """``DELETE /me/messenger_profile`` for the named fields.

        :raises GraphError: the call failed or Graph did not answer ``success``.
        """
        self._expect_success(
            self._call("DELETE", "me/messenger_profile", body={"fields": list(fields)})
        )

    # ---- internals --------------------------------------------------------------------------

    @staticmethod
    def _expect_success(data: Any) -> None:
        if not (isinstance(data, dict) and data.get("result") == "success"):
            raise GraphError(None, None, "me/messenger_profile: answer without success", False, 200)

    def _auth_params(self) -> dict[str, str]:
        token = self.page.access_token
        if not token:
            raise GraphError(None, None, "the page has no access token", False, None)
        params = {"access_token": token}
        secret = settings.MESSENGER_APP_SECRET
        if secret:
            params["appsecret_proof"] = appsecret_proof(token, secret)
        return params

    def _call(
        self,
        method: str,
        endpoint: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> Any:
        url = f"{settings.GRAPH_API_BASE.rstrip('/')}/{settings.GRAPH_API_VERSION}/{endpoint}"
        auth = self._auth_params()
        query = {**(params or {}), **auth}
        data = json_dumps_exact(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        try:
            response = _session().request(
                method, url, params=query, data=data, headers=headers, timeout=_timeout()
            )
        except requests.Timeout:
            error = GraphError(
                None, None, f"{endpoint}: timed out", True, None, kind=TIMEOUT_ERROR_CODE
            )
        except requests.RequestException as exc:
            # The exception's text holds the URL with the token: report its type only.
            error = GraphError(
                None, None, f"{endpoint}: {type(exc).__name__}", True, None, kind=NETWORK_ERROR_CODE
            )
        else:
            if response.ok:
                try:
                    return response.json()
                except ValueError:
                    error = GraphError(
                        None, None, f"{endpoint}: answer is not JSON", False, response.status_code
                    )
            else:
                error = _error_from_response(response, endpoint, auth.values())
        logger.warning(
            "Graph API %s %s failed for page %s: %s (transient=%s, fbtrace_id=%s)",
            method,
            endpoint,
            self.page.page_id,
            error,
            error.transient,
            error.fbtrace_id or "-",
        )
        raise error
