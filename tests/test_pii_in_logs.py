"""National IDs, phone numbers and e-mail addresses never appear in the logs.

The logs of a full demo run, of `crm ingest` (with rejected lines) and of a
`crm serve` answering writes, searches, reads and errors, all at DEBUG in JSON,
are searched for every national ID, phone and e-mail of the data.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson

from api.demo_data import generate_demo_events
from scripts.soak import free_port, make_keys, server_env, start_server, stop_server
from tests.factories import envelope, new_id, registered

HOUSEHOLDS = 20
SEED = 7
PII_FIELDS = ("national_id", "phone", "email")


def pii_of(events: list[dict[str, Any]]) -> set[str]:
    found = set()
    for event in events:
        data = event.get("data", {})
        for name in PII_FIELDS:
            if isinstance(data.get(name), str):
                found.add(data[name])
    return found


def crm(args: list[str], database_url: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "crm"), *args],
        env=server_env(database_url, CRM_LOG_LEVEL="DEBUG"),
        capture_output=True,
        timeout=300,
        check=False,
    )


def person(name: str, national_id: str, phone: str, email: str) -> dict[str, Any]:
    return registered(
        name=name,
        line="杭州市西湖区文三路478号华星时代广场A座1203室",
        national_id=national_id,
        phone=phone,
        email=email,
    )


def test_no_national_id_phone_or_email_in_any_log(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'crm.db'}"
    demo_events = list(generate_demo_events(households=HOUSEHOLDS, seed=SEED))
    secrets = pii_of(demo_events)
    assert len(secrets) > 3 * HOUSEHOLDS

    demo = crm(
        ["demo", "--households", str(HOUSEHOLDS), "--seed", str(SEED)], database_url
    )
    assert demo.returncode == 0, demo.stderr[-2000:]
    logs = [demo.stdout, demo.stderr]

    # crm ingest: good lines, a duplicate with other content, a bad line carrying PII.
    zhou = person("周杰", "330106198504123216", "13957112345", "zhou.jie@example.cn")
    bad = person("吴敏", "33010619900307002X", "13857154321", "wu.min@example.cn")
    bad["data"]["vip_level"] = "钻石"
    conflicting = {**zhou, "data": {**zhou["data"], "name": "周杰伦"}}
    jsonl = tmp_path / "events.jsonl"
    jsonl.write_bytes(
        b"\n".join(orjson.dumps(e) for e in (zhou, bad, conflicting)) + b"\n"
    )
    ingest = crm(["ingest", str(jsonl)], database_url)
    assert ingest.returncode == 1  # two lines rejected
    logs += [ingest.stdout, ingest.stderr]
    secrets |= pii_of([zhou, bad])

    keys = make_keys(database_url, ["ingest", "read", "admin"])
    port = free_port()
    log_path = tmp_path / "serve.log"
    server = start_server(database_url, port, log_path, CRM_LOG_LEVEL="DEBUG")
    try:
        secrets |= exercise_api(f"http://127.0.0.1:{port}", keys, demo_events)
    finally:
        stop_server(server)
    logs.append(log_path.read_bytes())

    text = b"\n".join(logs).decode("utf-8", errors="replace")
    assert "http.request" in text and "ingest" in text  # the logs were captured
    leaked = sorted(s for s in secrets if s in text)
    assert not leaked, f"{len(leaked)} PII values in the logs, e.g. {leaked[:3]}"


def exercise_api(
    base: str, keys: dict[str, str], demo_events: list[dict[str, Any]]
) -> set[str]:
    """Writes, searches, reads and errors that carry PII; returns the PII used."""
    li = person("李娜", "110105199003071245", "13811112222", "li.na@example.cn")
    invalid = person("赵磊", "440106198812250031", "13600001111", "zhao.lei@example.cn")
    invalid["data"]["address"] = {"line": "广州市天河区天河路385号", "planet": "地球"}
    known = next(
        e
        for e in demo_events
        if e["type"] == "CustomerRegistered" and e["data"].get("national_id")
    )
    ingest = {"Authorization": f"Bearer {keys['ingest']}"}
    read = {"Authorization": f"Bearer {keys['read']}"}
    with httpx.Client(base_url=base, timeout=30) as http:
        stored = http.post("/v1/events", json=li, headers=ingest)
        assert stored.status_code == 201
        position = stored.json()["position"]
        assert http.post("/v1/events", json=invalid, headers=ingest).status_code == 422
        changed = {**li, "data": {**li["data"], "email": "other@example.cn"}}
        assert http.post("/v1/events", json=changed, headers=ingest).status_code == 409
        # An event for a customer that does not exist, carrying a phone number.
        corrected = envelope(
            "CustomerDetailsCorrected",
            {
                "customer_id": new_id(),
                "phone": "13700002222",
                "email": "ghost@example.cn",
            },
        )
        assert (
            http.post("/v1/events", json=corrected, headers=ingest).status_code == 422
        )
        for query in (
            {"national_id": li["data"]["national_id"]},
            {"national_id": known["data"]["national_id"]},
            {"phone": li["data"]["phone"]},
            {"phone": known["data"]["phone"]},
            {"name": "李娜", "min_position": position},
        ):
            assert (
                http.get("/v1/customers/search", params=query, headers=read).status_code
                == 200
            )
        customer = http.get(
            f"/v1/customers/{li['data']['customer_id']}",
            params={"min_position": position},
            headers=read,
        )
        assert customer.status_code == 200
        assert li["data"]["national_id"] not in customer.text
        assert (
            http.get(
                "/v1/customers/search", params={"national_id": "1" * 41}, headers=read
            ).status_code
            == 422
        )
    return pii_of([li, invalid, corrected]) | {"other@example.cn"}
