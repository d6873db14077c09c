"""Liveness and readiness endpoints, against real servers (no mocks)."""

import pytest


def test_healthz_answers_without_touching_anything(client):
    response = client.get("/healthz/")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
@pytest.mark.redis
def test_readyz_is_ok_when_database_and_redis_answer(client):
    response = client.get("/readyz/")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"] == {"database": "ok", "redis": "ok"}
    assert body["failed"] == []


@pytest.mark.django_db
@pytest.mark.redis
def test_readyz_names_redis_when_it_goes_down(client, settings, redis_server):
    settings.REDIS_URL = redis_server.url

    assert client.get("/readyz/").status_code == 200

    redis_server.stop()
    response = client.get("/readyz/")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["failed"] == ["redis"]
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"] != "ok"


def test_readyz_refuses_writes(client):
    assert client.post("/readyz/").status_code == 405
