"""Wildcard semantics (``*`` one segment, ``#`` zero or more) and the trie matcher."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from symphony.bus._topics import TopicTrie, split_pattern, topic_matches, validate_pattern
from symphony.commons.errors import ValidationError

TABLE = [
    # pattern, topic, matches
    ("workflow.node.started", "workflow.node.started", True),
    ("workflow.node.started", "workflow.node.finished", False),
    ("workflow.node.started", "workflow.node", False),
    ("workflow.*", "workflow.started", True),
    ("workflow.*", "workflow.node.started", False),
    ("workflow.*", "workflow", False),
    ("*", "a", True),
    ("*", "a.b", False),
    ("*.*", "a.b", True),
    ("*.*", "a", False),
    ("workflow.#", "workflow", True),
    ("workflow.#", "workflow.node", True),
    ("workflow.#", "workflow.node.started", True),
    ("workflow.#", "workflows.node", False),
    ("#", "a", True),
    ("#", "a.b.c.d", True),
    ("#.started", "started", True),
    ("#.started", "workflow.node.started", True),
    ("#.started", "workflow.started.not", False),
    ("*.node.*", "workflow.node.started", True),
    ("*.node.*", "node.started", False),
    ("a.#.z", "a.z", True),
    ("a.#.z", "a.b.z", True),
    ("a.#.z", "a.b.c.z", True),
    ("a.#.z", "a.b.c", False),
    ("a.*.#", "a", False),
    ("a.*.#", "a.b", True),
    ("a.*.#", "a.b.c.d", True),
    ("#.#", "a", True),
    ("#.*", "a", True),
    ("#.*", "a.b.c", True),
    ("*.#.*", "a", False),
    ("*.#.*", "a.b", True),
    ("a.#.b.#.c", "a.b.c", True),
    ("a.#.b.#.c", "a.x.b.y.z.c", True),
    ("a.#.b.#.c", "a.c.b", False),
    ("Workflow.*", "workflow.x", False),
]


@pytest.mark.parametrize(("pattern", "topic", "expected"), TABLE)
def test_wildcard_table(pattern: str, topic: str, expected: bool) -> None:
    assert topic_matches(pattern, topic) is expected
    trie: TopicTrie[str] = TopicTrie()
    trie.add(pattern, "x")
    assert (trie.match(topic) == ("x",)) is expected


@pytest.mark.parametrize(
    "bad", ["", "a..b", ".a", "a.", "a*", "a.b#", "a.*b", "a b", "é", "x" * 256, None, 3]
)
def test_bad_patterns(bad: object) -> None:
    with pytest.raises(ValidationError) as info:
        validate_pattern(bad)  # type: ignore[arg-type]
    assert info.value.code == "bus.bad_pattern"


def test_split_pattern() -> None:
    assert split_pattern("a.*.#") == ("a", "*", "#")


def _segments_match(pat: list[str], top: list[str]) -> bool:
    """An independent, plainly recursive statement of the semantics (the oracle)."""
    if not pat:
        return not top
    head, rest = pat[0], pat[1:]
    if head == "#":
        return any(_segments_match(rest, top[k:]) for k in range(len(top) + 1))
    if not top:
        return False
    return (head == "*" or head == top[0]) and _segments_match(rest, top[1:])


SEG = st.sampled_from(["a", "b", "c"])
PAT_SEG = st.sampled_from(["a", "b", "c", "*", "#"])
PATTERNS = st.lists(PAT_SEG, min_size=1, max_size=5).map(".".join)
TOPICS = st.lists(SEG, min_size=1, max_size=6).map(".".join)


@settings(max_examples=250, deadline=None)
@given(st.lists(PATTERNS, min_size=1, max_size=12), st.lists(TOPICS, min_size=1, max_size=8))
def test_trie_agrees_with_reference(patterns: list[str], topics: list[str]) -> None:
    trie: TopicTrie[int] = TopicTrie()
    for index, pattern in enumerate(patterns):
        trie.add(pattern, index)
    for topic in topics:
        expected = {i for i, p in enumerate(patterns) if _segments_match(p.split("."), topic.split("."))}
        assert set(trie.match(topic)) == expected
        assert len(trie.match(topic)) == len(expected)  # each item once, even with '#.#'
        assert {i for i, p in enumerate(patterns) if topic_matches(p, topic)} == expected


def test_remove_prunes_and_invalidates_cache() -> None:
    trie: TopicTrie[str] = TopicTrie()
    trie.add("a.*", "one")
    trie.add("a.#", "two")
    trie.add("a.*", "three")
    assert set(trie.match("a.b")) == {"one", "two", "three"}
    assert trie.remove("a.*", "one")
    assert not trie.remove("a.*", "one")
    assert not trie.remove("x.y", "one")
    assert set(trie.match("a.b")) == {"two", "three"}
    assert trie.remove("a.*", "three") and trie.remove("a.#", "two")
    assert trie.match("a.b") == ()
    assert len(trie) == 0
    assert trie._root.empty()  # fully pruned


def test_same_item_under_two_patterns_is_matched_once() -> None:
    trie: TopicTrie[str] = TopicTrie()
    trie.add("a.#", "x")
    trie.add("a.b", "x")
    trie.add("a.b", "x")  # idempotent
    assert trie.match("a.b") == ("x",)
    assert len(trie) == 2
    assert trie.remove("a.b", "x") and trie.match("a.b") == ("x",)  # still under a.#


def test_many_patterns_cached_lookup() -> None:
    trie: TopicTrie[int] = TopicTrie()
    for i in range(1000):
        trie.add(f"load.g{i % 10}.#" if i % 2 else f"load.*.e{i % 7}", i)
    first = trie.match("load.g3.e3")
    assert first is trie.match("load.g3.e3")  # cached
    expected = {i for i in range(1000) if (i % 2 and i % 10 == 3) or (not i % 2 and i % 7 == 3)}
    assert set(first) == expected
