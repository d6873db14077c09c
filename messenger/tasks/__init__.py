"""Celery tasks of the messenger app (autodiscovered as ``messenger.tasks``): thin wrappers
around services. One module per area: the inbox, the outbox, the Messenger Profile."""

from messenger.tasks.inbox import *  # noqa: F403
from messenger.tasks.outbox import *  # noqa: F403
from messenger.tasks.profile import *  # noqa: F403
