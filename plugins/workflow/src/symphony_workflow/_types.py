"""The port type system: a small set of data types and when one may flow into another.

Type expressions are strings:

=============  ===============================================================
``any``        anything; compatible with every type in both directions
``text``       a Unicode string
``number``     a float (an ``integer`` is also a ``number``)
``integer``    a whole number
``bool``       ``true`` / ``false``
``bytes``      raw binary data
``json``       any JSON value (``text``, ``number``, ``integer``, ``bool`` and lists of them fit)
``file``       a path or file reference
``list[T]``    a list whose items are ``T`` (nesting allowed: ``list[list[text]]``)
=============  ===============================================================

A data edge from an output of type ``S`` to an input of type ``T`` is allowed when ``S`` is
*assignable* to ``T``: the two are equal, either is ``any``, ``S`` widens to ``T`` (``integer`` to
``number``; scalars and lists of JSON values to ``json``), or both are lists whose item types
are assignable. Plugins may add named scalar types with :meth:`TypeSystem.extended`, saying
which existing types each widens to (e.g. ``image`` widens to ``bytes``).

Parsing and compatibility answers are cached, so checking 10,000 edges costs a dict lookup each.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from symphony.commons.errors import ValidationError

__all__ = ["BUILTIN_TYPES", "DEFAULT_TYPES", "TypeSystem"]

BUILTIN_TYPES: dict[str, tuple[str, ...]] = {
    "any": (),
    "text": ("json",),
    "number": ("json",),
    "integer": ("number", "json"),
    "bool": ("json",),
    "bytes": (),
    "json": (),
    "file": (),
}
"""Built-in scalar types and the types each widens to."""

_MAX_TYPE_LEN = 200


class TypeSystem:
    """Parses port type expressions and answers "may ``S`` flow into ``T``?".

    >>> DEFAULT_TYPES.is_assignable("list[integer]", "list[number]")
    True
    >>> DEFAULT_TYPES.is_assignable("text", "number")
    False
    """

    def __init__(self, scalars: Mapping[str, Iterable[str]] | None = None) -> None:
        base = BUILTIN_TYPES if scalars is None else scalars
        self._widens: dict[str, frozenset[str]] = {k: frozenset(v) for k, v in base.items()}
        for name, targets in self._widens.items():
            for target in targets:
                if target not in self._widens:
                    raise ValidationError(
                        f"type {name!r} widens to unknown type {target!r}",
                        code="workflow.type.unknown_widening",
                        context={"type": name, "target": target},
                    )
        self._parsed: dict[str, str] = {}
        self._compat: dict[tuple[str, str], bool] = {}

    @property
    def scalars(self) -> list[str]:
        """Names of the scalar types this system knows."""
        return sorted(self._widens)

    def extended(self, extra: Mapping[str, Iterable[str]]) -> TypeSystem:
        """A new type system with more scalar types (name -> types it widens to)."""
        merged: dict[str, Iterable[str]] = {k: tuple(v) for k, v in self._widens.items()}
        for name, targets in extra.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise ValidationError(
                    f"invalid type name {name!r}",
                    code="workflow.type.invalid_name",
                    context={"type": repr(name)},
                )
            merged[name] = tuple(targets)
        return TypeSystem(merged)

    def normalize(self, expr: str) -> str:
        """The canonical spelling of a type expression; :class:`ValidationError` if malformed."""
        if not isinstance(expr, str):
            raise ValidationError(
                f"a port type must be a string, not {type(expr).__name__}",
                code="workflow.type.invalid",
                context={"type": repr(expr)},
            )
        cached = self._parsed.get(expr)
        if cached is not None:
            return cached
        if len(expr) > _MAX_TYPE_LEN:
            raise ValidationError(
                "port type expression is too long",
                code="workflow.type.invalid",
                context={"type": expr[:50] + "..."},
            )
        text = expr.replace(" ", "")
        depth = 0
        while text.startswith("list[") and text.endswith("]"):
            text = text[5:-1]
            depth += 1
        if text not in self._widens:
            raise ValidationError(
                f"unknown port type {expr!r}",
                code="workflow.type.unknown",
                context={"type": expr, "known": self.scalars},
                hint="use one of the scalar types, or list[T]",
            )
        canonical = "list[" * depth + text + "]" * depth
        if len(self._parsed) < 10_000:
            self._parsed[expr] = canonical
        return canonical

    def is_valid(self, expr: str) -> bool:
        """True if ``expr`` is a well-formed type expression of this system."""
        try:
            self.normalize(expr)
        except ValidationError:
            return False
        return True

    def is_assignable(self, source: str, target: str) -> bool:
        """True if a value of type ``source`` may flow into a port of type ``target``."""
        key = (source, target)
        hit = self._compat.get(key)
        if hit is not None:
            return hit
        result = self._assignable(self.normalize(source), self.normalize(target))
        if len(self._compat) < 50_000:
            self._compat[key] = result
        return result

    def _assignable(self, s: str, t: str) -> bool:
        if s == t or s == "any" or t == "any":
            return True
        s_list = s.startswith("list[")
        t_list = t.startswith("list[")
        if s_list and t_list:
            return self._assignable(s[5:-1], t[5:-1])
        if t == "json":
            return self._json_compatible(s)
        if s_list or t_list:
            return False
        return t in self._closure(s)

    def _json_compatible(self, s: str) -> bool:
        while s.startswith("list["):
            s = s[5:-1]
        return s in ("json", "any") or "json" in self._closure(s)

    def _closure(self, name: str) -> frozenset[str]:
        seen: set[str] = set()
        todo = list(self._widens.get(name, ()))
        while todo:
            item = todo.pop()
            if item not in seen:
                seen.add(item)
                todo.extend(self._widens.get(item, ()))
        return frozenset(seen)


DEFAULT_TYPES = TypeSystem()
"""The type system with the built-in types only."""
