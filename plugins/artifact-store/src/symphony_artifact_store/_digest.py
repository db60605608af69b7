"""Digests (``<algorithm>:<hex>:<size>``), the hash functions behind them, and name rules.

Every parser here raises :class:`~symphony.commons.errors.ValidationError` on bad input and
nothing else; the hypothesis tests hold it to that.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Protocol

from symphony.commons.errors import ValidationError

__all__ = [
    "ALGORITHMS",
    "Digest",
    "Hasher",
    "check_media_type",
    "check_ref_name",
    "check_tag",
    "hash_bytes",
    "new_hasher",
]

ALGORITHMS: dict[str, int] = {"blake3": 64, "sha256": 64}
"""Supported hash algorithms and the length of their hex digest."""

MAX_SIZE = (1 << 63) - 1

_DIGEST_RE = re.compile(r"(blake3|sha256):([0-9a-f]{64}):(0|[1-9][0-9]{0,18})")
_REF_SEGMENT = r"[A-Za-z0-9_][A-Za-z0-9._-]*"
_REF_RE = re.compile(rf"{_REF_SEGMENT}(?:/{_REF_SEGMENT})*")
_MEDIA_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+*-]{0,126}")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


class Hasher(Protocol):
    """What :func:`new_hasher` returns: ``update`` with bytes, then ``hexdigest``."""

    def update(self, data: bytes | bytearray | memoryview, /) -> Any: ...

    def hexdigest(self) -> str: ...


def new_hasher(algorithm: str) -> Hasher:
    """A fresh incremental hasher for ``algorithm`` (``blake3`` or ``sha256``).

    Raises:
        ValidationError: ``artifact.digest.unknown_algorithm``.
    """
    if algorithm == "blake3":
        import blake3

        hasher: Hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
        return hasher
    if algorithm == "sha256":
        return hashlib.sha256()
    raise _unknown_algorithm(algorithm)


def hash_bytes(algorithm: str, data: bytes | bytearray | memoryview) -> Digest:
    """The digest of ``data`` under ``algorithm``."""
    hasher = new_hasher(algorithm)
    hasher.update(data)
    return Digest(algorithm, hasher.hexdigest(), len(data))


def _unknown_algorithm(algorithm: object) -> ValidationError:
    return ValidationError(
        f"unknown digest algorithm {algorithm!r}",
        code="artifact.digest.unknown_algorithm",
        context={"field": "algorithm", "value": repr(algorithm)[:100], "known": sorted(ALGORITHMS)},
        hint="use blake3 or sha256",
    )


class Digest:
    """The address of an artifact: hash algorithm, lowercase hex hash and size in bytes.

    Its string form names the algorithm, ``blake3:<64 hex>:<size>``; :meth:`parse` reads it
    back. Digests are immutable, hashable and compare by value.

    >>> d = Digest.parse("sha256:" + "0" * 64 + ":12")
    >>> (d.algorithm, d.size, str(d) == "sha256:" + "0" * 64 + ":12")
    ('sha256', 12, True)
    """

    __slots__ = ("_text", "algorithm", "hex", "size")

    _text: str
    algorithm: str
    hex: str
    size: int

    def __init__(self, algorithm: str, hex: str, size: int) -> None:
        if algorithm not in ALGORITHMS:
            raise _unknown_algorithm(algorithm)
        text = f"{algorithm}:{hex}:{size}"
        if (
            not isinstance(size, int)
            or isinstance(size, bool)
            or size > MAX_SIZE
            or _DIGEST_RE.fullmatch(text) is None
        ):
            raise _malformed(text)
        self._set(algorithm, hex, size, text)

    def _set(self, algorithm: str, hex: str, size: int, text: str) -> None:
        object.__setattr__(self, "algorithm", algorithm)
        object.__setattr__(self, "hex", hex)
        object.__setattr__(self, "size", size)
        object.__setattr__(self, "_text", text)

    @classmethod
    def _trusted(cls, text: str) -> Digest:
        """Build from a canonical string read back from our own index (no checks)."""
        algorithm, hex, size = text.split(":")
        digest = cls.__new__(cls)
        digest._set(algorithm, hex, int(size), text)
        return digest

    @classmethod
    def parse(cls, value: str | Digest) -> Digest:
        """Read ``<algorithm>:<hex>:<size>`` (a :class:`Digest` is returned as is).

        Raises:
            ValidationError: ``artifact.digest.unknown_algorithm`` or ``artifact.digest.malformed``
            with the offending ``value`` in ``context``.
        """
        if isinstance(value, Digest):
            return value
        if not isinstance(value, str):
            raise ValidationError(
                f"a digest must be a string, not {type(value).__name__}",
                code="artifact.digest.malformed",
                context={"field": "digest", "value": repr(value)[:100]},
            )
        match = _DIGEST_RE.fullmatch(value)
        if match is None:
            algorithm = value.split(":", 1)[0]
            if ":" in value and algorithm not in ALGORITHMS:
                err = _unknown_algorithm(algorithm)
                err.message = f"unknown digest algorithm {algorithm[:50]!r} in digest {value[:200]!r}"
                err.context["digest"] = value[:200]
                raise err
            raise _malformed(value)
        size = int(match.group(3))
        if size > MAX_SIZE:
            raise _malformed(value)
        digest = cls.__new__(cls)
        digest._set(match.group(1), match.group(2), size, value)
        return digest

    @classmethod
    def check(cls, value: str) -> str:
        """Validate a digest string cheaply and return it (no object is built).

        Raises:
            ValidationError: as :meth:`parse`.
        """
        if isinstance(value, str) and _DIGEST_RE.fullmatch(value) is not None:
            return value
        return str(cls.parse(value))

    @property
    def key(self) -> str:
        """``<algorithm>:<hex>``: the content's name without its size."""
        return f"{self.algorithm}:{self.hex}"

    @property
    def short(self) -> str:
        """``<algorithm>:<first 12 hex>``, for people."""
        return f"{self.algorithm}:{self.hex[:12]}"

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"Digest({self._text!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Digest):
            return self._text == other._text
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._text)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Digest is immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        return (Digest.parse, (self._text,))


def _malformed(value: str) -> ValidationError:
    return ValidationError(
        f"malformed digest {value[:200]!r}: expected <algorithm>:<64 lowercase hex>:<size>",
        code="artifact.digest.malformed",
        context={"field": "digest", "value": value[:200]},
        hint="copy a digest printed by `symphony artifacts put` or `ls`",
    )


def check_ref_name(name: object) -> str:
    """Validate a ref name such as ``reports/weekly`` and return it.

    Segments separated by ``/`` hold letters, digits, ``.``, ``_`` and ``-``; a segment may not
    start with ``.`` or ``-``; ``..`` may not appear anywhere; at most 255 characters.

    Raises:
        ValidationError: ``artifact.ref.invalid`` naming the rule broken.
    """
    if not isinstance(name, str):
        raise _bad_ref(repr(name)[:100], f"a ref name must be a string, not {type(name).__name__}")
    if not name:
        raise _bad_ref(name, "a ref name must not be empty")
    if len(name) > 255:
        raise _bad_ref(name[:100] + "...", "a ref name must be at most 255 characters")
    if _CONTROL_RE.search(name):
        raise _bad_ref(
            name.encode("unicode_escape").decode("ascii"), "a ref name must not contain control characters"
        )
    if ".." in name:
        raise _bad_ref(name, "a ref name must not contain '..'")
    if _REF_RE.fullmatch(name) is None or name.endswith(".lock"):
        raise _bad_ref(
            name,
            "a ref name is '/'-separated segments of letters, digits, '.', '_' and '-', "
            "each starting with a letter, digit or '_'",
        )
    return name


def _bad_ref(value: str, reason: str) -> ValidationError:
    return ValidationError(
        f"invalid ref name {value!r}: {reason}",
        code="artifact.ref.invalid",
        context={"field": "ref", "value": value},
        hint="use a name like reports/weekly",
    )


def check_tag(tag: object) -> str:
    """Validate a tag (1-200 printable characters, no surrounding spaces) and return it.

    Raises:
        ValidationError: ``artifact.tag.invalid``.
    """
    if not isinstance(tag, str) or not tag or len(tag) > 200 or tag != tag.strip() or _CONTROL_RE.search(tag):
        raise ValidationError(
            f"invalid tag {tag!r}: a tag is 1-200 characters without control characters or surrounding spaces",
            code="artifact.tag.invalid",
            context={"field": "tag", "value": repr(tag)[:200]},
        )
    return tag


def check_media_type(media_type: object) -> str:
    """Validate a media type such as ``text/plain`` (parameters after ``;`` are refused).

    Raises:
        ValidationError: ``artifact.media_type.invalid``.
    """
    if not isinstance(media_type, str) or _MEDIA_RE.fullmatch(media_type) is None:
        raise ValidationError(
            f"invalid media type {media_type!r}: expected type/subtype such as text/plain",
            code="artifact.media_type.invalid",
            context={"field": "media_type", "value": repr(media_type)[:200]},
        )
    return media_type.lower()
