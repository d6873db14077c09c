from django.apps import AppConfig


class MessengerConfig(AppConfig):
    name = "messenger"
    verbose_name = "Messenger"

    def ready(self) -> None:
        from commerce.admin_tenancy import register_scoped_choices
        from messenger.models import MessengerPage

        register_scoped_choices(MessengerPage, "merchant")

        from messenger.services.order_messages import order_messages_subscribe

        order_messages_subscribe()
