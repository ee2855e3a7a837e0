"""High-value households: balances, fee income, products, tenure and a value tier.

Nothing is stored: values and ranks are computed per query from the accounts view
and the households view's current membership, so tiers always reflect the latest
balances and a rebuild cannot change them. Households rank by total balance, then
fee income over the last 12 months, then id (ties broken deterministically); the
top `private_pct` percent are "private", the next `premier_pct` percent "premier",
the rest "mass". "The last 12 months" end at the latest event time in the log,
not the wall clock. Tiers are global: filtering by branch does not re-rank.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.store.database import Cursor
from projections.accounts import latest_event_time
from projections.household_value_sql import HOUSEHOLD_VALUES
from projections.service_values import money_text, utc_text

TIERS = ("private", "premier", "mass")


class TierSettings(BaseSettings):
    """Value tier cut-offs in percent of households (environment prefix CRM_TIER_)."""

    model_config = SettingsConfigDict(env_prefix="CRM_TIER_", frozen=True)

    private_pct: Decimal = Field(
        default=Decimal("1"), ge=0, le=100, description="Top share that is private"
    )
    premier_pct: Decimal = Field(
        default=Decimal("9"), ge=0, le=100, description="Next share that is premier"
    )


def tier_for(rank: int, count: int, settings: TierSettings) -> str:
    """Rank r of n is in the top p% when r <= n * p / 100 (exact decimal arithmetic)."""
    if rank * 100 <= count * settings.private_pct:
        return "private"
    if rank * 100 <= count * (settings.private_pct + settings.premier_pct):
        return "premier"
    return "mass"


def _fee_window(clock: datetime) -> list[str]:
    """The statement's first two parameters: the 12 months of fees before `clock`."""
    return [utc_text(_year_before(clock)), utc_text(clock)]


def _year_before(moment: datetime) -> datetime:
    try:
        return moment.replace(year=moment.year - 1)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year - 1, day=28)


def _values(
    cur: Cursor,
    conditions: Sequence[str] = (),
    params: Sequence[Any] = (),
    limit: int | None = None,
    settings: TierSettings | None = None,
) -> list[dict[str, Any]]:
    clock = latest_event_time(cur)
    if clock is None:
        return []
    settings = settings or TierSettings()
    sql = HOUSEHOLD_VALUES.format(
        columns="*",
        where=" AND ".join(conditions) or "1 = 1",
        limit="" if limit is None else "LIMIT %s",
    )
    args = [*_fee_window(clock), *params]
    if limit is not None:
        args.append(limit)
    rows = cur.execute(sql, args).fetchall()
    return [_public(row, clock, settings) for row in rows]


def _public(
    row: dict[str, Any], clock: datetime, settings: TierSettings
) -> dict[str, Any]:
    rank, count = int(row["value_rank"]), int(row["household_count"])
    first = row["first_opened_at"]
    return {
        "household_id": row["household_id"],
        "branch_code": row["branch_code"],
        "region_code": row["region_code"],
        "member_count": int(row["member_count"]),
        "total_balance": money_text(row["total_balance_cents"]),
        "total_balance_cents": int(row["total_balance_cents"]),
        "fee_income_12m": money_text(row["fee_income_cents"]),
        "fee_income_12m_cents": int(row["fee_income_cents"]),
        "product_count": int(row["product_count"]),
        "account_count": int(row["account_count"]),
        "customer_since": first,
        "tenure_days": None
        if first is None
        else (clock - datetime.fromisoformat(first)).days,
        "value_rank": rank,
        "household_count": count,
        "value_tier": tier_for(rank, count, settings),
        "as_of": utc_text(clock),
    }


def top_households(
    cur: Cursor,
    *,
    branch_code: str | None = None,
    region_code: str | None = None,
    limit: int = 50,
    settings: TierSettings | None = None,
) -> list[dict[str, Any]]:
    """The most valuable households, best first, optionally within a branch/region."""
    conditions, params = [], []
    if branch_code is not None:
        conditions.append("branch_code = %s")
        params.append(branch_code)
    if region_code is not None:
        conditions.append("region_code = %s")
        params.append(region_code)
    return _values(cur, conditions, params, max(1, min(limit, 1000)), settings)


def household_values(
    cur: Cursor, settings: TierSettings | None = None
) -> list[dict[str, Any]]:
    """Every household's value row, best first."""
    return _values(cur, settings=settings)


@dataclass(frozen=True)
class Tiers:
    """Value tiers as reads use them: the private and premier households by id.

    Every other household with members is mass, so nine in ten households need
    no entry: for 36,000 households a dict of all of them took 13 MB in each web
    process, and the full rows before it 46 MB."""

    top: Mapping[str, str] = field(default_factory=dict)

    def of(self, household_id: str, member_count: int | None) -> str | None:
        """The household's tier; None for one without members (it is not ranked)."""
        tier = self.top.get(household_id)
        if tier is not None:
            return tier
        return "mass" if member_count else None


def household_tiers(cur: Cursor, settings: TierSettings | None = None) -> Tiers:
    """Every household's value tier, as `household_values` ranks them, reading only
    the ids and ranks of the private and premier ones."""
    clock = latest_event_time(cur)
    if clock is None:
        return Tiers()
    settings = settings or TierSettings()
    top_pct = settings.private_pct + settings.premier_pct
    # rank * 100 <= count * top_pct, in integers so that SQLite compares exactly.
    exponent = top_pct.as_tuple().exponent
    scale = 10 ** max(0, -exponent) if isinstance(exponent, int) else 1
    sql = HOUSEHOLD_VALUES.format(
        columns="household_id, value_rank, household_count",
        where="value_rank * %s <= household_count * %s",
        limit="",
    )
    rows = cur.execute(
        sql, [*_fee_window(clock), 100 * scale, int(top_pct * scale)]
    ).tuples()
    if not rows:
        return Tiers()
    private, premier = _cut_offs(int(rows[0][2]), settings)
    return Tiers(
        {
            household_id: "private" if rank <= private else "premier"
            for household_id, rank, _count in rows
            if rank <= premier
        }
    )


def _cut_offs(count: int, settings: TierSettings) -> tuple[int, int]:
    """The last rank of each of the top two tiers among `count` households: the
    largest r with `tier_for(r, count)` private, and premier (exact, as it is)."""
    private = int(count * settings.private_pct // 100)
    premier = int(count * (settings.private_pct + settings.premier_pct) // 100)
    return private, premier


def tier_of(
    cur: Cursor, household_ids: Iterable[str], settings: TierSettings | None = None
) -> dict[str, str]:
    """The value tier of each given household (absent when it has no members)."""
    wanted = set(household_ids)
    return {
        row["household_id"]: row["value_tier"]
        for row in _values(cur, settings=settings)
        if row["household_id"] in wanted
    }


def households_in_tiers(
    cur: Cursor, tiers: Iterable[str], settings: TierSettings | None = None
) -> list[str]:
    """Ids of the households in any of `tiers`, best first (for the mailing planner)."""
    chosen = set(tiers)
    unknown = chosen - set(TIERS)
    if unknown:
        raise ValueError(f"unknown value tier(s): {', '.join(sorted(unknown))}")
    return [
        row["household_id"]
        for row in _values(cur, settings=settings)
        if row["value_tier"] in chosen
    ]


CURRENT_MEMBERS = "SELECT customer_id FROM household_memberships WHERE household_id = %s AND to_position IS NULL ORDER BY from_position"


def members_in_tiers(
    cur: Cursor, tiers: Iterable[str], settings: TierSettings | None = None
) -> list[str]:
    """Current members of the households in `tiers`, best households first."""
    members: list[str] = []
    for household_id in households_in_tiers(cur, tiers, settings):
        rows = cur.execute(CURRENT_MEMBERS, (household_id,)).fetchall()
        members += [row["customer_id"] for row in rows]
    return members
