"""Mailing plans: decide every target of a campaign and record the decisions as facts.

Correctness does not rest on the views being current: the views are first made
to reach the log head read at the start, and the store itself refuses a second
piece for a household (slot aggregate id) or a second decision for a customer
(unique event_id). A plan that loses such a race reloads and decides again.
"""

from __future__ import annotations

import gc
import itertools
import random
import threading
import time
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
import structlog
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from api.bootstrap import Platform
from api.memory import release_free_memory
from api.store.database import Cursor, DatabaseUnavailable
from api.store.mailing_facts import DecisionFacts, Fact, OrderedSaves, save
from api.store.plan_answer import (
    Answer,
    FileAnswer,
    PublishedAnswer,
    StoredAnswer,
    joined,
)
from domain import mailing as m
from domain.errors import Conflict, NotFound
from projections.base import Projection
from projections.households import HouseholdsProjection
from projections.mailing_decisions import MailingDecisionsProjection, get_campaign
from projections.runner import PositionMoved, ProjectionRunner

log = structlog.get_logger("crm.mailing")

CHUNK = 2000  # SQLite: ids per IN list
# PostgreSQL: ids per statement. libpq keeps its send buffer at the largest
# statement a connection ever sent, for the connection's life: 100,000 ids in one
# statement kept 4 MB in every pooled connection that had run a plan.
PG_CHUNK = 20_000
RELEASE_AFTER = 10_000  # targets: plans this large give their freed heap back
MAX_ATTEMPTS = 30
CATCH_UP_ERRORS = (PositionMoved, DatabaseUnavailable, psycopg.Error, IntegrityError)


# What a plan reads. Each is one statement over all the ids (PostgreSQL) or
# over chunks of them (SQLite); see _rows.
SELECT_PEOPLE = (
    "SELECT p.customer_id, hp.household_id, hp.address, hp.registered_position, "
    "hp.head_designated_position, hp.balance_cents, p.deceased_event_id, "
    "p.deceased_position, p.merged_event_id, p.merged_position, c.event_id, "
    "c.position, hm.joined_by_event_id, hm.joined_by_type, hm.from_position "
    "FROM mailing_people p "
    "LEFT JOIN household_people hp ON hp.customer_id = p.customer_id "
    "LEFT JOIN mailing_consents c ON c.customer_id = p.customer_id "
    "AND c.channel = %s AND c.purpose = %s AND c.granted = 0 "
    "LEFT JOIN household_memberships hm ON hm.customer_id = p.customer_id "
    "AND hm.to_position IS NULL "
    "WHERE p.customer_id IN {ids}"
)
# The household of each of a list of ids, by the id's place in the list (from
# `%s`), in the list's order. The ids go as one parameter: a comma-separated text
# (PostgreSQL) or a JSON array (SQLite).
SELECT_HOMES_PG = (
    "SELECT t.n - 1 + %s, hp.household_id "
    "FROM unnest(string_to_array(%s, ',')) WITH ORDINALITY AS t(customer_id, n) "
    "JOIN household_people hp ON hp.customer_id = t.customer_id "
    "WHERE hp.household_id IS NOT NULL ORDER BY t.n"
)
SELECT_HOMES_SQLITE = (
    "SELECT j.key + %s, hp.household_id FROM json_each(%s) AS j "
    "JOIN household_people hp ON hp.customer_id = j.value "
    "WHERE hp.household_id IS NOT NULL ORDER BY j.key"
)
SELECT_HOUSEHOLDS = (
    "SELECT household_id, address FROM households WHERE household_id IN {ids}"
)
SELECT_SCHEDULED = (
    "SELECT household_id, event_id, position FROM mailing_decisions "
    "WHERE campaign_id = %s AND outcome = 'scheduled' AND household_id IN {ids}"
)
# Only the pieces a decision looks at: this campaign's, and those of its purpose
# within its frequency cap's window (none when it has no cap: the window's start
# is NULL). The members' whole mailing history would grow with every campaign.
SELECT_MEMBER_PIECES = (
    "SELECT m.household_id, p.campaign_id, p.purpose, p.scheduled_event_id, "
    "p.scheduled_position, p.scheduled_at, p.sent_event_id, p.sent_position, "
    "p.sent_at FROM household_people m "
    "JOIN mailing_pieces p ON p.customer_id = m.customer_id "
    "WHERE (p.campaign_id = %s "
    "OR (p.purpose = %s AND coalesce(p.scheduled_at, p.sent_at) >= %s)) "
    "AND m.household_id IN {ids}"
)
SELECT_MEMBER_RETURNS = (
    "SELECT m.household_id, r.event_id, r.position FROM household_people m "
    "JOIN mailing_pieces p ON p.customer_id = m.customer_id "
    "JOIN mailing_returns r ON r.mailing_id = p.mailing_id "
    "WHERE m.household_id IN {ids} ORDER BY r.position"
)
SELECT_MOVED = (
    "SELECT m.household_id, max(mp.moved_position) FROM household_people m "
    "JOIN mailing_people mp ON mp.customer_id = m.customer_id "
    "WHERE m.household_id IN {ids} GROUP BY m.household_id"
)


def _chunks(items: Sequence[Any], size: int | None = None) -> Iterator[Sequence[Any]]:
    size = size or CHUNK
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _rows(
    cur: Cursor, sql: str, ids: Iterable[str], *before: Any, tuples: bool = False
) -> list[Any]:
    """`sql` has `IN {ids}` where the id list goes; `before` are the params ahead of it.

    Rows are dicts, or tuples (cheaper for large results) with `tuples`.
    """
    rows: list[Any] = []
    for _ in _executed(cur, sql, ids, before):
        rows += cur.tuples() if tuples else cur.fetchall()
    return rows


def _streamed(cur: Cursor, sql: str, ids: Iterable[str], *before: Any) -> Iterator[Any]:
    """`_rows`' tuples one at a time, on PostgreSQL through a server-side cursor:
    a lot's people are never all in memory, neither as rows nor as the query's
    result."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return
    if not cur.sqlite:
        for chunk in _chunks(wanted, PG_CHUNK):
            yield from cur.streamed(_any(sql), (*before, ",".join(chunk)))
        return
    for chunk in _chunks(wanted):
        yield from cur.streamed(_in_list(sql, chunk), (*before, *chunk))


def _executed(
    cur: Cursor, sql: str, ids: Iterable[str], before: Sequence[Any]
) -> Iterator[None]:
    """Runs `sql` over `ids`, yielding after each statement for its rows to be read.

    PostgreSQL gets one array parameter (`= ANY`), which is far cheaper to send
    and plan than thousands of placeholders; SQLite gets IN lists in chunks.
    """
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return
    if not cur.sqlite:
        for chunk in _chunks(wanted, PG_CHUNK):
            cur.execute(_any(sql), (*before, ",".join(chunk)))
            yield
        return
    for chunk in _chunks(wanted):
        cur.execute(_in_list(sql, chunk), (*before, *chunk))
        yield


def _any(sql: str) -> str:
    """PostgreSQL: `sql`'s id list as one text parameter split by the server:
    dumping a Python list of 100,000 strings as an array costs the client more
    than the query."""
    return sql.replace(" IN {ids}", " = ANY(string_to_array(%s, ','))")


def _in_list(sql: str, chunk: Sequence[str]) -> str:
    """SQLite: `sql` with a placeholder for each id of `chunk`."""
    return sql.format(ids="(" + ",".join(["%s"] * len(chunk)) + ")")


def _address(stored: str | None) -> orjson.Fragment | None:
    """An address as its view stores it (compact JSON, keys sorted), passed on as
    it is into the piece's fact and the answer: parsed, each was a dict of about
    740 bytes, only to be written out again (and 9 % of the plan's CPU)."""
    if stored is None or stored == "{}":
        return None
    return orjson.Fragment(stored)


def _cause(event_id: Any, type_: str, position: Any) -> m.Cause:
    return m.Cause(str(event_id), type_, int(position))


# Targets decided together. The first lot is small so that saving starts early;
# each next one is twice as large, as each lot's reads scan whole view tables,
# up to MAX_LOT, which bounds what one lot holds in memory (its people and
# households). Measured on 100,000 targets: 8,000 held 18 MB less than 16,000
# and was no slower; 4,000 was slower and held no less.
LOT = 2000
MAX_LOT = 8000


@dataclass(frozen=True)
class _Plan:
    """What one attempt at a plan decides with."""

    campaign: m.Campaign
    request_id: str
    actor: str | None
    now: datetime


def _homes(cur: Cursor, ids: Sequence[str]) -> Iterator[tuple[int, str]]:
    """(i, household) for each of `ids` in a household, `i` its place in `ids`, in
    that order. Neither the ids nor a dict of them comes back: for 100,000 targets
    those were 30 MB, before the first lot was decided."""
    sql, size = (
        (SELECT_HOMES_SQLITE, CHUNK) if cur.sqlite else (SELECT_HOMES_PG, PG_CHUNK)
    )
    for start in range(0, len(ids), size):
        chunk = ids[start : start + size]
        listed = orjson.dumps(chunk).decode() if cur.sqlite else ",".join(chunk)
        yield from cur.streamed(sql, (start, listed))


def _lots(slots: array[int], homes: Iterable[tuple[int, str]]) -> Iterator[list[int]]:
    """The `slots` (targets' places in the request) in lots of LOT, 2 LOT, 4 LOT...
    up to MAX_LOT, each holding whole households. `homes` gives (i, household)
    for `slots[i]` in a household, in increasing i; the others are alone.

    Households come in the order their first member comes in `slots`, then the
    targets in none. All of it is done before the first lot is asked for, and
    what is kept is integers: the slots in lot order and where each group ends."""
    count = len(slots)
    group_of = array("q", [-1]) * count
    numbers: dict[str, int] = {}
    for i, household in homes:
        group_of[i] = numbers.setdefault(household, len(numbers))
    groups = len(numbers)
    del numbers
    for i in range(count):
        if group_of[i] < 0:
            group_of[i] = groups
            groups += 1
    # A counting sort by group, which keeps the request's order within each.
    ends = array("q", bytes(8 * groups))
    for group in group_of:
        ends[group] += 1
    total = 0
    for group in range(groups):
        total += ends[group]
        ends[group] = total
    order = array("q", bytes(8 * count))
    for i in range(count - 1, -1, -1):
        group = group_of[i]
        ends[group] -= 1
        order[ends[group]] = slots[i]
    for group in range(groups):  # back from starts to ends
        ends[group] = ends[group + 1] if group + 1 < groups else count
    return _cut(order, ends)


def _cut(order: array[int], ends: array[int]) -> Iterator[list[int]]:
    start = 0
    size = LOT
    for end in ends:
        if end - start >= size:
            yield order[start:end].tolist()
            start = end
            size = min(size * 2, MAX_LOT)
    if start < len(order):
        yield order[start:].tolist()


class _PausedCollector:
    """Python's cyclic garbage collector off while any plan runs.

    A large plan holds about a million objects at once (people, households,
    decisions, stored events), none of them in reference cycles; with the
    collector on, its collections walk them again and again, which was a third
    of the plan's CPU. It is back on as soon as no plan runs.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._enable_after = False

    def __enter__(self) -> None:
        with self._lock:
            if self._running == 0:
                self._enable_after = gc.isenabled()
                gc.disable()
            self._running += 1

    def __exit__(self, *_: object) -> None:
        with self._lock:
            self._running -= 1
            if self._running == 0 and self._enable_after:
                gc.enable()


PAUSED_COLLECTOR = _PausedCollector()


class MailingPlanner:
    def __init__(self, platform: Platform, *, catch_up_timeout: float = 30.0) -> None:
        self.platform = platform
        self.catch_up_timeout = catch_up_timeout
        self._lock = threading.Lock()
        needed: list[Projection] = [
            HouseholdsProjection(),
            MailingDecisionsProjection(),
        ]
        runner = platform.runner
        self._runner_has_views = {p.name for p in needed} <= {
            p.name for p in runner.projections
        }
        self._own = ProjectionRunner(platform.app, platform.db, needed)
        self._has_lz4: bool | None = None

    # views ---------------------------------------------------------------------

    def catch_up(self, head: int) -> None:
        """Makes the views this plan reads reach `head` (an event stored before the plan)."""
        if head <= 0:
            return
        deadline = time.monotonic() + self.catch_up_timeout
        runner = self.platform.runner
        follows = self._runner_has_views and runner.is_following
        if follows and runner.wait_for(head, self.catch_up_timeout):
            return
        while True:
            try:
                with self._lock:
                    self._own.catch_up()
            except CATCH_UP_ERRORS as error:  # another runner moved the same view
                log.info("mailing.catch_up_retry", error=type(error).__name__)
            if self._own.min_position() >= head:
                return
            if time.monotonic() > deadline:
                raise DatabaseUnavailable(f"the views did not reach position {head}")
            time.sleep(random.uniform(0.005, 0.03))

    # reads ---------------------------------------------------------------------

    def campaign(self, cur: Cursor, campaign_id: str) -> m.Campaign:
        row = get_campaign(cur, campaign_id)
        if row is None:
            raise NotFound(f"no campaign {campaign_id}")
        return m.Campaign(
            campaign_id=campaign_id,
            channel=row["channel"],
            purpose=row["purpose"],
            one_per_household=bool(row["one_per_household"]),
            cap_max=row["cap_max"],
            cap_days=row["cap_days"],
            launched=_cause(row["event_id"], "CampaignLaunched", row["position"]),
        )

    def decided(
        self, cur: Cursor, campaign_id: str, targets: Iterable[str]
    ) -> dict[str, m.Decision]:
        rows = _rows(
            cur,
            "SELECT * FROM mailing_decisions WHERE campaign_id = %s AND customer_id IN {ids}",
            targets,
            campaign_id,
        )
        return {
            r["customer_id"]: m.Decision(
                customer_id=r["customer_id"],
                outcome=r["outcome"],
                reason=r["reason"],
                household_id=r["household_id"],
                mailing_id=r["mailing_id"],
                address=_address(r["address"]),
                caused_by=tuple(orjson.loads(r["caused_by"])),
            )
            for r in rows
        }

    def people(
        self, cur: Cursor, campaign: m.Campaign, ids: list[str]
    ) -> tuple[dict[str, m.Person], dict[str, list[m.Cause]]]:
        """The known targets among `ids`, and per household the memberships of those
        in it (the events that put them there)."""
        people: dict[str, m.Person] = {}
        joined: dict[str, list[m.Cause]] = {}
        for (
            customer_id,
            household_id,
            address,
            registered_position,
            head_designated_position,
            balance_cents,
            deceased_event_id,
            deceased_position,
            merged_event_id,
            merged_position,
            opted_out_event_id,
            opted_out_position,
            joined_by_event_id,
            joined_by_type,
            joined_position,
        ) in _streamed(cur, SELECT_PEOPLE, ids, campaign.channel, campaign.purpose):
            people[customer_id] = m.Person(
                customer_id=customer_id,
                household_id=household_id,
                address=_address(address),
                deceased=None
                if deceased_event_id is None
                else _cause(deceased_event_id, "CustomerDeceased", deceased_position),
                merged=None
                if merged_event_id is None
                else _cause(merged_event_id, "CustomersMerged", merged_position),
                opted_out=None
                if opted_out_event_id is None
                else _cause(opted_out_event_id, "ConsentChanged", opted_out_position),
                registered_position=int(registered_position or 0),
                head_designated_position=head_designated_position,
                balance_cents=int(balance_cents or 0),
            )
            if household_id is not None and joined_by_event_id is not None:
                joined.setdefault(household_id, []).append(
                    _cause(joined_by_event_id, joined_by_type, joined_position)
                )
        return people, joined

    def households(
        self,
        cur: Cursor,
        campaign: m.Campaign,
        joined: dict[str, list[m.Cause]],
        people: Iterable[m.Person],
        now: datetime,
    ) -> dict[str, m.Household]:
        ids = {p.household_id for p in people if p.household_id}
        address = dict(_rows(cur, SELECT_HOUSEHOLDS, ids, tuples=True))
        piece: dict[str, m.Cause] = {}
        if campaign.one_per_household:
            for household, event_id, position in _rows(
                cur, SELECT_SCHEDULED, ids, campaign.campaign_id, tuples=True
            ):
                piece[household] = _cause(event_id, "MailingScheduled", position)
        cutoff = (
            None
            if campaign.cap_days is None
            else (now - timedelta(days=campaign.cap_days)).isoformat()
        )
        recent: dict[str, list[m.Cause]] = {}
        for r in _rows(
            cur,
            SELECT_MEMBER_PIECES,
            ids,
            campaign.campaign_id,
            campaign.purpose,
            cutoff,
        ):
            household = r["household_id"]
            first = (
                _cause(
                    r["scheduled_event_id"], "MailingScheduled", r["scheduled_position"]
                )
                if r["scheduled_event_id"]
                else _cause(r["sent_event_id"], "MailingSent", r["sent_position"])
            )
            if r["campaign_id"] == campaign.campaign_id and campaign.one_per_household:
                piece.setdefault(household, first)
            when = r["scheduled_at"] or r["sent_at"]
            if (
                cutoff is not None
                and r["purpose"] == campaign.purpose
                and when >= cutoff
            ):
                recent.setdefault(household, []).append(first)
        returns = _rows(cur, SELECT_MEMBER_RETURNS, ids, tuples=True)
        # A return no longer counts once a member of the household has moved.
        moved = dict(_rows(cur, SELECT_MOVED, {h for h, _, _ in returns}, tuples=True))
        returned: dict[str, m.Cause] = {}
        for household, event_id, position in returns:
            if int(position) > int(moved.get(household) or 0):
                returned[household] = _cause(event_id, "MailingReturned", position)
        return {
            h: m.Household(
                household_id=h,
                address=_address(address.get(h)),
                joined=tuple(sorted(joined.get(h, []), key=lambda c: c.position)),
                piece=piece.get(h),
                returned=returned.get(h),
                recent_pieces=tuple(
                    sorted(recent.get(h, []), key=lambda c: c.position)
                ),
            )
            for h in ids
        }

    # the plan ------------------------------------------------------------------

    def plan(
        self,
        campaign_id: str,
        customer_ids: Sequence[str],
        request_id: str,
        actor: str | None = None,
    ) -> dict[str, Any]:
        """`plan_json`'s answer, parsed."""
        answer: dict[str, Any] = orjson.loads(
            self.plan_json(campaign_id, customer_ids, request_id, actor)
        )
        return answer

    def plan_json(
        self,
        campaign_id: str,
        customer_ids: Sequence[str],
        request_id: str,
        actor: str | None = None,
    ) -> bytes:
        """`plan_answer`'s JSON, whole."""
        answer = self.plan_answer(campaign_id, customer_ids, request_id, actor)
        try:
            return joined(answer)
        finally:
            answer.close()

    def plan_answer(
        self,
        campaign_id: str,
        customer_ids: Sequence[str],
        request_id: str,
        actor: str | None = None,
    ) -> PublishedAnswer:
        """Decides every target once; the same request_id always gets the same answer,
        as the JSON it is published in (close it when it has been read)."""
        stored = self._stored_answer(request_id, campaign_id)
        if stored is not None:
            return StoredAnswer(stored)
        targets = list(dict.fromkeys(customer_ids))
        try:
            with PAUSED_COLLECTOR:
                answer = self._decide(campaign_id, targets, request_id, actor)
            return self._keep_answer(request_id, campaign_id, answer)
        finally:
            if len(targets) >= RELEASE_AFTER:
                release_free_memory()

    def _decide(
        self, campaign_id: str, targets: list[str], request_id: str, actor: str | None
    ) -> FileAnswer:
        """Every target's decision, and the log position that has them all, as the
        answer's JSON."""
        attempt = 0
        while True:
            attempt += 1
            head = self.platform.app.recorder.max_notification_id() or 0
            self.catch_up(head)
            now = datetime.now(UTC)
            answer = Answer(len(targets))
            try:
                last = self._attempt(
                    campaign_id, targets, request_id, actor, now, answer
                )
            except IntegrityError:
                answer.discard()
                # Another plan took a slot or decided a target first: look again.
                if attempt == MAX_ATTEMPTS:
                    raise
                log.info("mailing.plan_retry", attempt=attempt, campaign_id=campaign_id)
                time.sleep(random.uniform(0.0, 0.02 * attempt))
                continue
            except BaseException:
                answer.discard()
                raise
            return answer.finish(last or head)

    def _attempt(
        self,
        campaign_id: str,
        targets: list[str],
        request_id: str,
        actor: str | None,
        now: datetime,
        answer: Answer,
    ) -> int:
        """One attempt at deciding every target into `answer`; the last position saved."""
        with self.platform.db.transaction() as cur:
            campaign = self.campaign(cur, campaign_id)
            decided = self.decided(cur, campaign_id, targets)
            undecided = array("q")
            for slot, target in enumerate(targets):
                decision = decided.get(target)
                if decision is None:
                    undecided.append(slot)
                else:
                    answer.add(decision, slot)
            del decided
            lots = _lots(undecided, _homes(cur, [targets[s] for s in undecided]))
        del undecided
        plan = _Plan(campaign, request_id, actor, now)
        return self._record(plan, targets, lots, answer)

    def _record(
        self,
        plan: _Plan,
        targets: Sequence[str],
        lots: Iterable[list[int]],
        answer: Answer,
    ) -> int:
        """Decides the targets a lot at a time (whole households) into `answer`,
        saving each lot's facts while reading and deciding the next. Returns the
        last position saved.

        A target suppressed because its household got this plan's piece cites
        that piece's stored event and position: those suppressions wait for
        their lot's pieces to be saved, and are saved after the next lot's
        pieces. Everything a lot decided is written into the answer as it goes,
        so a plan's memory grows with its answer, not with its decisions."""
        campaign = plan.campaign
        facts = DecisionFacts(
            self.platform.app.mapper,
            campaign,
            plan.request_id,
            plan.actor,
            plan.now.isoformat(),
        )
        recorder = self.platform.app.recorder
        piece_topic = get_topic(m.MailingScheduled)
        last = 0

        def save_batch(batch: list[Fact]) -> dict[str, int]:
            """Saves on the saving thread; keeps only the pieces' positions."""
            nonlocal last
            saved = save(recorder, batch)
            last = max([last, *saved.values()])
            return {
                event_id: saved[event_id]
                for stored, event_id, _ in batch
                if stored.topic == piece_topic
            }

        def cite(waiting: list[tuple[m.Decision, int]], through: int) -> None:
            """Saves `waiting` (decisions and their slots) once the first `through`
            saves, which hold their pieces, are done."""
            positions = saves.positions(through)
            cited = []
            for d, slot in waiting:
                d = _citing(d, facts.piece_events[str(d.mailing_id)], positions)
                answer.add(d, slot)
                cited.append(d)
            for batch in facts.batches(cited):
                saves.submit(batch)

        with OrderedSaves(save_batch) as saves:
            earlier: tuple[list[tuple[m.Decision, int]], int] | None = None
            for lot in lots:
                waiting: list[tuple[m.Decision, int]] = []
                decided = self._decide_lot(plan, targets, lot, answer, waiting)
                for batch in facts.batches(decided):
                    saves.submit(batch)
                if earlier is not None:
                    cite(*earlier)
                earlier = (waiting, saves.submitted)
            if earlier is not None:
                cite(*earlier)
            saves.positions()
        return last

    def _decide_lot(
        self,
        plan: _Plan,
        targets: Sequence[str],
        slots: list[int],
        answer: Answer,
        waiting: list[tuple[m.Decision, int]],
    ) -> list[m.Decision]:
        """The decisions of the targets at `slots` to save now (also written into
        `answer`); those that must cite a piece of this plan go to `waiting`
        instead, with their slots."""
        campaign = plan.campaign
        lot = [targets[slot] for slot in slots]
        with self.platform.db.transaction() as cur:
            people, joined = self.people(cur, campaign, lot)
            households = self.households(
                cur, campaign, joined, people.values(), plan.now
            )
        now: list[m.Decision] = []
        # One decision per target, in the lot's order (targets are distinct).
        decisions = m.plan(campaign, lot, people, households, {})
        for decision, slot in zip(decisions, slots, strict=True):
            if (
                decision.outcome == m.SUPPRESSED
                and decision.mailing_id is not None
                and not decision.caused_by
            ):
                waiting.append((decision, slot))  # suppressed by the household's piece
            else:
                answer.add(decision, slot)
                now.append(decision)
        return now

    # answers -------------------------------------------------------------------

    def _stored_answer(self, request_id: str, campaign_id: str) -> bytes | None:
        """The answer kept for `request_id`, as its JSON bytes."""
        with self.platform.db.large_transaction() as cur:
            as_bytes = (
                "CAST(response AS BLOB)"
                if cur.sqlite
                else "convert_to(response, 'UTF8')"
            )
            # Binary: as text, bytea comes as hex, twice the answer's size.
            row = cur.execute(
                f"SELECT campaign_id, {as_bytes} AS response "
                "FROM mailing_plan_requests WHERE request_id = %s",
                (request_id,),
                binary=True,
            ).fetchone()
        if row is None:
            return None
        if row["campaign_id"] != campaign_id:
            raise Conflict(
                f"request {request_id} was a plan for campaign {row['campaign_id']}",
                code="request_id_conflict",
                field="request_id",
            )
        return bytes(row["response"])

    def _keep_answer(
        self, request_id: str, campaign_id: str, answer: FileAnswer
    ) -> PublishedAnswer:
        """The first answer stored for a request_id wins (two copies may race here).

        The answer goes to the server as the bytes it was built in: decoding tens
        of MB of mostly Chinese JSON into a Python str would take twice its size
        again."""
        try:
            with self.platform.db.large_transaction() as cur:
                if self._lz4(cur):
                    # A large plan's answer is tens of MB: lz4 stores it in a quarter
                    # of the time pglz, the default, takes (reads decompress either).
                    cur.execute("SET LOCAL default_toast_compression = lz4")
                now = datetime.now(UTC).isoformat()
                if cur.sqlite:
                    kept = cur.execute(
                        "INSERT INTO mailing_plan_requests "
                        "(request_id, campaign_id, response, created_at) "
                        "VALUES (%s, %s, CAST(%s AS TEXT), %s) "
                        "ON CONFLICT (request_id) DO NOTHING RETURNING request_id",
                        (request_id, campaign_id, joined(answer), now),
                    ).fetchone()
                else:
                    kept = _insert_copied(cur, request_id, campaign_id, answer, now)
        except BaseException:
            answer.close()
            raise
        if kept is not None:
            return answer
        answer.close()
        stored = self._stored_answer(request_id, campaign_id)
        assert stored is not None
        return StoredAnswer(stored)

    def _lz4(self, cur: Cursor) -> bool:
        """Whether the server can compress stored values with lz4."""
        if self._has_lz4 is None:
            row = None
            if not cur.sqlite:
                row = cur.execute(
                    "SELECT 'lz4' = ANY(enumvals) AS lz4 FROM pg_settings "
                    "WHERE name = 'default_toast_compression'"
                ).fetchone()
            self._has_lz4 = row is not None and bool(row["lz4"])
        return self._has_lz4


def _insert_copied(
    cur: Cursor, request_id: str, campaign_id: str, answer: FileAnswer, now: str
) -> Any:
    """Inserts the answer sent in pieces by COPY: as one parameter, it was copied
    twice on its way out (psycopg, then libpq), 57 MB for a 25 MB answer, and
    libpq kept its buffer at that size.

    CSV with a quote character JSON never holds unescaped (0x01) takes the
    bytes as they are."""
    cur.execute("CREATE TEMP TABLE plan_answer (response text) ON COMMIT DROP")
    cur.copy_in(
        "COPY plan_answer (response) FROM STDIN "
        "WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')",
        itertools.chain([b"\x01"], answer.pieces(), [b"\x01\n"]),
    )
    return cur.execute(
        "INSERT INTO mailing_plan_requests (request_id, campaign_id, response, created_at) "
        "SELECT %s, %s, response, %s FROM plan_answer "
        "ON CONFLICT (request_id) DO NOTHING RETURNING request_id",
        (request_id, campaign_id, now),
    ).fetchone()


def _citing(d: m.Decision, event_id: str, positions: dict[str, int]) -> m.Decision:
    """`d` with the stored piece that suppressed it as its cause."""
    cause = m.Cause(event_id, "MailingScheduled", positions[event_id])
    return d._replace(caused_by=(cause.as_json(),))


def planner_of(platform: Platform) -> MailingPlanner:
    """One planner per platform (it owns the catch-up runner for its views)."""
    planner = platform.extras.get("mailing_planner")
    if not isinstance(planner, MailingPlanner):
        planner = MailingPlanner(platform)
        platform.extras["mailing_planner"] = planner
    return planner
