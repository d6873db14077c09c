"""Fixtures of the fault tests. Every module here carries ``pytestmark = pytest.mark.faults``
(plus ``postgres`` / ``redis`` where a real server is needed), so ``pytest -m faults`` runs
them alone."""

from __future__ import annotations

from tests.messenger.graph_stub import graph_stub  # noqa: F401  (fixture)
from tests.payments.stripe_stub import stripe_stub  # noqa: F401  (fixture)
