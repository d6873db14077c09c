"""The e2e harness's small types and constants, shared by ``conftest.py`` and the journeys."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "e2e"
PHONE = {"width": 390, "height": 844}  # an everyday phone, in CSS pixels
DESKTOP = {"width": 1280, "height": 900}  # the operator's screen
TIMEOUT_MS = 20_000  # the longest wait for one thing to appear (worker, webhooks, Stripe)

DEMO_PAGE_ID = "104412345678901"  # seed_demo's and sandbox_seed's default page
DEMO_STAFF = ("demo", "demo-shop-2026")  # seed_demo's owner login (DEMO_STAFF_PASSWORD)
DEMO_OPERATOR = ("operator", "operator-2026")  # seed_demo's operator (DEMO_OPERATOR_PASSWORD)


@dataclass
class Shop:
    """The seeded demo shop as the browser reaches it."""

    url: str  # the live server, e.g. http://localhost:41234
    page_id: str = DEMO_PAGE_ID
    staff: tuple[str, str] = DEMO_STAFF
    seed_output: str = ""

    def at(self, path: str) -> str:
        return self.url.rstrip("/") + "/" + path.lstrip("/")


@dataclass
class Journey:
    """One browser tab at a phone's size, its screenshots, and the taps counted on the way."""

    page: object  # playwright.sync_api.Page
    name: str
    folder: Path
    taps: int = 0
    tapped: list[str] = field(default_factory=list)
    shots: int = 0

    def tap(self, locator, label: str = "") -> None:
        """Click ``locator`` as the shopper's finger would, and count it.

        The emulator ignores taps while it is still posting the previous one's webhook (its
        ``body.busy``), as a thumb waits for Messenger; so this waits for that to end.
        """
        label = label or locator.inner_text()[:40]
        locator.click()
        self.taps += 1
        self.tapped.append(label)
        self.page.wait_for_function("() => !document.body.classList.contains('busy')")

    def reset_taps(self) -> None:
        self.taps, self.tapped = 0, []

    def shot(self, step: str, page=None) -> Path:
        """Save ``NN-step.png`` for this journey: of the phone, or of another ``page`` (the
        dashboard), numbered in the same sequence."""
        self.shots += 1
        path = self.folder / f"{self.shots:02d}-{step}.png"
        (page or self.page).screenshot(path=str(path))
        return path
