"""The Messenger webhook (being built: see the messenger issue)."""

from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def webhook(request):
    return HttpResponse("Not ready yet", status=503, content_type="text/plain")
