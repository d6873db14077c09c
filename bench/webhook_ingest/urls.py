"""The project's URLs plus ``/bench/noop/``: the cheapest Django view, the yardstick.

The no-op pattern comes last, after the project's, so resolving it walks the same list as
resolving the webhook does (the webhook is the project's last pattern too).
"""

from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from config.urls import urlpatterns as project_urlpatterns


@csrf_exempt
def noop(request):
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [*project_urlpatterns, path("bench/noop/", noop)]
