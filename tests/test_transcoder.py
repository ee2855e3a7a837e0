"""The orjson transcoder writes exactly what the library's json transcoder writes."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

from eventsourcing.application import Application
from eventsourcing.persistence import JSONTranscoder
from hypothesis import given
from hypothesis import strategies as st

from api.store.transcoder import OrjsonTranscoder
from domain.customer import CustomerRegistered
from tests.factories import registered_fact


def transcoders() -> tuple[JSONTranscoder, OrjsonTranscoder]:
    plain, fast = JSONTranscoder(), OrjsonTranscoder()
    app = Application()
    app.register_transcodings(plain)
    app.register_transcodings(fast)
    return plain, fast


def test_same_bytes_and_same_values_both_ways() -> None:
    plain, fast = transcoders()
    state = {
        "timestamp": datetime(2025, 3, 1, 2, 0, tzinfo=UTC),
        "nested": [
            {"when": datetime(2024, 1, 1, tzinfo=UTC), "amount": Decimal("12.30")}
        ],
        "event_id": str(uuid.uuid4()),
        "data": {
            "name": "王芳 👩‍👧",
            "address": {"line": "北京市朝阳区建国路88号"},
            "granted": True,
            "n": 3,
            "none": None,
        },
    }
    assert fast.encode(state) == plain.encode(state)
    encoded = plain.encode(state)
    assert fast.decode(encoded) == plain.decode(encoded) == state


def test_stored_facts_round_trip() -> None:
    _plain, fast = transcoders()
    fact = registered_fact()
    state = dict(vars(fact))
    assert fast.decode(fast.encode(state)) == state


def test_fact_mapper_writes_the_library_mappers_bytes() -> None:
    from eventsourcing.persistence import Mapper

    from api.store.mapper import FactMapper
    from domain.account import Account, BalanceReported

    plain, fast = transcoders()
    library, ours = Mapper(transcoder=plain), FactMapper(transcoder=fast)
    when = datetime.now(UTC)
    envelope = {
        "event_id": str(uuid.uuid4()),
        "occurred_at": "2025-03-01T10:00:00+08:00",
        "source": "branch:BJ001",
        "actor": "officer:王芳",
    }
    first = CustomerRegistered(
        originator_id=uuid.uuid4(),
        originator_version=1,
        timestamp=when,
        originator_topic="crm.aggregate.Customer",
        data={
            "customer_id": "x",
            "name": "张伟",
            "address": {"line": "上海市黄浦区南京东路1号"},
        },
        **envelope,
    )
    later = BalanceReported(
        originator_id=uuid.uuid4(),
        originator_version=7,
        timestamp=when,
        data={"account_id": "y", "balance": "1234.50", "as_of": "2025-02-28"},
        **{**envelope, "actor": None},
    )
    not_a_fact = Account.Created(
        originator_id=uuid.uuid4(),
        originator_version=1,
        timestamp=when,
        originator_topic="crm.aggregate.Account",
    )
    for event in [first, later, not_a_fact]:
        expected = library.to_stored_event(event)
        assert ours.to_stored_event(event) == expected
        assert vars(ours.to_domain_event(expected)) == vars(event)


_plain_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["_type_", "_data_", "a", "数据"]), inner, max_size=3
        )
    ),
    max_leaves=8,
)
_transcoded = st.sampled_from(
    [datetime(2025, 3, 1, 2, 0, tzinfo=UTC), Decimal("12.30"), uuid.UUID(int=7)]
)


@given(
    st.dictionaries(
        st.sampled_from(["timestamp", "data", "event_id", "_type_"]),
        _plain_json | _transcoded | st.dictionaries(st.text(max_size=3), _transcoded),
        max_size=4,
    )
)
def test_decoding_the_top_level_alone_gives_what_the_library_decodes(
    state: dict[str, object],
) -> None:
    """The shortcut for one transcoded value at the top (a stored fact's
    timestamp) decodes as the full walk does, wherever the values are."""
    plain, fast = transcoders()
    encoded = plain.encode(state)
    assert _outcome(fast.decode, encoded) == _outcome(plain.decode, encoded)


def _outcome(decode: Callable[[bytes], object], encoded: bytes) -> object:
    """What `decode` returns, or the type of what it raises (an unknown
    `_type_` is refused by both)."""
    try:
        return decode(encoded)
    except Exception as error:
        return type(error)
