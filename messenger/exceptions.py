"""Errors of the messenger app.

``GraphError`` is an outside system failing (the Graph API, or the network to it): it is never
shown to a shopper. The outbox records it on the message row, retries it when it is transient and
flags the page when the token was rejected.
"""

from __future__ import annotations

# DESIGN.md section 7. Retried with backoff: timeouts and network errors, 5xx, 1200 (temporary
# send failure), rate limits. 1 and 2 are Graph's "unknown"/"service" errors ("temporary issue
# due to downtime, retry"); 17 (user request limit) and 341 (application limit) are throttling
# too, per Graph's error-handling guide.
TRANSIENT_CODES = frozenset({1, 2, 4, 17, 341, 613, 1200})
# Never retried, whatever the HTTP status: the same request would fail the same way.
TOKEN_INVALID_CODE = 190
PERMANENT_CODES = frozenset({10, 100, 190, 551})  # 10/2018278 outside window, 100/2018001 no user

NETWORK_ERROR_CODE = "network"
TIMEOUT_ERROR_CODE = "timeout"


def graph_error_is_transient(
    *, code: int | None, subcode: int | None, http_status: int | None
) -> bool:
    """Whether a failed Graph call is worth repeating later (DESIGN.md section 7).

    A known permanent code wins over the HTTP status; then known transient codes; then any 5xx
    or 429 (also without a Graph error body, e.g. a proxy's 502); everything else is permanent.
    ``http_status`` None means no answer at all (timeout, connection refused): transient.
    """
    if code in PERMANENT_CODES:
        return False
    if code in TRANSIENT_CODES:
        return True
    if http_status is None:
        return True
    return http_status >= 500 or http_status == 429


class GraphError(Exception):
    """A Graph API call failed.

    ``code``/``subcode`` are Graph's ``error.code``/``error.error_subcode`` (None when there was
    no Graph error body); ``http_status`` is None when no answer came (timeout, network).
    ``transient`` defaults to the DESIGN.md section 7 classification.
    """

    def __init__(
        self,
        code: int | None,
        subcode: int | None,
        message: str,
        transient: bool | None = None,
        http_status: int | None = None,
        *,
        error_type: str = "",
        fbtrace_id: str = "",
        kind: str = "",
    ):
        if transient is None:
            transient = graph_error_is_transient(
                code=code, subcode=subcode, http_status=http_status
            )
        self.code = code
        self.subcode = subcode
        self.message = message
        self.transient = transient
        self.http_status = http_status
        self.error_type = error_type
        self.fbtrace_id = fbtrace_id
        self.kind = kind  # "timeout" or "network" when no answer came
        super().__init__(str(self))

    @property
    def token_invalid(self) -> bool:
        """Graph rejected the page token (190): the page must be given a new one."""
        return self.code == TOKEN_INVALID_CODE

    @property
    def error_code(self) -> str:
        """A short stable label for the outbox row: ``551``, ``100/2018001``, ``http_502``,
        ``timeout``, ``network``."""
        if self.code is not None:
            return f"{self.code}/{self.subcode}" if self.subcode is not None else str(self.code)
        if self.http_status is not None:
            return f"http_{self.http_status}"
        return self.kind or NETWORK_ERROR_CODE

    def __str__(self) -> str:
        where = f"HTTP {self.http_status}" if self.http_status is not None else "no answer"
        return f"Graph API error {self.error_code} ({where}): {self.message}"

    def __repr__(self) -> str:
        return (
            f"GraphError(code={self.code!r}, subcode={self.subcode!r}, "
            f"transient={self.transient!r}, http_status={self.http_status!r})"
        )
