"""API keys are looked up once per few seconds, not once per request, and a
revocation still takes effect within `KEY_CACHE_SECONDS`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.bootstrap import Platform
from api.http import create_app
from api.keys import (
    KEY_CACHE_SECONDS,
    KeyCache,
    authenticate_cached,
    create_key,
    key_cache,
    revoke_key,
)
from api.store.database import Database


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(platform: Platform) -> Clock:
    clock = Clock()
    key_cache(platform.db).clock = clock
    return clock


@pytest.fixture
def client(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform)) as test_client:
        yield test_client


def revoke_elsewhere(db: Database, key_prefix: str) -> None:
    """What `crm keys revoke` does from another process: this process's cache is not told."""
    with db.transaction() as cur:
        cur.execute(
            "UPDATE api_keys SET revoked_at = CURRENT_TIMESTAMP WHERE key_prefix = %s",
            (key_prefix,),
        )


def count_key_lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    import api.keys

    looked_up: list[str] = []
    real = api.keys._lookup

    def spy(db: Database, key_hash: str) -> object:
        looked_up.append(key_hash)
        return real(db, key_hash)

    monkeypatch.setattr(api.keys, "_lookup", spy)
    return looked_up


def test_a_valid_key_is_looked_up_once_within_the_cache_time(
    platform: Platform, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = create_key(platform.db, "read")
    looked_up = count_key_lookups(monkeypatch)
    first = authenticate_cached(platform.db, key)
    clock.now += KEY_CACHE_SECONDS - 0.1
    assert authenticate_cached(platform.db, key) == first
    assert first is not None and first.role == "read"
    assert len(looked_up) == 1
    clock.now += 0.2
    assert authenticate_cached(platform.db, key) == first
    assert len(looked_up) == 2


def test_a_key_revoked_by_another_process_stops_working_within_the_cache_time(
    platform: Platform, client: TestClient, clock: Clock
) -> None:
    key = create_key(platform.db, "read")
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get("/readyz", headers=headers).status_code == 200
    revoke_elsewhere(platform.db, key[:10])
    clock.now += KEY_CACHE_SECONDS / 2
    assert client.get("/readyz", headers=headers).status_code == 200
    clock.now += KEY_CACHE_SECONDS / 2
    assert client.get("/readyz", headers=headers).status_code == 401


def test_a_key_revoked_in_this_process_stops_working_at_once(
    platform: Platform, client: TestClient, clock: Clock
) -> None:
    key = create_key(platform.db, "read")
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get("/readyz", headers=headers).status_code == 200
    assert revoke_key(platform.db, key[:10]) == 1
    assert client.get("/readyz", headers=headers).status_code == 401


def test_unknown_keys_are_not_cached_so_a_new_key_works_at_once(
    platform: Platform, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    looked_up = count_key_lookups(monkeypatch)
    for _ in range(3):
        assert authenticate_cached(platform.db, "crm_not-a-real-key") is None
    assert len(looked_up) == 3
    key = create_key(platform.db, "read")
    assert (
        client.get("/readyz", headers={"Authorization": f"Bearer {key}"}).status_code
        == 200
    )


def test_the_cache_keeps_hashes_not_keys_and_is_bounded(platform: Platform) -> None:
    cache = KeyCache(max_size=2)
    keys = [create_key(platform.db, "read") for _ in range(3)]
    for key in keys:
        assert cache.authenticate(platform.db, key) is not None
    held = repr(vars(cache))
    assert not any(key in held or key[4:] in held for key in keys)
    assert len(cache._entries) == 2
    assert all(len(digest) == 64 for digest in cache._entries)
