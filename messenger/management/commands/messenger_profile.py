"""``manage.py messenger_profile sync [--page-id ID]``: push the Messenger Profile of pages.

Without ``--page-id`` every active page is pushed; with it, that page (active or not). Prints one
line per page and exits non-zero when any page failed or was refused by the rate limit.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from messenger.models import MessengerPage
from messenger.services.profile import ProfileRateLimited, messenger_profile_sync


class Command(BaseCommand):
    help = "Push greeting, Get Started, menu, ice breakers and whitelisted domains to Messenger."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        sync = actions.add_parser(
            "sync",
            help="Push the Messenger Profile of every active page, or of one page.",
        )
        sync.add_argument(
            "--page-id",
            dest="page_id",
            help="The Facebook page id of the page to push (default: every active page).",
        )

    def handle(self, *args, action: str, page_id: str | None = None, **options):
        pages = MessengerPage.objects.select_related("merchant").order_by("page_id")
        if page_id:
            pages = list(pages.filter(page_id=page_id))
            if not pages:
                raise CommandError(f"No Messenger page with page id {page_id}.")
        else:
            pages = list(pages.filter(is_active=True))
            if not pages:
                self.stdout.write("No active Messenger pages.")
                return

        failed = 0
        for page in pages:
            label = f"{page.name} ({page.page_id})"
            try:
                result = messenger_profile_sync(page=page)
            except ProfileRateLimited as exc:
                failed += 1
                self.stdout.write(self.style.ERROR(f"error {label}: {exc.message}"))
                continue
            if result.ok:
                self.stdout.write(self.style.SUCCESS(f"ok    {label}"))
                for warning in result.warnings:
                    self.stdout.write(self.style.WARNING(f"      {warning}"))
            else:
                failed += 1
                self.stdout.write(self.style.ERROR(f"error {label}: {result.error}"))

        if failed:
            raise CommandError(f"{failed} of {len(pages)} pages failed.")
