"""The end-to-end harness: the whole service with the sandbox, driven by a real browser.

What runs, for real:

- the web process: pytest-django's ``live_server`` (a threaded WSGI server in this process) on
  the test database, with the sandbox mounted (``SANDBOX_ENABLED``): the Messenger emulator's
  chat page and Graph API stand-in, the Stripe stand-in's API and hosted page;
- a Celery worker (``config.celery.app``) in a thread of this process, on the Redis of
  ``make test``: it drains the Messenger inbox, sends the outbox to the Graph stand-in, delivers
  the Stripe stand-in's signed events and processes them;
- Debian's ``/usr/bin/chromium`` through Playwright's sync API, at a phone's size.

Every setting that names an address points at the live server for the test (``PUBLIC_BASE_URL``,
``GRAPH_API_BASE``, ``STRIPE_API_BASE``), and each test starts from a seeded shop:
``seed_demo`` (service), ``sandbox_seed`` (the emulator's page and shoppers) and
``messenger_profile sync`` (greeting and Get Started pushed to the Graph stand-in).

Isolation between xdist workers (``make test`` runs ``pytest -n 2``): the two workers share one
Redis. Each gets its own Celery queue (``e2e-gw0``...: its worker consumes only that queue and
the tests publish only there) and its own Redis database for everything else (cache, the
inbox's nudge key, rate limits), emptied before each test. So one worker never runs the other's
tasks against the wrong test database, and a nudge set by one never silences the other.

Playwright's sync API runs an event loop in the main thread, which makes Django refuse database
calls there ("async context"); the tests read the database between browser steps, so
``DJANGO_ALLOW_ASYNC_UNSAFE`` is set while the browser runs (this module's tests only).

Screenshots of the key steps go to ``test-artifacts/e2e/<journey>/NN-step.png`` (and
``failed.png`` when a journey fails).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.core.management import call_command

from tests.e2e.harness import ARTIFACTS, CHROMIUM, PHONE, TIMEOUT_MS, Journey, Shop


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here is an e2e test on PostgreSQL and Redis, in committed transactions."""
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.postgres)
            item.add_marker(pytest.mark.redis)
            item.add_marker(pytest.mark.django_db(transaction=True))


# -- isolation per xdist worker ------------------------------------------------------------------


def _xdist_worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "") or "gw"


def _worker_index() -> int:
    digits = re.sub(r"\D", "", _xdist_worker())
    return int(digits) if digits else 0


@pytest.fixture(scope="session")
def e2e_queue() -> str:
    """The Celery queue of this xdist worker's e2e tests."""
    return f"e2e-{_xdist_worker()}"


@pytest.fixture(scope="session")
def e2e_redis_url() -> str:
    """This xdist worker's own Redis database (1, 2...; database 0 is the rest of the suite's)."""
    from django.conf import settings

    parts = urlsplit(settings.REDIS_URL)
    index = 1 + _worker_index() % 15
    return urlunsplit((parts.scheme, parts.netloc, f"/{index}", parts.query, ""))


# -- the Celery worker -----------------------------------------------------------------------------


@pytest.fixture
def celery_worker(e2e_queue: str) -> Iterator[object]:
    """A worker thread of the project's Celery app consuming only this xdist worker's queue.

    One per test, started after the test database is set up and stopped before it is flushed:
    a worker kept across tests ran the previous journey's late tasks (delivery receipts, Stripe
    retries) while the flush truncated the tables, and PostgreSQL saw a deadlock. What such
    tasks left in the queue is purged before the next worker starts. Database connections the
    worker thread opens are closed after each task and when it starts and stops, so that the
    test database can be flushed and dropped without waiting for it.
    """
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_postrun, task_prerun, worker_ready, worker_shutdown
    from django.db import close_old_connections, connections

    from config.celery import app

    def before(**_kwargs) -> None:
        close_old_connections()

    def after(**_kwargs) -> None:
        connections.close_all()

    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge(e2e_queue)
    closing = (task_postrun, worker_ready, worker_shutdown)
    app.conf.worker_hijack_root_logger = False  # pytest keeps its log capture
    task_prerun.connect(before, weak=False)
    for signal in closing:
        signal.connect(after, weak=False)
    try:
        with start_worker(
            app,
            pool="solo",
            concurrency=1,
            perform_ping_check=False,
            queues=[e2e_queue],
            loglevel="WARNING",
            shutdown_timeout=30,
        ) as worker:
            yield worker
    finally:
        task_prerun.disconnect(before)
        for signal in closing:
            signal.disconnect(after)


@pytest.fixture
def celery_queue(celery_worker, e2e_queue: str) -> Iterator[str]:
    """Tasks published during the test go to this worker's queue (and nowhere else after)."""
    from config.celery import app

    before = app.conf.task_default_queue
    app.conf.task_default_queue = e2e_queue
    try:
        yield e2e_queue
    finally:
        app.conf.task_default_queue = before


# -- the service, its settings and the seeded shop -----------------------------------------------


def _redis_flush(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


def _inbox_nudge_forget() -> None:
    """The inbox remembers in this process that a drain was recently requested; a request made
    by an earlier test (to another queue) must not hold back this test's first drain."""
    from messenger.services import inbox

    state = getattr(inbox, "_nudge_state", None)
    if isinstance(state, dict):
        state.update(covered_until=0.0, redis_down_until=0.0)


@pytest.fixture(scope="session")
def e2e_server(django_db_setup, live_server):
    """The live server, started after the test database exists so that it is stopped (and its
    thread's connection closed) before the database is dropped."""
    return live_server


@pytest.fixture
def short_db_connections(transactional_db) -> Iterator[None]:
    """Requests served during the test close their database connection when they end.

    The project keeps connections for 60 s (``CONN_MAX_AGE``), and the clients of the live
    server (the service's Graph and Stripe clients, the emulator's webhook posts) keep their
    HTTP connections alive, so a server thread would otherwise hold a database session after
    the test, and the test database could not be dropped at the end of the run.
    """
    from django.db import connections

    settings_dict = connections["default"].settings_dict
    saved = settings_dict.get("CONN_MAX_AGE", 0)
    settings_dict["CONN_MAX_AGE"] = 0
    try:
        yield
    finally:
        settings_dict["CONN_MAX_AGE"] = saved


@pytest.fixture
def shop(
    transactional_db,
    short_db_connections,
    e2e_server,
    settings,
    celery_queue,
    e2e_redis_url,
    tmp_path_factory,
) -> Shop:
    """The service at ``live_server`` with the sandbox standing in for Meta and Stripe, a seeded
    demo shop, the emulator's page, and the Messenger Profile pushed to it."""
    url = e2e_server.url
    host = urlsplit(url).hostname
    settings.PUBLIC_BASE_URL = url
    settings.GRAPH_API_BASE = f"{url}/sandbox/graph"
    settings.STRIPE_API_BASE = f"{url}/sandbox/stripe"
    settings.CSRF_TRUSTED_ORIGINS = [url]
    settings.ALLOWED_HOSTS = [host, "127.0.0.1", "localhost", "testserver"]
    settings.REDIS_URL = e2e_redis_url
    settings.CACHES = {
        **settings.CACHES,
        "default": {**settings.CACHES["default"], "LOCATION": e2e_redis_url},
    }
    settings.MEDIA_ROOT = str(tmp_path_factory.mktemp("e2e-media"))
    _redis_flush(e2e_redis_url)
    _inbox_nudge_forget()

    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    call_command("sandbox_seed", stdout=out)
    call_command("messenger_profile", "sync", stdout=out)
    return Shop(url=url, seed_output=out.getvalue())


# -- the browser -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's chromium, started once per module (never a downloaded browser)."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (make test installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    sync_api.expect.set_options(timeout=TIMEOUT_MS)
    saved = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_api.sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
            )
            try:
                yield chromium
            finally:
                chromium.close()
    finally:
        if saved is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = saved


@pytest.fixture
def journey(browser, shop, request) -> Iterator[Journey]:
    """A fresh phone-sized tab for one journey, its screenshot folder and its tap counter."""
    name = re.sub(r"[^a-z0-9-]+", "-", request.node.name.removeprefix("test_").lower()).strip("-")
    folder = ARTIFACTS / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    journey = Journey(page=page, name=name, folder=folder)
    try:
        yield journey
    finally:
        taps = "\n".join(f"{n:2d}. {label}" for n, label in enumerate(journey.tapped, 1))
        (folder / "taps.txt").write_text(f"{journey.taps} taps\n{taps}\n", encoding="utf-8")
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            with contextlib.suppress(Exception):
                page.screenshot(path=str(folder / "failed.png"))
        context.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep the call's report on the item, so a failed journey leaves a screenshot."""
    report = yield
    if report.when == "call":
        item.rep_call = report
    return report
