from commerce.models.catalog import Category, Product, ProductImage, Variant
from commerce.models.merchants import Merchant, MerchantMembership

__all__ = [
    "Category",
    "Merchant",
    "MerchantMembership",
    "Product",
    "ProductImage",
    "Variant",
]
