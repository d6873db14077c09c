"""Local development and the one-command demo (``make run``): DEBUG on, sandbox mounted.

The integration secrets default to the sandbox's own values, so the emulator can sign webhooks
the service accepts. Real deployments use ``config.settings.production``, which has no defaults.
"""

import os

for _name, _value in {
    "DEBUG": "true",
    "SANDBOX_ENABLED": "true",
    "MESSENGER_APP_SECRET": "sandbox-app-secret",
    "MESSENGER_VERIFY_TOKEN": "sandbox-verify-token",
    "STRIPE_SECRET_KEY": "sk_test_sandbox",
    "STRIPE_WEBHOOK_SECRET": "whsec_sandbox",
    "FIELD_ENCRYPTION_KEY": "dev-only-field-encryption-key",
}.items():
    os.environ.setdefault(_name, _value)

from config.settings.base import *  # noqa: E402,F403
from config.settings.base import SECRET_KEY as _SECRET_KEY  # noqa: E402

SECRET_KEY = _SECRET_KEY or "dev-insecure-secret-key-change-me-0123456789-abcdefghijklmnop"
