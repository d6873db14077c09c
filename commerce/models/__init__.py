from commerce.models.api_tokens import ApiToken
from commerce.models.carts import Cart, CartLine
from commerce.models.catalog import Category, Product, ProductImage, Variant
from commerce.models.customers import Address, Customer
from commerce.models.merchants import Merchant, MerchantMembership
from commerce.models.orders import (
    Order,
    OrderEvent,
    OrderLine,
    OrderStatus,
    Shipment,
    StockReservation,
)
from commerce.models.shipping import ShippingMethod, Voucher
from commerce.models.stats import DailyFunnel, DailySales, HourlySales

__all__ = [
    "Address",
    "ApiToken",
    "Cart",
    "CartLine",
    "Category",
    "Customer",
    "DailyFunnel",
    "DailySales",
    "HourlySales",
    "Merchant",
    "MerchantMembership",
    "Order",
    "OrderEvent",
    "OrderLine",
    "OrderStatus",
    "Product",
    "ProductImage",
    "Shipment",
    "ShippingMethod",
    "StockReservation",
    "Variant",
    "Voucher",
]
