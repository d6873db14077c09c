"""Periodic commerce work, run by Celery beat. Thin: each task calls one service."""

from celery import shared_task

from commerce.services.orders import order_expire_due


@shared_task(ignore_result=True)
def expire_unpaid_orders() -> int:
    """Expire unpaid orders whose stock reservation ran out and release their stock.

    Every minute from beat. Safe to overlap with itself and with payments (see
    ``order_expire_due``); returns how many orders this run expired.
    """
    return order_expire_due()


@shared_task(ignore_result=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def order_paid_alert_staff(order_id: int) -> int:
    """E-mail the merchant's staff about a newly paid order (retried when the mail server fails)."""
    from commerce.services.staff_alerts import order_paid_alert_staff_send

    return order_paid_alert_staff_send(order_id=order_id)
