from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.static import serve as serve_static_file
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core import views as core_views

admin.site.site_header = "Chat commerce admin"
admin.site.site_title = "Chat commerce"
admin.site.index_title = "Shop management"

urlpatterns = [
    path("healthz/", core_views.healthz, name="healthz"),
    path("readyz/", core_views.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("dashboard/", include("dashboard.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include("commerce.api.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("payments.urls")),
    path("", include("messenger.urls")),
]

if settings.SERVE_MEDIA:
    media_prefix = settings.MEDIA_URL.lstrip("/")
    urlpatterns.append(
        re_path(
            rf"^{media_prefix}(?P<path>.*)$",
            serve_static_file,
            {"document_root": settings.MEDIA_ROOT},
        )
    )

if settings.SANDBOX_ENABLED:
    urlpatterns.append(path("sandbox/", include("sandbox.urls")))
