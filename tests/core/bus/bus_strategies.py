"""Hypothesis strategies and helpers shared by the bus tests."""

from __future__ import annotations

import math
import string
from typing import Any

from hypothesis import strategies as st

from symphony.bus._message import KINDS, Message

MSGPACK_INT = st.integers(min_value=-(2**63), max_value=2**64 - 1)
FINITE_FLOAT = st.floats(allow_nan=False, allow_infinity=False)

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    MSGPACK_INT,
    FINITE_FLOAT,
    st.text(),  # any unicode (no lone surrogates)
)


def payloads(*, binary: bool = False, max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """JSON-compatible payloads (plus bytes when ``binary``), nested lists and str-keyed dicts."""
    leaves = SCALARS | st.binary(max_size=64) if binary else SCALARS
    # Large values built cheaply (drawing thousands of characters one by one is slow).
    big = st.one_of(
        st.builds(lambda s, n: s * n, st.text(min_size=1, max_size=8), st.integers(500, 3000)),
        st.builds(
            lambda lo, n: list(range(lo, lo + n)),
            MSGPACK_INT.filter(lambda v: v < 2**63),
            st.integers(200, 2000),
        ),
        st.builds(
            lambda k, n: {f"{k}{i}": i * 0.5 for i in range(n)}, st.text(max_size=4), st.integers(50, 500)
        ),
    )
    return st.one_of(
        st.recursive(
            leaves,
            lambda children: (
                st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=12), children, max_size=6)
            ),
            max_leaves=max_leaves,
        ),
        big,
        st.just({}),
        st.just([]),
        st.just(""),
    )


SEGMENT = st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=1, max_size=10)
TYPES = st.lists(SEGMENT, min_size=1, max_size=5).map(".".join)
SHORT_TEXT = st.text(min_size=1, max_size=16)


@st.composite
def messages(draw: st.DrawFn, *, binary: bool = False) -> Message:
    """Any valid message."""
    return Message(
        draw(TYPES),
        draw(payloads(binary=binary)),
        id=draw(SHORT_TEXT),
        kind=draw(st.sampled_from(sorted(KINDS))),
        version=draw(st.integers(min_value=1, max_value=2**31 - 1)),
        timestamp=draw(FINITE_FLOAT),
        correlation_id=draw(st.none() | SHORT_TEXT),
        reply_to=draw(st.none() | SHORT_TEXT),
        headers=draw(st.dictionaries(st.text(max_size=8), st.text(max_size=12), max_size=3)),
    )


def strict_equal(a: Any, b: Any) -> bool:
    """Equality that also compares types (``True != 1``, ``1.0 != 1``) and treats -0.0 apart."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if isinstance(a, list):
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(strict_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def same_message(a: Message, b: Message) -> bool:
    """Field-by-field strict comparison of two messages."""
    return (
        a.id == b.id
        and a.type == b.type
        and a.kind == b.kind
        and a.version == b.version
        and strict_equal(a.timestamp, b.timestamp)
        and a.correlation_id == b.correlation_id
        and a.reply_to == b.reply_to
        and a.headers == b.headers
        and strict_equal(a.payload, b.payload)
    )
