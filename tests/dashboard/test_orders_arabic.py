"""The dashboard in Arabic: right to left, Arabic words, prices in the Arabic locale, and the
language switch in the layout."""

from __future__ import annotations

import pytest
from django.urls import reverse

from core.money import Money

pytestmark = pytest.mark.django_db


def _switch_to_arabic(client) -> None:
    response = client.post(
        reverse("set_language"), {"language": "ar", "next": reverse("dashboard:orders")}
    )
    assert response.status_code == 302


def test_language_switch_turns_the_orders_page_right_to_left(operator_client, orders):
    english = operator_client.get(reverse("dashboard:orders")).content.decode()
    assert '<html lang="en" dir="ltr">' in english
    assert 'name="language" value="ar"' in english  # the switch offered in the layout

    _switch_to_arabic(operator_client)
    html = operator_client.get(reverse("dashboard:orders")).content.decode()

    assert '<html lang="ar" dir="rtl">' in html
    assert "الطلبات" in html and "تصدير CSV" in html and "مدفوع" in html
    order = orders["b"][0]  # KWD, three decimals
    assert Money(order.total_minor, order.currency).format("ar") in html
    assert 'name="language" value="en"' in html


def test_order_page_and_conversations_in_arabic(staff_a_client, orders):
    _switch_to_arabic(staff_a_client)
    order = orders["a"][0]

    detail = staff_a_client.get(reverse("dashboard:order_detail", args=[order.pk]))
    waiting = staff_a_client.get(reverse("dashboard:conversations"))

    assert 'dir="rtl"' in detail.content.decode()
    assert f"الطلب {order.number}" in detail.content.decode()
    assert "عملاء بانتظار موظف" in waiting.content.decode()


def test_login_page_in_arabic_from_the_browser_language(anonymous_client):
    response = anonymous_client.get(reverse("dashboard:login"), HTTP_ACCEPT_LANGUAGE="ar")

    html = response.content.decode()
    assert '<html lang="ar" dir="rtl">' in html
    assert "تسجيل الدخول إلى لوحة التحكم" in html
