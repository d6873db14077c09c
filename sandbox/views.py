from django.http import HttpResponse


def index(request):
    """Placeholder until the emulator lands: say so plainly instead of a 404."""
    return HttpResponse(
        "The Messenger emulator is not built yet. Use /admin/ to manage the demo catalog.",
        content_type="text/plain; charset=utf-8",
    )
