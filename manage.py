#!/usr/bin/env python
"""Django's command-line utility for administrative tasks.

Without ``DJANGO_SETTINGS_MODULE`` a command runs with the production settings, which refuse to
start without their secrets: a forgotten variable on a server must never mean DEBUG, the sandbox
and its public secrets (``seed_demo`` would even accept the demo passwords there). The commands
that only write files of the source tree (migrations, translation catalogs) default to the
development settings instead, so a checkout can run them as is. ``make run`` and ``make test``
export their settings module. See docs/adr/0009.
"""

import os
import sys

PRODUCTION_SETTINGS = "config.settings.production"
DEVELOPMENT_SETTINGS = "config.settings.dev"
SOURCE_TREE_COMMANDS = frozenset({"makemigrations", "makemessages", "compilemessages"})


def settings_module_for(argv: list[str]) -> str:
    """The settings module a command runs with when the environment names none."""
    command = argv[1] if len(argv) > 1 else ""
    return DEVELOPMENT_SETTINGS if command in SOURCE_TREE_COMMANDS else PRODUCTION_SETTINGS


def main() -> None:
    defaulted = "DJANGO_SETTINGS_MODULE" not in os.environ
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings_module_for(sys.argv))
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured:
        if defaulted:
            print(
                f"manage.py: DJANGO_SETTINGS_MODULE is not set, so "
                f"{os.environ['DJANGO_SETTINGS_MODULE']} is in use. To work on a checkout, "
                f"set DJANGO_SETTINGS_MODULE={DEVELOPMENT_SETTINGS} (make run does).",
                file=sys.stderr,
            )
        raise


if __name__ == "__main__":
    main()
