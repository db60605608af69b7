"""Topic patterns with AMQP-style wildcards, and a trie that matches many patterns at once.

A *topic* is a message type: dot-separated segments of ``[A-Za-z0-9_-]+``, for example
``workflow.node.started``. A *pattern* is a topic whose segments may also be wildcards:

``*``
    matches **exactly one** segment.
``#``
    matches **zero or more** segments.

Wildcards must be whole segments (``work*`` is not a wildcard, it is invalid). Matching is
case-sensitive. Examples (pattern / topic / match?):

======================  ===========================  =======
``workflow.*``          ``workflow.started``          yes
``workflow.*``          ``workflow.node.started``     no
``workflow.#``          ``workflow``                  yes (``#`` may be empty)
``workflow.#``          ``workflow.node.started``     yes
``*.node.*``            ``workflow.node.started``     yes
``#.started``           ``started``                   yes
``#``                   anything                      yes
``a.#.z``               ``a.z`` / ``a.b.c.z``         yes / yes
======================  ===========================  =======

:class:`TopicTrie` stores any number of ``(pattern, item)`` pairs in a trie over segments.
``match(topic)`` walks it once per topic -- cost grows with the topic's length and the number
of wildcard branches, not with the number of patterns -- and caches the answer per topic until
the next change, so delivering to 1,000 subscriptions costs one dict lookup to find them.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from typing import Final, Generic, TypeVar

from symphony.commons.errors import ValidationError

__all__ = ["TopicTrie", "split_pattern", "topic_matches", "validate_pattern"]

T = TypeVar("T", bound=Hashable)

_SEGMENT_RE: Final = re.compile(r"[A-Za-z0-9_\-]+|\*|#")
_MAX_PATTERN_LENGTH: Final = 255
_CACHE_MAX: Final = 4096


def split_pattern(pattern: str) -> tuple[str, ...]:
    """Check ``pattern`` and return its segments; ``ValidationError(bus.bad_pattern)`` if invalid."""
    if not isinstance(pattern, str) or not pattern or len(pattern) > _MAX_PATTERN_LENGTH:
        raise ValidationError(
            f"bad topic pattern {pattern!r}: a non-empty string of at most {_MAX_PATTERN_LENGTH} characters",
            code="bus.bad_pattern",
            context={"pattern": repr(pattern)},
        )
    segments = tuple(pattern.split("."))
    for segment in segments:
        if _SEGMENT_RE.fullmatch(segment) is None:
            raise ValidationError(
                f"bad topic pattern {pattern!r}: segment {segment!r} must be [A-Za-z0-9_-]+, '*' or '#'",
                code="bus.bad_pattern",
                context={"pattern": pattern, "segment": segment},
                hint="wildcards are whole segments: 'a.*.c' or 'a.#', never 'a*'",
            )
    return segments


def validate_pattern(pattern: str) -> str:
    """Return ``pattern`` if it is a valid topic pattern, else raise ``ValidationError``."""
    split_pattern(pattern)
    return pattern


def _match_segments(pat: tuple[str, ...], i: int, top: list[str], j: int) -> bool:
    while i < len(pat):
        seg = pat[i]
        if seg == "#":
            # '#' swallows zero or more segments: try every split point.
            return any(_match_segments(pat, i + 1, top, k) for k in range(j, len(top) + 1))
        if j >= len(top):
            return False
        if seg != "*" and seg != top[j]:
            return False
        i += 1
        j += 1
    return j == len(top)


def topic_matches(pattern: str, topic: str) -> bool:
    """Whether ``topic`` matches ``pattern`` (the reference semantics; see the module docs)."""
    return _match_segments(split_pattern(pattern), 0, topic.split("."), 0)


class _Node(Generic[T]):
    # The wildcards "*" and "#" are children like any segment (no topic segment is one of them).
    __slots__ = ("children", "items")

    def __init__(self) -> None:
        self.children: dict[str, _Node[T]] = {}
        self.items: dict[T, None] = {}  # insertion-ordered set

    def empty(self) -> bool:
        return not (self.children or self.items)


class TopicTrie(Generic[T]):
    """Patterns -> items, matched against topics through a trie over segments.

    >>> trie: TopicTrie[str] = TopicTrie()
    >>> trie.add("workflow.#", "all-workflow")
    >>> trie.add("*.node.started", "starts")
    >>> sorted(trie.match("workflow.node.started"))
    ['all-workflow', 'starts']

    Items must be hashable; one item may be added under several patterns. ``match`` returns
    each matching item once.
    """

    __slots__ = ("_cache", "_count", "_root")

    def __init__(self) -> None:
        self._root: _Node[T] = _Node()
        self._cache: dict[str, tuple[T, ...]] = {}
        self._count = 0

    def add(self, pattern: str, item: T) -> None:
        """Add ``item`` under ``pattern`` (validated; ``ValidationError`` if bad)."""
        node = self._root
        for seg in split_pattern(pattern):
            child = node.children.get(seg)
            if child is None:
                child = node.children[seg] = _Node()
            node = child
        if item not in node.items:
            node.items[item] = None
            self._count += 1
        self._cache.clear()

    def remove(self, pattern: str, item: T) -> bool:
        """Remove ``item`` from ``pattern``; return whether it was there. Prunes empty nodes."""
        path: list[tuple[_Node[T], str]] = []
        node: _Node[T] | None = self._root
        for seg in split_pattern(pattern):
            assert node is not None
            path.append((node, seg))
            node = node.children.get(seg)
            if node is None:
                return False
        assert node is not None
        if item not in node.items:
            return False
        del node.items[item]
        self._count -= 1
        self._cache.clear()
        # Prune now-empty nodes bottom-up so the trie does not grow without bound.
        for parent, seg in reversed(path):
            if not node.empty():
                break
            del parent.children[seg]
            node = parent
        return True

    def match(self, topic: str) -> tuple[T, ...]:
        """Every item whose pattern matches ``topic``, each once (cached until the next change)."""
        cached = self._cache.get(topic)
        if cached is not None:
            return cached
        out: dict[T, None] = {}
        self._walk(self._root, topic.split("."), 0, out)
        result = tuple(out)
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[topic] = result
        return result

    def _walk(self, node: _Node[T], segs: list[str], i: int, out: dict[T, None]) -> None:
        n = len(segs)
        while True:
            children = node.children
            if "#" in children:
                # '#' consumes segs[i:k] for every k (zero or more segments).
                for k in range(i, n + 1):
                    self._walk(children["#"], segs, k, out)
            if i == n:
                if node.items:
                    out.update(node.items)
                return
            if "*" in children:
                self._walk(children["*"], segs, i + 1, out)
            child = children.get(segs[i])
            if child is None:
                return
            node = child
            i += 1

    def __len__(self) -> int:
        return self._count

    def __repr__(self) -> str:
        return f"TopicTrie({self._count} entries)"
