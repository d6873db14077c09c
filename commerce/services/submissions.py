"""Submission keys: how a staff action that creates rows and messages stays harmless when the
same submission arrives twice (a double click, a browser resubmit, an API client's retry).

Every form of such an action carries a one-time token (``commerce.forms.SubmissionField``,
generated when the page is rendered); API clients send the same thing as an ``Idempotency-Key``
header. The service takes it as ``submission_key``, checks it under the lock it takes anyway
(the order row, the customer's outbox key) and stores it with what the submission created: the
second arrival finds that and returns it, changing nothing and sending nothing. The same key
with different data is refused. See ADR 0007.
"""

from __future__ import annotations

import re

from django.utils.translation import gettext as _

from commerce.exceptions import SubmissionReusedError
from core.exceptions import ApplicationError

__all__ = ["SUBMISSION_KEY_MAX", "submission_key_clean", "submission_reused"]

SUBMISSION_KEY_MAX = 100
# Printable ASCII without spaces: a UUID, a ULID, "order-42-fulfil-1"...
_KEY = re.compile(rf"[\x21-\x7e]{{1,{SUBMISSION_KEY_MAX}}}")


def submission_key_clean(value: str | None) -> str:
    """The key, stripped; ``""`` when none was given (the action is then not deduplicated).

    :raises ApplicationError: ``submission_key_invalid``: longer than 100 characters, or with
        spaces or characters outside printable ASCII.
    """
    key = (value or "").strip()
    if key and not _KEY.fullmatch(key):
        raise ApplicationError(
            _("The submission key must be 1 to %(max)d printable ASCII characters without spaces.")
            % {"max": SUBMISSION_KEY_MAX},
            code="submission_key_invalid",
        )
    return key


def submission_reused() -> SubmissionReusedError:
    """The error for a key that comes back with other data (a page kept open and edited after
    it was sent, or an API client reusing a key for a new action)."""
    return SubmissionReusedError(
        _("This form was already sent with other details. Reload the page to record another one.")
    )
