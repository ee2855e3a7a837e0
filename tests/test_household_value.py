"""High-value households: balances over joint accounts, fee income, tenure, tiers."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.bootstrap import Platform
from projections.accounts import AccountsProjection
from projections.household_value import (
    TierSettings,
    _cut_offs,
    household_tiers,
    household_values,
    households_in_tiers,
    tier_for,
    tier_of,
    top_households,
)
from projections.households import HouseholdsProjection, household_of
from projections.runner import ProjectionRunner
from tests.factories import envelope, new_id, registered

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋"


class Bank:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.runner = ProjectionRunner(
            platform.app,
            platform.db,
            [HouseholdsProjection(), AccountsProjection()],
        )

    def post(self, *envelopes: dict[str, Any]) -> None:
        report = self.platform.ingestor.ingest(list(envelopes), atomic=True)
        assert all(o.status == "stored" for o in report.outcomes), report.outcomes
        self.runner.catch_up()

    def query(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        with self.platform.db.transaction() as cur:
            return fn(cur, *args, **kwargs)


@pytest.fixture
def bank(platform: Platform) -> Bank:
    return Bank(platform)


def opened(
    customer_id: str,
    at: str = "2020-05-01T10:00:00+08:00",
    product: str = "deposit",
    joint: list[str] | None = None,
    branch: str = "BJ001",
) -> dict[str, Any]:
    return envelope(
        "AccountOpened",
        {
            "account_id": new_id(),
            "customer_id": customer_id,
            "joint_holder_ids": joint or [],
            "product": product,
            "branch_code": branch,
        },
        occurred_at=at,
    )


def balance(
    account: dict[str, Any], amount: str, as_of: str = "2025-03-31"
) -> dict[str, Any]:
    return envelope(
        "BalanceReported",
        {
            "account_id": account["data"]["account_id"],
            "balance": amount,
            "as_of": as_of,
        },
        occurred_at=f"{as_of}T23:59:59+08:00",
    )


def fee(account: dict[str, Any], amount: str, at: str) -> dict[str, Any]:
    return envelope(
        "FeeCharged",
        {"account_id": account["data"]["account_id"], "amount": amount, "kind": "年费"},
        occurred_at=at,
    )


def hundred_households(bank: Bank) -> dict[int, str]:
    """Household i (1..100) holds i thousand yuan; returns household id by i."""
    events, customers = [], {}
    for i in range(1, 101):
        customer_id = new_id()
        customers[i] = customer_id
        name = SURNAMES[i % 20] + GIVEN[i % 10]
        branch = "SH002" if i % 2 else "BJ001"
        account = opened(customer_id)
        events += [
            registered(
                customer_id,
                name=name,
                line=f"上海市徐汇区漕溪北路{i}号{i}0{i % 9 + 1}室",
                branch_code=branch,
            ),
            account,
            balance(account, f"{i * 1000}.00"),
        ]
    bank.post(*events)
    return {i: bank.query(household_of, c) for i, c in customers.items()}


def test_tiers_across_a_hundred_households(bank: Bank) -> None:
    households = hundred_households(bank)
    assert len(set(households.values())) == 100
    rows = bank.query(household_values)
    tiers = [row["value_tier"] for row in rows]
    assert tiers.count("private") == 1
    assert tiers.count("premier") == 9
    assert tiers.count("mass") == 90
    assert rows[0]["household_id"] == households[100]
    assert rows[0]["total_balance"] == "100000.00"
    assert {r["household_id"] for r in rows[1:10]} == {
        households[i] for i in range(91, 100)
    }
    assert bank.query(tier_of, [households[100], households[95], households[3]]) == {
        households[100]: "private",
        households[95]: "premier",
        households[3]: "mass",
    }
    assert bank.query(households_in_tiers, ["private"]) == [households[100]]
    assert bank.query(households_in_tiers, ["private", "premier"]) == [
        households[i] for i in range(100, 90, -1)
    ]
    with pytest.raises(ValueError):
        bank.query(households_in_tiers, ["diamond"])

    wider = TierSettings(private_pct=Decimal("5"), premier_pct=Decimal("10"))
    counts = [r["value_tier"] for r in bank.query(household_values, settings=wider)]
    assert (counts.count("private"), counts.count("premier")) == (5, 10)

    top_sh = bank.query(top_households, branch_code="SH002", limit=3)
    assert [r["household_id"] for r in top_sh] == [
        households[99],
        households[97],
        households[95],
    ]
    assert top_sh[0]["value_rank"] == 2  # tiers are global, not per branch


def test_tiers_follow_balance_changes(bank: Bank) -> None:
    households = hundred_households(bank)
    poorest = bank.query(
        lambda cur: cur.execute(
            "SELECT h.account_id FROM service_account_holders h "
            "JOIN household_people p ON p.customer_id = h.customer_id "
            "WHERE p.household_id = %s",
            (households[1],),
        ).fetchone()
    )["account_id"]
    bank.post(balance({"data": {"account_id": poorest}}, "5000000.00", "2025-04-30"))
    assert bank.query(tier_of, [households[1], households[100]]) == {
        households[1]: "private",
        households[100]: "premier",
    }


def test_tier_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_TIER_PRIVATE_PCT", "2.5")
    monkeypatch.setenv("CRM_TIER_PREMIER_PCT", "12")
    settings = TierSettings()
    assert settings.private_pct == Decimal("2.5")
    assert settings.premier_pct == Decimal("12")


def test_joint_accounts_fees_products_and_tenure(bank: Bank) -> None:
    home = "北京市朝阳区建国路88号3号楼2单元501室"
    husband, wife = new_id(), new_id()
    joint = opened(husband, "2015-03-02T09:00:00+08:00", joint=[wife])
    own = opened(husband, "2018-07-01T09:00:00+08:00", product="fund")
    card = opened(wife, "2019-01-01T09:00:00+08:00", product="card")
    bank.post(
        registered(husband, name="王建国", line=home),
        registered(wife, name="李秀英", line=home),
        joint,
        own,
        card,
        balance(joint, "50000.00"),
        balance(own, "1000.00"),
        balance(card, "-200.00"),
        fee(own, "30.00", "2024-02-01T10:00:00+08:00"),  # more than 12 months back
        fee(own, "40.00", "2024-05-01T10:00:00+08:00"),
        fee(joint, "12.00", "2025-03-01T10:00:00+08:00"),
    )
    household = bank.query(household_of, husband)
    assert household == bank.query(household_of, wife)
    [row] = bank.query(household_values)
    assert row["household_id"] == household
    assert row["total_balance"] == "50800.00"  # the joint account counted once
    assert row["fee_income_12m"] == "52.00"
    assert row["product_count"] == 3
    assert row["account_count"] == 3
    assert row["customer_since"] == "2015-03-02T01:00:00+00:00"
    assert row["as_of"] == "2025-03-31T15:59:59+00:00"
    assert row["tenure_days"] == 3682
    assert row["member_count"] == 2


def test_rebuild_gives_the_same_values(bank: Bank) -> None:
    hundred_households(bank)
    live = bank.query(household_values)
    bank.runner.rebuild()
    assert bank.query(household_values) == live


def test_the_tiers_reads_use_are_the_tiers_of_the_full_rows(bank: Bank) -> None:
    hundred_households(bank)
    for settings in (
        TierSettings(),
        TierSettings(private_pct=Decimal("5"), premier_pct=Decimal("10")),
        TierSettings(private_pct=Decimal("0.5"), premier_pct=Decimal("33.3")),
    ):
        rows = bank.query(household_values, settings=settings)
        assert len(rows) == 100
        tiers = bank.query(household_tiers, settings=settings)
        for row in rows:
            tier = tiers.of(row["household_id"], row["member_count"])
            assert tier == row["value_tier"], row
        top = [r["household_id"] for r in rows if r["value_tier"] != "mass"]
        assert sorted(tiers.top) == sorted(top)  # only the top is kept
    assert tiers.of(new_id(), 0) is None  # no members, not ranked


def test_no_households_no_tiers(bank: Bank) -> None:
    assert bank.query(household_tiers).top == {}


@given(
    count=st.integers(min_value=1, max_value=3000),
    private=st.decimals(min_value=0, max_value=50, places=2),
    premier=st.decimals(min_value=0, max_value=50, places=2),
)
def test_cut_offs_agree_with_the_tier_of_every_rank(
    count: int, private: Decimal, premier: Decimal
) -> None:
    settings = TierSettings(private_pct=private, premier_pct=premier)
    last_private, last_premier = _cut_offs(count, settings)
    for rank in {
        1,
        last_private,
        last_private + 1,
        last_premier,
        last_premier + 1,
        count,
    }:
        if 1 <= rank <= count:
            by_cut_off = (
                "private"
                if rank <= last_private
                else ("premier" if rank <= last_premier else "mass")
            )
            assert by_cut_off == tier_for(rank, count, settings), rank
