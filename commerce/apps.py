from django.apps import AppConfig


class CommerceConfig(AppConfig):
    name = "commerce"
    verbose_name = "Shop"

    def ready(self) -> None:
        from commerce.notifications import OrderNotice, order_subscribe
        from commerce.services.staff_alerts import order_paid_schedule_staff_alert

        order_subscribe(OrderNotice.PAID, order_paid_schedule_staff_alert)
