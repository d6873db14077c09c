"""Settings of the service processes the fault tests start: the test settings, except that a
message a killed worker had taken becomes visible to other workers again after seconds, not an
hour (Redis has no acknowledgements; kombu restores unacknowledged messages after the broker's
visibility timeout). The mechanism is the production one; only its timing is shortened."""

from config.settings.test import *  # noqa: F403
from config.settings.test import CELERY_BROKER_TRANSPORT_OPTIONS as _TRANSPORT

VISIBILITY_TIMEOUT_SECONDS = 5

CELERY_BROKER_TRANSPORT_OPTIONS = {
    **_TRANSPORT,
    "visibility_timeout": VISIBILITY_TIMEOUT_SECONDS,
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
}
