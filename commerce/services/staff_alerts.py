"""E-mail to a merchant's staff when an order is paid (owners and managers with an address).

Subscribed to ``OrderNotice.PAID`` in ``CommerceConfig.ready``. The notice handler only schedules
a task after commit (handlers must not do network I/O); the task renders and sends the mail.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import translation

from commerce.models import MerchantMembership, Order
from commerce.selectors.access import CATALOG_EDITOR_ROLES

logger = logging.getLogger(__name__)


def staff_recipients(*, merchant_id: int) -> list[str]:
    """E-mail addresses of the merchant's active owners and managers."""
    return sorted(
        set(
            MerchantMembership.objects.filter(
                merchant_id=merchant_id,
                role__in=CATALOG_EDITOR_ROLES,
                user__is_active=True,
            )
            .exclude(user__email="")
            .values_list("user__email", flat=True)
        )
    )


def order_paid_schedule_staff_alert(order: Order, **data) -> None:
    """``OrderNotice.PAID`` handler: e-mail the staff once the payment has committed."""
    order_id = order.pk
    transaction.on_commit(lambda: _enqueue_staff_alert(order_id))


def _enqueue_staff_alert(order_id: int) -> None:
    from commerce.tasks import order_paid_alert_staff

    try:
        order_paid_alert_staff.delay(order_id)
    except Exception:  # the broker is down: the order is paid all the same; log and move on
        logger.exception("could not enqueue the staff e-mail for order %s", order_id)


def order_paid_alert_staff_send(*, order_id: int) -> int:
    """Send the "new paid order" e-mail; returns how many recipients it went to."""
    order = (
        Order.objects.select_related("merchant", "customer")
        .prefetch_related("lines")
        .get(pk=order_id)
    )
    recipients = staff_recipients(merchant_id=order.merchant_id)
    if not recipients:
        return 0
    with translation.override(order.merchant.default_locale):
        context = {
            "order": order,
            "total": order.total.format(order.merchant.default_locale),
            "admin_url": f"{settings.PUBLIC_BASE_URL}/admin/commerce/order/{order.pk}/change/",
        }
        subject = render_to_string("commerce/email/order_paid_subject.txt", context).strip()
        body = render_to_string("commerce/email/order_paid.txt", context)
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
    return len(recipients)
