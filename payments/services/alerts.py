"""Telling people that a payment needs a human: a log line now, emails after commit."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import mail_admins, send_mail
from django.db import transaction

from commerce.models import Order, OrderEvent
from commerce.services.orders import order_flag_for_review
from commerce.services.staff_alerts import staff_recipients

__all__ = ["operators_alert", "order_flag_and_alert"]

logger = logging.getLogger("payments.alerts")


def operators_alert(*, order: Order, subject: str, message: str) -> None:
    """Log ``message`` as an error and, once the transaction commits, mail it to the site's
    ``ADMINS`` and to the merchant's active owners and managers. Mail failures are logged,
    never raised: an alert must not undo the work it reports."""
    logger.error("Order %s (id %s): %s", order.number, order.pk, message)
    order_id, number, merchant_id = order.pk, order.number, order.merchant_id

    def send() -> None:
        body = f"{message}\n\nOrder {number} (id {order_id}) is flagged for review."
        try:
            mail_admins(subject, body, fail_silently=True)
            recipients = staff_recipients(merchant_id=merchant_id)
            if recipients:
                send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
        except Exception:
            logger.exception("Could not mail the alert about order %s.", number)

    transaction.on_commit(send)


def order_flag_and_alert(*, order: Order, reason: str, subject: str, details: str) -> Order:
    """Flag ``order`` for review (``reason`` shows in the admin, 200 characters at most) and
    alert the operators with the longer ``details``. Call inside the caller's transaction."""
    flagged = order_flag_for_review(
        order=order, reason=reason[:200], actor=OrderEvent.Actor.PROVIDER
    )
    operators_alert(order=order, subject=subject, message=details)
    return flagged
