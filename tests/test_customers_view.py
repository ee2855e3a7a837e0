"""The customer directory: details, consents, balances over joint accounts, search."""

from __future__ import annotations

from typing import Any

import pytest

from api.bootstrap import Platform
from domain.national_id import protect
from projections.customers import CustomersProjection, get_customer, search_customers
from projections.runner import ProjectionRunner
from tests.factories import account_opened, envelope, new_id, registered


class Directory:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.runner = ProjectionRunner(
            platform.app, platform.db, [CustomersProjection()]
        )

    def post(self, *envelopes: dict[str, Any]) -> None:
        report = self.platform.ingestor.ingest(list(envelopes), atomic=True)
        assert all(o.status == "stored" for o in report.outcomes)
        self.runner.catch_up()

    def get(self, customer_id: str) -> dict[str, Any]:
        with self.platform.db.transaction() as cur:
            found = get_customer(cur, customer_id)
        assert found is not None
        return found

    def search(self, **criteria: Any) -> list[str]:
        with self.platform.db.transaction() as cur:
            return [c["customer_id"] for c in search_customers(cur, **criteria)]


@pytest.fixture
def directory(platform: Platform) -> Directory:
    return Directory(platform)


def balance(account_id: str, amount: str, as_of: str) -> dict[str, Any]:
    return envelope(
        "BalanceReported", {"account_id": account_id, "balance": amount, "as_of": as_of}
    )


def test_registration_corrections_consents_and_death(directory: Directory) -> None:
    customer = new_id()
    directory.post(
        registered(
            customer,
            name="欧阳娜娜",
            national_id="110101199003070011",
            phone="+86 138-0013-8000",
            region_code="BJ",
            birth_date="1990-03-07",
        )
    )
    row = directory.get(customer)
    assert row["name"] == "欧阳娜娜"
    assert row["national_id_last4"] == "0011"
    assert row["address"]["line"].startswith("北京市朝阳区")
    assert row["address_key"]
    assert row["deceased"] is False
    assert row["registered_position"] == row["position"]
    directory.post(
        envelope(
            "CustomerDetailsCorrected", {"customer_id": customer, "name": "欧阳娜"}
        ),
        envelope(
            "ConsentChanged",
            {
                "customer_id": customer,
                "channel": "mail",
                "purpose": "marketing",
                "granted": False,
            },
        ),
        envelope(
            "CustomerDeceased",
            {"customer_id": customer, "date_of_death": "2025-02-20"},
        ),
    )
    row = directory.get(customer)
    assert row["name"] == "欧阳娜"
    assert row["consents"] == {"mail/marketing": False}
    assert row["deceased"] is True
    assert row["date_of_death"] == "2025-02-20"
    assert row["position"] > row["registered_position"]


def test_total_balance_counts_open_accounts_and_joint_holders(
    directory: Directory,
) -> None:
    husband, wife = new_id(), new_id()
    directory.post(registered(husband, name="蒋涛"), registered(wife, name="沈梅"))
    own, joint = new_id(), new_id()
    opened = account_opened(husband, joint)
    opened["data"]["joint_holder_ids"] = [wife]
    directory.post(account_opened(husband, own), opened)
    directory.post(
        balance(own, "1000.10", "2025-01-31"),
        balance(joint, "250.00", "2025-01-31"),
        balance(own, "1200.00", "2025-02-28"),
        balance(own, "5.00", "2025-01-15"),  # an older report arriving late
    )
    assert directory.get(husband)["total_balance_cents"] == 145000
    assert directory.get(wife)["total_balance_cents"] == 25000
    directory.post(envelope("AccountClosed", {"account_id": joint}))
    assert directory.get(husband)["total_balance_cents"] == 120000
    assert directory.get(wife)["total_balance_cents"] == 0


def test_merge_points_the_duplicate_at_the_survivor(directory: Directory) -> None:
    survivor, duplicate = new_id(), new_id()
    directory.post(
        registered(survivor, name="卢芳"), registered(duplicate, name="卢芳")
    )
    directory.post(
        envelope(
            "CustomersMerged", {"survivor_id": survivor, "duplicate_id": duplicate}
        )
    )
    assert directory.get(duplicate)["merged_into"] == survivor
    assert directory.get(survivor)["merged_into"] is None


def test_search_by_name_phone_and_national_id_hash(
    directory: Directory, platform: Platform
) -> None:
    ids = [new_id() for _ in range(4)]
    directory.post(
        registered(ids[0], name="王小明", phone="13800138000"),
        registered(ids[1], name="李王强", phone="139-0000-1111"),
        registered(ids[2], name="张三", national_id="440301198501012345"),
        registered(ids[3], name="100%_王", phone="13700000000"),
    )
    found = directory.search(name="王")
    assert found[0] == ids[0]  # the prefix match comes first
    assert set(found) == {ids[0], ids[1], ids[3]}
    assert directory.search(name="%_") == [ids[3]]  # wildcards are literal
    assert directory.search(phone="138 0013 8000") == [ids[0]]
    assert directory.search(phone="13900001111") == [ids[1]]
    hashed, _ = protect("440301198501012345", platform.settings.national_id_key)
    assert directory.search(national_id_hash=hashed) == [ids[2]]
    assert directory.search(national_id_hash="440301198501012345") == []
    assert directory.search(name="王", limit=1) == [ids[0]]
    assert directory.search() == []


def test_one_page_of_mixed_changes_ends_at_the_latest_event(
    directory: Directory,
) -> None:
    """A page's writes go out grouped by kind, not in log order: the row still
    ends with every change and the position of the customer's latest event."""
    customer, account = new_id(), new_id()
    moved = registered(customer)["data"]["address"] | {
        "line": "上海市浦东新区世纪大道100号"
    }
    directory.post(
        registered(customer, name="钱伟"),
        account_opened(customer, account),
        balance(account, "300.00", "2025-01-31"),
        envelope(
            "ConsentChanged",
            {
                "customer_id": customer,
                "channel": "sms",
                "purpose": "marketing",
                "granted": True,
            },
        ),
        envelope("CustomerMoved", {"customer_id": customer, "address": moved}),
        envelope("CustomerDetailsCorrected", {"customer_id": customer, "name": "钱玮"}),
        balance(account, "450.00", "2025-02-28"),
        envelope(
            "ConsentChanged",
            {
                "customer_id": customer,
                "channel": "sms",
                "purpose": "marketing",
                "granted": False,
            },
        ),
    )
    row = directory.get(customer)
    assert row["name"] == "钱玮"
    assert row["address"]["line"] == "上海市浦东新区世纪大道100号"
    assert row["consents"] == {"sms/marketing": False}
    assert row["total_balance_cents"] == 45000
    assert row["position"] == directory.platform.app.recorder.max_notification_id()
    directory.post(
        envelope(
            "CustomerDetailsCorrected",
            {"customer_id": customer, "phone": "13900000000"},
        ),
        balance(account, "20.00", "2025-01-15"),  # late and older: total unchanged
    )
    row = directory.get(customer)
    assert row["total_balance_cents"] == 45000
    assert row["position"] == directory.platform.app.recorder.max_notification_id()
