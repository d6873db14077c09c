"""The REST API under ``/api/``: a router of ViewSets plus the token endpoint."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from commerce.api import views

router = DefaultRouter()
router.include_format_suffixes = False
router.register("categories", views.CategoryViewSet, basename="category")
router.register("products", views.ProductViewSet, basename="product")
router.register("variants", views.VariantViewSet, basename="variant")
router.register("customers", views.CustomerViewSet, basename="customer")
router.register("carts", views.CartViewSet, basename="cart")
router.register("orders", views.OrderViewSet, basename="order")

urlpatterns = [
    path("auth/token/", views.TokenObtainView.as_view(), name="api-token"),
    path("", include(router.urls)),
]
