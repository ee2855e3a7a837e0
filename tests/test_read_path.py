"""The read path's cost: how many statements a household or contact-history read runs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.bootstrap import Platform, build_platform
from api.http import create_app
from api.http.schemas import ContactHistoryPage, Household
from api.http.views import public_rows
from api.keys import create_key
from api.settings import Settings
from api.store.async_reads import AsyncReads
from api.store.database import Cursor
from projections.household_overview import TierCache
from projections.household_value import TierSettings
from tests.conftest import SECRET
from tests.factories import account_opened, contact_logged, envelope, new_id, registered

# Half private, half premier: every household is in `Tiers.top`, so counting it
# shows whether the cache ranked them again.
EVERY_HOUSEHOLD_TOP = TierSettings(private_pct=Decimal("50"), premier_pct=Decimal("50"))


@contextmanager
def counting_loop_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Statements run through `AsyncReads` alone (on the event loop)."""
    statements: list[str] = []
    real_one, real_all = AsyncReads.fetchone, AsyncReads.fetchall

    async def fetchone(self: AsyncReads, sql: str, params: Any = ()) -> Any:
        statements.append(sql)
        return await real_one(self, sql, params)

    async def fetchall(self: AsyncReads, sql: str, params: Any = ()) -> Any:
        statements.append(sql)
        return await real_all(self, sql, params)

    monkeypatch.setattr(AsyncReads, "fetchone", fetchone)
    monkeypatch.setattr(AsyncReads, "fetchall", fetchall)
    yield statements
    monkeypatch.setattr(AsyncReads, "fetchone", real_one)
    monkeypatch.setattr(AsyncReads, "fetchall", real_all)


@contextmanager
def counting_statements(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Statements run through a `Cursor` (threads) or `AsyncReads` (event loop)."""
    real = Cursor.execute
    with counting_loop_reads(monkeypatch) as statements:

        def execute(self: Cursor, sql: str, params: Any = ()) -> Cursor:
            statements.append(sql)
            return real(self, sql, params)

        monkeypatch.setattr(Cursor, "execute", execute)
        yield statements
        monkeypatch.setattr(Cursor, "execute", real)


def test_tier_cache_looks_at_the_views_at_most_once_per_max_age(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [0.0]
    cache = TierCache(max_age=5.0, clock=lambda: now[0], settings=EVERY_HOUSEHOLD_TOP)
    platform.ingestor.ingest([registered(name="钱多多")], atomic=True)
    platform.runner.catch_up()
    assert len(cache.tiers(platform.db).top) == 1
    with counting_statements(monkeypatch) as statements:
        now[0] = 4.9
        assert len(cache.tiers(platform.db).top) == 1
        assert statements == []
        now[0] = 5.0
        cache.tiers(platform.db)
        assert len(statements) == 1  # the views' positions: not moved, not ranked again
        now[0] = 9.9
        cache.tiers(platform.db)
        assert len(statements) == 1


def test_reads_take_the_last_tiers_while_another_caller_ranks_again(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [0.0]
    cache = TierCache(max_age=5.0, clock=lambda: now[0], settings=EVERY_HOUSEHOLD_TOP)
    one = registered(name="钱多多", line="深圳市南山区科技园路1号")
    platform.ingestor.ingest([one], atomic=True)
    platform.runner.catch_up()
    first = cache.tiers(platform.db)
    two = registered(name="孙少", line="深圳市南山区科技园路2号")
    platform.ingestor.ingest([two], atomic=True)
    platform.runner.catch_up()
    now[0] = 10.0
    ranking, done = threading.Event(), threading.Event()

    def another_caller_ranking() -> None:
        with cache._lock:
            ranking.set()
            done.wait(10)

    other = threading.Thread(target=another_caller_ranking)
    other.start()
    assert ranking.wait(5)
    try:
        with counting_statements(monkeypatch) as statements:
            # This caller neither waits for the other nor reads the views.
            assert cache.tiers(platform.db) is first
            assert statements == []
    finally:
        done.set()
        other.join()
    assert len(cache.tiers(platform.db).top) == 2  # and once it is done, anew


@pytest.fixture
def client(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform)) as test_client:
        key = create_key(platform.db, "read")
        test_client.headers["Authorization"] = f"Bearer {key}"
        yield test_client


@pytest.fixture
def family(platform: Platform) -> dict[str, str]:
    return _family(platform)


@pytest.fixture
def postgres_platform(postgres_url: str, tmp_path: Path) -> Iterator[Platform]:
    settings = Settings(
        database_url=postgres_url, secret_key=SECRET, secret_key_file=tmp_path / "key"
    )
    built = build_platform(settings)
    yield built
    built.close()


def _family(platform: Platform) -> dict[str, str]:
    """A couple at one address, with a joint account, a fund, a complaint and a contact."""
    husband = registered(name="王建国", line="北京市朝阳区建国路88号3号楼2单元501室")
    wife = registered(name="李秀英", line="北京市朝阳区建国路88号3号楼2单元501室")
    hid, wid = husband["data"]["customer_id"], wife["data"]["customer_id"]
    joint = account_opened(hid)
    joint["data"]["joint_holder_ids"] = [wid]
    fund = account_opened(wid, product="fund")
    balance = envelope(
        "BalanceReported",
        {
            "account_id": joint["data"]["account_id"],
            "balance": "250000.00",
            "as_of": "2025-02-28",
        },
    )
    complaint = envelope(
        "ComplaintFiled",
        {
            "complaint_id": new_id(),
            "customer_id": wid,
            "channel": "phone",
            "category": "fees",
            "description": "年费扣款有误",
        },
    )
    contact = envelope(
        "ContactLogged",
        {
            "contact_id": new_id(),
            "customer_id": hid,
            "channel": "visit",
            "direction": "outbound",
            "topic": "理财回访",
        },
    )
    events = [husband, wife, joint, fund, balance, complaint, contact]
    platform.ingestor.ingest(events, atomic=True)
    platform.runner.catch_up()
    return {"husband": hid, "wife": wid}


def test_each_read_is_one_statement_once_key_and_tiers_are_cached(
    client: TestClient, family: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    husband = family["husband"]
    paths = [
        f"/v1/customers/{husband}/household",
        f"/v1/customers/{husband}/contact-history",
        f"/v1/customers/{new_id()}/household",
        f"/v1/customers/{new_id()}/contact-history",
    ]
    assert client.get(paths[0]).status_code == 200  # fills the key and tier caches
    for path in paths:
        with counting_statements(monkeypatch) as statements:
            response = client.get(path)
        assert response.status_code in (200, 404), response.text
        assert len(statements) == 1, (path, statements)


def test_the_household_reads_the_same_by_member_and_by_id(
    client: TestClient, family: dict[str, str]
) -> None:
    by_member = client.get(f"/v1/customers/{family['wife']}/household").json()
    by_id = client.get(f"/v1/households/{by_member['household_id']}").json()
    assert by_member == by_id
    assert [m["name"] for m in by_id["members"]] == ["王建国", "李秀英"]
    assert by_id["accounts"] == {
        "count": 2,
        "total_balance": "250000.00",
        "products": ["deposit", "fund"],
    }
    assert by_id["open_complaints"] == 1
    assert by_id["last_contact"]["type"] == "ContactLogged"
    assert by_id["last_contact"]["customer_id"] == family["husband"]


def test_unknown_customers_and_households_are_404s_naming_what_is_missing(
    client: TestClient,
) -> None:
    nobody, nowhere = new_id(), new_id()
    answers = {
        f"/v1/customers/{nobody}/household": f"no household for customer {nobody}",
        f"/v1/customers/{nobody}/contact-history": f"no customer {nobody}",
        f"/v1/households/{nowhere}": f"no household {nowhere}",
    }
    for path, message in answers.items():
        response = client.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["message"] == message


def test_last_contact_is_the_newest_while_a_member_tiebroken_by_customer(
    platform: Platform, client: TestClient, family: dict[str, str]
) -> None:
    husband, wife = family["husband"], family["wife"]
    household = client.get(f"/v1/customers/{husband}/household").json()
    statement = envelope(
        "StatementIssued",
        {
            "account_id": _joint_account(platform, husband),
            "period": "2025-03",
            "closing_balance": "250000.00",
        },
    )
    platform.ingestor.ingest([statement], atomic=True)
    platform.runner.catch_up()
    last = client.get(f"/v1/households/{household['household_id']}").json()
    assert (
        last["last_contact"]["type"] == "StatementIssued"
    )  # one position, both holders
    assert last["last_contact"]["customer_id"] == min(husband, wife)

    moved = envelope(
        "CustomerMoved",
        {"customer_id": wife, "address": {"line": "上海市浦东新区世纪大道100号"}},
    )
    platform.ingestor.ingest([moved, contact_logged(wife, "新地址确认")], atomic=True)
    platform.runner.catch_up()
    after = client.get(f"/v1/households/{household['household_id']}").json()
    assert [m["customer_id"] for m in after["members"]] == [husband]
    # Her move and what followed it are hers alone: not the household's any more.
    assert after["last_contact"] == last["last_contact"]


def _joint_account(platform: Platform, holder: str) -> str:
    with platform.db.transaction() as cur:
        row = cur.execute(
            "SELECT account_id FROM service_account_holders WHERE customer_id = %s "
            "AND account_id IN (SELECT account_id FROM service_account_holders "
            "GROUP BY account_id HAVING COUNT(*) = 2)",
            (holder,),
        ).fetchone()
    assert row is not None
    return str(row["account_id"])


def _live_paths(client: TestClient, family: dict[str, str]) -> list[str]:
    household = client.get(f"/v1/customers/{family['wife']}/household").json()
    return [
        f"/v1/customers/{family['husband']}/household",
        f"/v1/households/{household['household_id']}",
        f"/v1/customers/{family['husband']}/contact-history",
        f"/v1/customers/{family['wife']}/contact-history?limit=1",
    ]


@pytest.mark.postgres
def test_live_reads_run_on_the_event_loop_and_answer_as_a_thread_does(
    postgres_platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform = postgres_platform
    with TestClient(create_app(platform)) as client:
        client.headers["Authorization"] = f"Bearer {create_key(platform.db, 'read')}"
        paths = _live_paths(client, _family(platform))
        with counting_loop_reads(monkeypatch) as statements:
            on_the_loop = [client.get(path) for path in paths]
        assert len(statements) == len(paths)
        client.app.state.async_reads = None  # type: ignore[attr-defined]
        with counting_loop_reads(monkeypatch) as statements:
            in_threads = [client.get(path) for path in paths]
        assert statements == []
    for path, loop, thread in zip(paths, on_the_loop, in_threads, strict=True):
        assert loop.status_code == thread.status_code == 200, (path, loop.text)
        assert loop.json() == thread.json(), path


def test_reads_that_wait_for_a_position_take_a_thread(
    client: TestClient, family: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _live_paths(client, family)
    with counting_loop_reads(monkeypatch) as statements:
        for path in paths:
            separator = "&" if "?" in path else "?"
            response = client.get(f"{path}{separator}min_position=1")
            assert response.status_code == 200, response.text
    assert statements == []


def test_published_reads_are_what_their_models_would_publish(
    client: TestClient, family: dict[str, str]
) -> None:
    """The reads skip FastAPI's response validation (`responses.published`): their
    bodies must be exactly what the route's response model makes of them."""
    for path in _live_paths(client, family):
        body = client.get(path).json()
        model = (
            ContactHistoryPage if path.split("?")[0].endswith("history") else Household
        )
        assert model.model_validate(body).model_dump(mode="json") == body, path


@pytest.mark.postgres
def test_a_database_the_event_loop_cannot_reach_is_a_503(
    postgres_platform: Platform,
) -> None:
    platform = postgres_platform
    with TestClient(create_app(platform)) as client:
        client.headers["Authorization"] = f"Bearer {create_key(platform.db, 'read')}"
        customer = _family(platform)["husband"]
        unreachable = AsyncReads(
            "host=127.0.0.1 port=1 connect_timeout=1", max_size=1, timeout=0.5
        )
        assert client.portal is not None
        client.portal.call(unreachable.open)
        client.app.state.async_reads = unreachable  # type: ignore[attr-defined]
        try:
            response = client.get(f"/v1/customers/{customer}/household")
        finally:
            client.portal.call(unreachable.close)
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "unavailable"
    assert response.headers["Retry-After"]


def test_rows_with_a_private_column_lose_it_and_others_pass_as_they_are() -> None:
    plain = [{"type": "ContactLogged", "position": 1}, {"type": "x", "position": 2}]
    assert public_rows(plain) is plain
    private = [
        {"customer_id": "a", "national_id_hash": "h", "national_id": "110105"},
        {"customer_id": "b", "national_id_hash": "g", "national_id": "110106"},
    ]
    assert public_rows(private) == [{"customer_id": "a"}, {"customer_id": "b"}]
    assert public_rows([]) == []


@pytest.mark.postgres
def test_live_reads_share_the_web_processes_small_read_pool(
    postgres_url: str, tmp_path: Path
) -> None:
    """`read_pool_size` bounds the connections a web process reads through on its
    event loop: concurrent reads queue for them rather than open more."""
    settings = Settings(
        database_url=postgres_url,
        secret_key=SECRET,
        secret_key_file=tmp_path / "key",
        read_pool_size=1,
    )
    platform = build_platform(settings)
    try:
        with TestClient(create_app(platform)) as client:
            client.headers["Authorization"] = (
                f"Bearer {create_key(platform.db, 'read')}"
            )
            paths = _live_paths(client, _family(platform)) * 8
            pool = client.app.state.async_reads.pool  # type: ignore[attr-defined]
            with ThreadPoolExecutor(max_workers=16) as executor:
                answers = list(executor.map(client.get, paths))
            stats = pool.get_stats()
    finally:
        platform.close()
    assert [a.status_code for a in answers] == [200] * len(paths)
    assert pool.max_size == 1
    assert stats["pool_size"] == 1
    assert stats["requests_num"] >= len(paths)
