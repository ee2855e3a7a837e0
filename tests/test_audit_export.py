"""The log as auditors read it: filters, streamed exports, and re-ingesting an export."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.audit.cli import audit_cli
from api.audit.export import LogFilter, csv_lines, jsonl_lines, scan_log
from api.bootstrap import Platform, build_platform
from api.http import create_app
from api.http.routes import audit as audit_routes
from api.keys import create_key
from api.settings import Settings
from projections.contact_history import ContactHistoryProjection, customer_history
from projections.customers import CustomersProjection, get_customer
from projections.households import HouseholdsProjection, household_of, members
from projections.runner import ProjectionRunner
from tests.conftest import SECRET
from tests.factories import account_opened, envelope, new_id, registered


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """The commands bind structlog to the runner's captured stderr, which closes after each run."""
    import structlog

    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


BEIJING = "北京市朝阳区建国路88号3号楼2单元501室"
SHANGHAI = "上海市浦东新区世纪大道100号15楼1502室"
GUANGZHOU = "广州市天河区天河路385号太古汇2座1203室"


def views(platform: Platform) -> ProjectionRunner:
    projections: list[Any] = [
        CustomersProjection(),
        HouseholdsProjection(),
        ContactHistoryProjection(),
    ]
    return ProjectionRunner(platform.app, platform.db, projections)


@dataclass
class Scenario:
    wang: str
    li: str
    zhang: str
    account: str
    order: str
    events: list[dict[str, Any]]

    def ids_of(self, *kinds: str) -> set[str]:
        return {e["event_id"] for e in self.events if e["type"] in kinds}


def build_scenario(platform: Platform, extra: dict[str, Any] | None = None) -> Scenario:
    """王芳 and her husband 李强 share a flat in Beijing and a joint deposit; 张伟 in Shanghai orders and moves."""
    wang = registered(name="王芳", line=BEIJING, phone="13800138000", **(extra or {}))
    li = registered(name="李强", line=BEIJING)
    zhang = registered(name="张伟", line=SHANGHAI)
    w, l_, z = (e["data"]["customer_id"] for e in (wang, li, zhang))
    account = account_opened(w)
    account["data"]["joint_holder_ids"] = [l_]
    a = account["data"]["account_id"]
    order, campaign, mailing = new_id(), new_id(), new_id()
    events = [
        wang,
        li,
        zhang,
        envelope(
            "RelationshipDeclared",
            {
                "customer_id": w,
                "related_customer_id": l_,
                "relation": "spouse",
                "same_household": True,
            },
        ),
        account,
        envelope(
            "BalanceReported",
            {"account_id": a, "balance": "52000.00", "as_of": "2025-03-01"},
        ),
        envelope(
            "OrderPlaced",
            {
                "order_id": order,
                "customer_id": z,
                "product": "理财产品A",
                "amount": "10000.00",
            },
        ),
        envelope(
            "OrderReviewed",
            {"order_id": order, "approved": True, "reviewer": "officer:赵敏"},
        ),
        envelope(
            "ContactLogged",
            {
                "contact_id": new_id(),
                "customer_id": w,
                "channel": "phone",
                "direction": "outbound",
                "topic": "理财到期提醒",
            },
        ),
        envelope(
            "CampaignLaunched",
            {
                "campaign_id": campaign,
                "name": "春节问候",
                "channel": "mail",
                "purpose": "service",
            },
        ),
        envelope(
            "MailingSent",
            {"mailing_id": mailing, "campaign_id": campaign, "customer_id": z},
        ),
        envelope("MailingReturned", {"mailing_id": mailing, "reason": "查无此人"}),
        envelope(
            "CustomerMoved",
            {"customer_id": z, "address": {"line": GUANGZHOU}},
            occurred_at="2025-03-05T09:30:00+08:00",
        ),
    ]
    report = platform.ingestor.ingest(events, atomic=True)
    assert report.count("stored") == len(events)
    return Scenario(w, l_, z, a, order, events)


def exported(
    platform: Platform, log_filter: LogFilter, page: int = 4
) -> list[dict[str, Any]]:
    return [
        orjson.loads(line)
        for line in jsonl_lines(scan_log(platform, log_filter, page=page))
    ]


def test_the_customer_filter_follows_the_streams_they_own(platform: Platform) -> None:
    s = build_scenario(platform)
    li = {
        e["event_id"]
        for e in exported(platform, LogFilter(customer_ids=frozenset({s.li})))
    }
    assert li == s.ids_of(
        "RelationshipDeclared", "AccountOpened", "BalanceReported"
    ) | {s.events[1]["event_id"]}
    zhang = {
        e["type"]
        for e in exported(platform, LogFilter(customer_ids=frozenset({s.zhang})))
    }
    assert zhang == {
        "CustomerRegistered",
        "OrderPlaced",
        "OrderReviewed",
        "MailingSent",
        "MailingReturned",
        "CustomerMoved",
    }


def test_the_household_filter_covers_everyone_who_was_a_member(
    cli_env: Platform,
) -> None:
    platform = cli_env
    s = build_scenario(platform)
    views(platform).catch_up()
    with platform.db.transaction() as cur:
        household = household_of(cur, s.wang)
        assert household is not None and household == household_of(cur, s.li)
    result = CliRunner().invoke(
        _app(platform), ["audit", "export", "--household", household]
    )
    assert result.exit_code == 0, result.output
    types = [orjson.loads(line)["type"] for line in result.stdout.splitlines()]
    assert sorted(types) == sorted(
        [
            "CustomerRegistered",
            "CustomerRegistered",
            "RelationshipDeclared",
            "AccountOpened",
            "BalanceReported",
            "ContactLogged",
        ]
    )


def test_type_and_time_filters(platform: Platform) -> None:
    s = build_scenario(platform)
    only = exported(
        platform, LogFilter(types=frozenset({"CustomerRegistered", "CustomerMoved"}))
    )
    assert (
        sorted(e["type"] for e in only)
        == ["CustomerMoved"] + ["CustomerRegistered"] * 3
    )
    # Events saved together share their recording time; a later save is later.
    late = [registered(name="周敏"), registered(name="吴刚")]
    platform.ingestor.ingest(late, atomic=True)
    records = list(scan_log(platform, LogFilter()))
    assert len({r.record.recorded_at for r in records}) == 2
    cut = records[-1].record.recorded_at
    from datetime import datetime

    later = exported(platform, LogFilter(since=datetime.fromisoformat(cut)))
    earlier = exported(platform, LogFilter(until=datetime.fromisoformat(cut)))
    assert sorted(e["event_id"] for e in later) == sorted(e["event_id"] for e in late)
    assert sorted(e["event_id"] for e in earlier + later) == sorted(
        e["event_id"] for e in s.events + late
    )
    recorded = {r.record.event_id: r.record.recorded_at for r in records}
    assert all(recorded[e["event_id"]] < cut for e in earlier)
    assert all(recorded[e["event_id"]] >= cut for e in later)
    assert earlier and later


def test_csv_carries_positions_and_chain_hashes(platform: Platform) -> None:
    build_scenario(platform)
    text = "".join(csv_lines(scan_log(platform, LogFilter(), page=3)))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 13
    with platform.db.transaction() as cur:
        stored = {
            r["position"]: bytes(r["chain_hash"]).hex()
            for r in cur.execute(
                "SELECT position, chain_hash FROM crm_event_log"
            ).fetchall()
        }
    assert {int(r["position"]): r["chain_hash"] for r in rows} == stored
    balance = next(r for r in rows if r["type"] == "BalanceReported")
    assert orjson.loads(balance["data"])["balance"] == "52000.00"


def _app(platform: Platform) -> typer.Typer:
    app = typer.Typer()
    app.add_typer(audit_cli, name="audit")
    return app


@pytest.fixture
def cli_env(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> Platform:
    monkeypatch.setenv("CRM_DATABASE_URL", platform.settings.database_url)
    monkeypatch.setenv("CRM_SECRET_KEY", SECRET)
    monkeypatch.setenv("CRM_LOG_LEVEL", "WARNING")
    return platform


def _comparable(row: dict[str, Any] | None) -> Any:
    """A view row without what depends on when and in which order events were stored."""
    if row is None:
        return None
    volatile = (
        "position",
        "recorded",
        "since",
        "until",
        "registered_at",
        "household_id",
    )
    return {k: v for k, v in row.items() if not any(word in k for word in volatile)}


def _snapshot(platform: Platform, s: Scenario) -> Any:
    views(platform).catch_up()
    with platform.db.transaction() as cur:
        people = [s.wang, s.li, s.zhang]
        households = {p: household_of(cur, p) for p in people}
        return (
            [_comparable(get_customer(cur, p)) for p in people],
            sorted(
                {
                    frozenset(m["customer_id"] for m in members(cur, h))
                    for h in households.values()
                    if h
                },
                key=sorted,
            ),
            [
                [
                    (r["event_id"], r["type"], r["summary"], r["channel"])
                    for r in _rows(customer_history(cur, p, limit=100))
                ]
                for p in people
            ],
        )


def _rows(result: Any) -> list[dict[str, Any]]:
    return list(result[0] if isinstance(result, tuple) else result)


def _reingest(
    cli_env: Platform, tmp_path: Path, extra: dict[str, Any] | None = None
) -> tuple[Any, Any, str]:
    s = build_scenario(cli_env, extra)
    out = tmp_path / "export.jsonl"
    result = CliRunner().invoke(
        _app(cli_env), ["audit", "export", "--format", "jsonl", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    lines = out.read_bytes().splitlines()
    assert sorted(orjson.loads(line)["event_id"] for line in lines) == sorted(
        e["event_id"] for e in s.events
    )
    fresh = build_platform(
        Settings(database_url=f"sqlite:///{tmp_path / 'fresh.db'}", secret_key=SECRET)
    )
    try:
        report = fresh.ingestor.ingest(
            [orjson.loads(line) for line in lines], atomic=False
        )
        errors = "; ".join(
            f"{o.index}: {o.error.message}"
            for o in report.outcomes
            if o.error is not None
        )
        return _snapshot(cli_env, s), _snapshot(fresh, s), errors
    finally:
        fresh.close()


def test_a_jsonl_export_reingests_into_the_same_views(
    cli_env: Platform, tmp_path: Path
) -> None:
    before, after, errors = _reingest(cli_env, tmp_path)
    assert errors == ""
    assert after == before


def test_a_customer_with_a_national_id_reingests(
    cli_env: Platform, tmp_path: Path
) -> None:
    before, after, errors = _reingest(
        cli_env, tmp_path, {"national_id": "110101199003071234"}
    )
    assert errors == ""
    assert after == before
    assert before[0][0]["national_id_last4"] == "1234"


@pytest.fixture
def client(platform: Platform) -> Iterator[TestClient]:
    app = create_app(platform)
    if not any(getattr(r, "path", "") == "/v1/audit/events" for r in app.routes):
        app.include_router(
            audit_routes.router
        )  # until the lead includes it in create_app
    with TestClient(app) as test_client:
        test_client.headers["Authorization"] = (
            f"Bearer {create_key(platform.db, 'audit')}"
        )
        yield test_client


def test_the_log_endpoint_pages_in_position_order(
    client: TestClient, platform: Platform
) -> None:
    s = build_scenario(platform)
    seen: list[dict[str, Any]] = []
    after = 0
    for _ in range(10):
        body = client.get(
            "/v1/audit/events", params={"after_position": after, "limit": 5}
        ).json()
        seen += body["events"]
        after = body["next_after_position"]
        if body["end_of_log"] and not body["events"]:
            break
    assert sorted(e["event_id"] for e in seen) == sorted(
        e["event_id"] for e in s.events
    )
    assert [e["position"] for e in seen] == list(range(1, 14))
    assert all(len(e["chain_hash"]) == 64 for e in seen)
    balance = next(e for e in seen if e["type"] == "BalanceReported")
    assert balance["data"] == {
        "account_id": s.account,
        "balance": "52000.00",
        "as_of": "2025-03-01",
    }
    mine = client.get(
        "/v1/audit/events", params={"customer_id": s.li, "type": "BalanceReported"}
    ).json()
    assert [e["type"] for e in mine["events"]] == ["BalanceReported"]


def test_only_auditors_read_the_log(client: TestClient, platform: Platform) -> None:
    build_scenario(platform)
    reader = create_key(platform.db, "read")
    response = client.get(
        "/v1/audit/events", headers={"Authorization": f"Bearer {reader}"}
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    verified = client.get("/v1/audit/verify").json()
    assert verified["ok"] is True and verified["checked"] == 13
