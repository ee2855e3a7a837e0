"""The bench's data: the demo log as JSON Lines, the balance file, and fresh events."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson

from api.demo_data import generate_demo_events

SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
)
GIVEN = "伟芳娜敏静磊洋婷强军杰丽秀英华明国建平志红玉兰桂梅琳"
DISTRICTS = [
    ("北京市", "朝阳区", "建国路"),
    ("上海市", "浦东新区", "世纪大道"),
    ("广州市", "天河区", "天河路"),
    ("深圳市", "南山区", "科技园路"),
    ("成都市", "武侯区", "人民南路"),
    ("杭州市", "西湖区", "文三路"),
    ("南京市", "鼓楼区", "中山北路"),
    ("武汉市", "江汉区", "解放大道"),
]
TOPICS = ["理财咨询", "信用卡账单", "贷款还款提醒", "保险续保", "地址核实", "投诉回访"]


@dataclass
class DemoLog:
    """What the workloads need to know about the ingested demo log."""

    events: int = 0
    customers: list[str] = field(default_factory=list)
    open_accounts: list[str] = field(default_factory=list)


def write_demo_jsonl(path: Path, households: int, seed: int) -> DemoLog:
    log = DemoLog()
    customers: dict[str, None] = {}
    accounts: dict[str, None] = {}
    with path.open("wb") as out:
        for event in generate_demo_events(households=households, seed=seed):
            out.write(orjson.dumps(event) + b"\n")
            log.events += 1
            data, kind = event["data"], event["type"]
            if kind == "CustomerRegistered":
                customers[data["customer_id"]] = None
            elif kind in ("CustomerDeceased",):
                customers.pop(data["customer_id"], None)
            elif kind == "CustomersMerged":
                customers.pop(data["duplicate_id"], None)
            elif kind == "AccountOpened":
                accounts[data["account_id"]] = None
            elif kind == "AccountClosed":
                accounts.pop(data["account_id"], None)
    log.customers = list(customers)
    log.open_accounts = list(accounts)
    return log


def write_balance_csv(
    path: Path, accounts: list[str], rows: int, first_day: date
) -> int:
    """`rows` balances: every open account, one day after another from `first_day`."""
    rng = random.Random(rows)
    written = 0
    with path.open("w", encoding="utf-8") as out:
        out.write("account_id,balance,as_of\n")
        day = 0
        while written < rows:
            as_of = (first_day + timedelta(days=day)).isoformat()
            for account in accounts:
                if written == rows:
                    break
                cents = rng.randint(-5_000_000, 50_000_000)
                out.write(f"{account},{cents / 100:.2f},{as_of}\n")
                written += 1
            day += 1
    return written


def _stamp(rng: random.Random) -> str:
    return f"2026-0{rng.randint(1, 9)}-{rng.randint(10, 28)}T{rng.randint(8, 20):02d}:{rng.randint(10, 59)}:00+08:00"


def contact(rng: random.Random, customer_id: str) -> dict[str, Any]:
    return {
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "type": "ContactLogged",
        "occurred_at": _stamp(rng),
        "source": "call-centre:SH02",
        "actor": f"agent:{rng.choice(SURNAMES)}{rng.choice(GIVEN)}",
        "data": {
            "contact_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "customer_id": customer_id,
            "channel": rng.choice(["phone", "branch", "sms", "email", "web"]),
            "direction": rng.choice(["inbound", "outbound"]),
            "topic": rng.choice(TOPICS),
        },
    }


def registration(
    rng: random.Random, customer_id: str, line: str, branch: str = "SH001"
) -> dict[str, Any]:
    return {
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "type": "CustomerRegistered",
        "occurred_at": _stamp(rng),
        "source": f"branch:{branch}",
        "actor": f"officer:{rng.choice(SURNAMES)}{rng.choice(GIVEN)}",
        "data": {
            "customer_id": customer_id,
            "name": rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN),
            "address": {"line": line},
            "branch_code": branch,
        },
    }


def fresh_events(
    seed: int, customers: list[str], count: int
) -> Iterator[dict[str, Any]]:
    """New, valid events: four contacts of existing customers to one new registration."""
    rng = random.Random(seed)
    for n in range(count):
        if n % 5 == 4:
            yield registration(
                rng, str(uuid.UUID(int=rng.getrandbits(128), version=4)), _line(rng)
            )
        else:
            yield contact(rng, rng.choice(customers))


def _line(rng: random.Random, number: int | None = None) -> str:
    city, district, street = rng.choice(DISTRICTS)
    return (
        f"{city}{district}{street}{number or rng.randint(1, 999)}号"
        f"{rng.randint(1, 30)}号楼{rng.randint(1, 6)}单元{rng.randint(1, 30)}0{rng.randint(1, 4)}室"
    )


def mailing_population(
    seed: int, customers: int
) -> tuple[list[str], Iterator[dict[str, Any]]]:
    """New customers in families of 1-4 sharing an address line: ids and their registrations."""
    rng = random.Random(seed)
    ids: list[str] = []
    events: list[dict[str, Any]] = []
    while len(ids) < customers:
        line = _line(rng, number=1000 + len(ids))  # one address per family
        for _ in range(min(rng.randint(1, 4), customers - len(ids))):
            customer_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            ids.append(customer_id)
            events.append(registration(rng, customer_id, line))
    return ids, iter(events)


def campaign(seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    return {
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "type": "CampaignLaunched",
        "occurred_at": "2026-10-01T09:00:00+08:00",
        "source": "marketing:HQ",
        "actor": "manager:周敏",
        "data": {
            "campaign_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "name": "2026年秋季理财推介",
            "channel": "mail",
            "purpose": "marketing",
            "one_per_household": True,
        },
    }
