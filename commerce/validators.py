"""Validators for uploaded product images: real images only, bounded in bytes and pixels."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _
from PIL import Image, UnidentifiedImageError

ALLOWED_IMAGE_FORMATS = {"JPEG", "PNG", "WEBP", "GIF"}


def validate_product_image(upload) -> None:
    """Refuse files too large, not images, of an unsupported format, or too big in pixels."""
    limit = settings.PRODUCT_IMAGE_MAX_BYTES
    if upload.size > limit:
        raise ValidationError(
            _("The image is %(size)s; the limit is %(limit)s.")
            % {"size": filesizeformat(upload.size), "limit": filesizeformat(limit)},
            code="image_too_large",
        )
    position = upload.tell() if hasattr(upload, "tell") else 0
    try:
        upload.seek(0)
        with Image.open(upload) as image:
            image_format = image.format
            width, height = image.size
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise ValidationError(
            _("The file is not a valid image (use JPEG, PNG, WebP or GIF)."), code="invalid_image"
        ) from None
    finally:
        upload.seek(position)
    if image_format not in ALLOWED_IMAGE_FORMATS:
        raise ValidationError(
            _("%(format)s images are not supported; use JPEG, PNG, WebP or GIF.")
            % {"format": image_format},
            code="image_format",
        )
    max_pixels = settings.PRODUCT_IMAGE_MAX_PIXELS
    if width > max_pixels or height > max_pixels:
        raise ValidationError(
            _("The image is %(w)s×%(h)s pixels; the limit is %(max)s on each side.")
            % {"w": width, "h": height, "max": max_pixels},
            code="image_dimensions",
        )
