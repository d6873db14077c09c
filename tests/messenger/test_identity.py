"""Who a conversation is with: a PSID, or a plugin user's ``ref:<user_ref>`` key."""

from __future__ import annotations

import pytest

from messenger.identity import is_user_ref_key, psid_from, recipient_for, user_ref_key


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2401234567890123", "2401234567890123"),
        (2401234567890123, "2401234567890123"),  # Graph ids sometimes arrive as numbers
        ("9" * 64, "9" * 64),
        ("9" * 65, None),
        ("24012abc", None),
        ("٢٤٠١", None),  # Arabic-Indic digits are digits to str.isdigit, not to Graph
        (True, None),
        (None, None),
        ({"id": "1"}, None),
        ("", None),
    ],
)
def test_psid_from(value, expected):
    assert psid_from(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("cp-5f1d0c", "ref:cp-5f1d0c"),
        ("x" * 60, "ref:" + "x" * 60),
        ("x" * 61, None),  # the key must fit the 64-character columns
        ("", None),
        ("tab\\there", "ref:tab\\there"),
        ("new\nline", None),
        ("é", None),
        (12345, None),
    ],
)
def test_user_ref_key(value, expected):
    assert user_ref_key(value) == expected


def test_a_ref_key_is_answered_by_user_ref_and_a_psid_by_id():
    assert recipient_for("ref:cp-5f1d0c") == {"user_ref": "cp-5f1d0c"}
    assert recipient_for("2401234567890123") == {"id": "2401234567890123"}
    assert is_user_ref_key("ref:cp-5f1d0c") and not is_user_ref_key("2401234567890123")
