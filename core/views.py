from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from core.health import database_is_reachable, redis_is_reachable


@never_cache
@require_safe
def healthz(request):
    """Liveness: the process is up and serving requests. Touches nothing else."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def readyz(request):
    """Readiness: the database and Redis answer. 503 names the ones that did not."""
    checks = {"database": database_is_reachable(), "redis": redis_is_reachable()}
    failed = [name for name, (ok, _) in checks.items() if not ok]
    body = {
        "status": "ok" if not failed else "unavailable",
        "checks": {name: detail for name, (_, detail) in checks.items()},
        "failed": failed,
    }
    return JsonResponse(body, status=503 if failed else 200)
