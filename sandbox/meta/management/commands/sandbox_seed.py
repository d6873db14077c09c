"""``manage.py sandbox_seed [--page-id ID] [--token TOKEN] [--name NAME]``: register a page
with the Messenger stand-in, and its two demo shoppers. Idempotent.

The defaults match ``manage.py seed_demo`` on the service side (page ``104412345678901``, token
``sandbox-page-token-<page id>``), so the service's Graph calls are accepted.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from sandbox.meta.services.shoppers import sandbox_page_seed

DEFAULT_PAGE_ID = "104412345678901"
DEFAULT_NAME = "Souq Demo"
_PAGE_ID = re.compile(r"[0-9]{1,32}")


class Command(BaseCommand):
    help = "Register a page (and two demo shoppers, English and Arabic) with the Messenger sandbox."

    def add_arguments(self, parser):
        parser.add_argument("--page-id", default=DEFAULT_PAGE_ID, help="Facebook page id (digits).")
        parser.add_argument(
            "--token", default=None, help="Page access token (default sandbox-page-token-<id>)."
        )
        parser.add_argument("--name", default=DEFAULT_NAME, help="Page name shown in the chat.")

    def handle(self, *args, page_id, token, name, **options):
        page_id = str(page_id).strip()
        if not _PAGE_ID.fullmatch(page_id):
            raise CommandError(f"--page-id must be 1 to 32 digits, got {page_id!r}.")
        token = (token or f"sandbox-page-token-{page_id}").strip()
        if not token or len(token) > 255:
            raise CommandError("--token must be 1 to 255 characters.")
        name = name.strip()
        if not name or len(name) > 200:
            raise CommandError("--name must be 1 to 200 characters.")
        result = sandbox_page_seed(page_id=page_id, token=token, name=name)
        state = "registered" if result.page_created else "already registered"
        base = settings.PUBLIC_BASE_URL.rstrip("/")
        self.stdout.write(self.style.SUCCESS(f"Sandbox page {page_id} ({name}) {state}."))
        self.stdout.write(f"  shoppers  {result.shoppers_created} created")
        self.stdout.write(f"  chat      {base}/sandbox/")
