"""``make run`` rides out a Redis restart (issue 12, item 17).

The demo runs exactly as a developer starts it: ``scripts/run.sh`` (migrate, the demo shop, the
emulator's page and shoppers, then web, worker and beat from ``Procfile.dev`` under honcho) on a
SQLite file of this test's own, with ``REDIS_URL`` pointing at a private Redis and, like a fresh
shell, no ``DJANGO_SETTINGS_MODULE`` (run.sh supplies the development settings; item 16).

A shopper chats in the emulator. The worker then holds an unacknowledged scheduled task (as it
does whenever an outbox retry or the emulator's delivery receipts are pending) and Redis dies;
once the worker has noticed, Redis starts again, empty. kombu 5.7's Redis transport fails to
hand that task back on the dead connection and ends the worker with "Unrecoverable error"
(docs/adr/0009); honcho used to stop web, worker and beat as soon as the worker exited, and the
demo was gone. Now the shopper's next message must be answered through the sandbox's Graph
stand-in, and honcho must still be running every process.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from contextlib import suppress
from pathlib import Path

import pytest
import requests
from celery import Celery

from tests.conftest import free_port
from tests.core.test_settings import SETTINGS_VARS
from tests.faults.stack import REPO_DIR, Redis, wait_until

pytestmark = [pytest.mark.faults]

PAGE_ID = "104412345678901"  # seed_demo's and sandbox_seed's demo page
PSID = "2401234567890123"  # sandbox_seed's English shopper
# Generous: migrations, seeding and collectstatic on two cores shared with a parallel run.
START_TIMEOUT = 300.0


class Demo:
    """``scripts/run.sh`` in its own process group, its output (honcho's) in a log file."""

    def __init__(self, env: dict[str, str], log_path: Path, port: int) -> None:
        self.log_path = log_path
        self.url = f"http://127.0.0.1:{port}"
        with log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                [str(REPO_DIR / "scripts" / "run.sh")],
                cwd=REPO_DIR,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def up(self) -> bool:
        """The web process answers and the worker said it is ready."""
        if " ready." not in self.log():
            return False
        try:
            return requests.get(f"{self.url}/healthz/", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def worker_idle_holding(self, task_id: str) -> bool:
        """The worker received ``task_id`` (not due yet) and finished every other task it got."""
        received = set(TASK_RECEIVED.findall(self.log()))
        finished = set(TASK_FINISHED.findall(self.log()))
        return task_id in received and received - finished == {task_id}

    def stopped_processes(self) -> list[str]:
        """honcho's "<name> stopped (rc=...)" lines: a process of the Procfile that exited."""
        return [line for line in self.log().splitlines() if " stopped (rc=" in line]

    def stop(self) -> None:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)  # run.sh stops honcho, which stops the rest
            with suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=60)
        with suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)  # whatever is left of the group
        with suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=10)


class Shopper:
    """The emulator's English shopper, tapping as its chat page does (CSRF cookie and header)."""

    def __init__(self, demo: Demo) -> None:
        self.chat_url = f"{demo.url}/sandbox/chat/{PAGE_ID}/{PSID}/"
        self.session = requests.Session()
        self.page_after = 0

    def says(self, text: str) -> None:
        if "csrftoken" not in self.session.cookies:
            self.session.get(self.chat_url, timeout=30).raise_for_status()
        response = self.session.post(
            self.chat_url + "act",
            json={"action": "text", "text": text},
            headers={"X-CSRFToken": self.session.cookies["csrftoken"], "Referer": self.chat_url},
            timeout=30,
        )
        response.raise_for_status()
        assert response.json()["ok"], response.text  # the signed webhook was answered 200

    def replies(self) -> list[str]:
        """Texts the page sent since the last call (Graph messages the stand-in accepted)."""
        feed = self.session.get(
            self.chat_url + "feed.json", params={"page_after": self.page_after}, timeout=30
        ).json()
        self.page_after = feed["cursor"]["page_after"]
        return [
            item["message"].get("text", "") or "(template)"
            for item in feed["items"]
            if item["from"] == "page"
        ]


def _schedule_heartbeat(broker_url: str, *, countdown: int) -> str:
    """Publish the harmless ``core.tasks.heartbeat`` due in ``countdown`` seconds; its id."""
    client = Celery("fault-tests-client", broker=broker_url, set_as_current=False)
    try:
        return client.send_task("core.tasks.heartbeat", countdown=countdown).id
    finally:
        client.close()


def _demo_env(tmp_path: Path, *, redis_url: str, port: int) -> dict[str, str]:
    """A developer's shell: none of the settings the test runner exported, no
    DJANGO_SETTINGS_MODULE; the demo's files in ``tmp_path``, its broker the private Redis."""
    env = {name: value for name, value in os.environ.items() if name not in SETTINGS_VARS}
    env.update(
        {
            "PORT": str(port),
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "REDIS_URL": redis_url,
            "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
            "MEDIA_ROOT": str(tmp_path / "media"),
            "CELERY_BEAT_SCHEDULE_FILE": str(tmp_path / "celerybeat-schedule"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


class Conversation:
    """What the page has answered so far, read from the emulator's feed."""

    def __init__(self, shopper: Shopper, demo: Demo) -> None:
        self.shopper, self.demo = shopper, demo
        self.texts: list[str] = []

    def forget(self) -> None:
        self.texts = []

    def answered_or_gone(self, needle: str) -> bool:
        """Poll the feed; true once a reply contains ``needle`` or make run has stopped."""
        if not self.demo.alive():
            return True
        with suppress(requests.RequestException, ValueError):
            self.texts += self.shopper.replies()
        return any(needle in text for text in self.texts)


CONNECTION_LOST = "Connection to broker lost"
TASK_RECEIVED = re.compile(r"Task [\w.]+\[([0-9a-f-]+)\] received")
TASK_FINISHED = re.compile(r"Task [\w.]+\[([0-9a-f-]+)\] (?:succeeded|raised|retry)")
# The help flow's answer names the demo shop's support contact (seed_demo).
HELP_ANSWER = "support@demo-shop.example"


def test_the_demo_keeps_answering_after_redis_restarts(tmp_path):
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    redis_server = Redis(directory=redis_dir)
    redis_server.start()
    port = free_port()
    demo = Demo(
        _demo_env(tmp_path, redis_url=redis_server.url, port=port), tmp_path / "run.log", port
    )
    try:
        wait_until(
            lambda: not demo.alive() or demo.up(),
            timeout=START_TIMEOUT,
            interval=0.5,
            what="make run's web answering and its worker ready",
        )
        assert demo.alive(), f"make run did not start:\n{demo.log()[-6000:]}"
        shopper = Shopper(demo)
        conversation = Conversation(shopper, demo)

        shopper.says("help")
        wait_until(
            lambda: conversation.answered_or_gone(HELP_ANSWER),
            timeout=60,
            interval=0.5,
            what="the answer to 'help'",
        )
        assert demo.alive(), f"make run stopped:\n{demo.log()[-6000:]}"

        # The worker holds a scheduled task, as it does whenever an outbox retry or the
        # emulator's delivery receipts are pending, and is otherwise idle when Redis dies.
        scheduled = _schedule_heartbeat(redis_server.url, countdown=600)
        wait_until(
            lambda: demo.worker_idle_holding(scheduled) or not demo.alive(),
            timeout=60,
            what="the worker idle, holding the scheduled task",
        )
        lost_before = demo.log().count(CONNECTION_LOST)
        redis_server.stop()
        # Down until the worker has noticed (a restart takes a moment; an instant one would let
        # kombu restore its unacknowledged tasks to the new Redis and hide the failure).
        wait_until(
            lambda: demo.log().count(CONNECTION_LOST) > lost_before or not demo.alive(),
            timeout=60,
            what="the worker noticing that Redis is gone",
        )
        redis_server.start()  # empty: what it held is gone, as after a crash
        conversation.answered_or_gone(HELP_ANSWER)
        conversation.forget()  # what the lost tasks still managed to send is not the point

        shopper.says("help")
        wait_until(
            lambda: conversation.answered_or_gone(HELP_ANSWER),
            timeout=120,
            interval=0.5,
            what="the answer to the first message after Redis restarted",
        )

        assert demo.alive(), f"make run stopped:\n{demo.log()[-6000:]}"
        assert any(HELP_ANSWER in text for text in conversation.texts), conversation.texts
        assert demo.stopped_processes() == [], (
            f"honcho stopped a process: {demo.stopped_processes()}\n{demo.log()[-6000:]}"
        )
    finally:
        demo.stop()
        redis_server.stop()
