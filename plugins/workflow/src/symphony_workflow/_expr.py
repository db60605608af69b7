"""A tiny, safe expression language for conditional edges. Never uses ``eval``.

Grammar (lowest precedence first)::

    expr       := or
    or         := and ("or" and)*
    and        := not ("and" not)*
    not        := "not" not | comparison
    comparison := additive [("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not" "in") additive]
    additive   := term (("+" | "-") term)*
    term       := unary (("*" | "/" | "%") unary)*
    unary      := "-" unary | postfix
    postfix    := primary ("." NAME | "[" expr "]")*
    primary    := NUMBER | STRING | "true" | "false" | "null" | "[" [expr ("," expr)*] "]"
                | "(" expr ")" | NODE "." PORT

A reference ``node_id.port`` reads an upstream node's output; further ``.field`` and ``[index]``
steps walk into JSON objects and lists (``classify.label.scores[0] > 0.5``). Comparisons do not
chain (``a < b < c`` is a parse error: write ``a < b and b < c``).

Values are JSON values. ``+`` adds numbers and concatenates two strings or two lists; ``-``,
``*``, ``/``, ``%`` work on numbers only; ``<`` and friends compare two numbers or two strings;
``in`` tests membership in a list, a key of an object, or a substring. Booleans are not numbers.
Strings use single or double quotes with the escapes ``\\n \\t \\r \\\\ \\' \\"`` and ``\\u`` plus four hex digits
(so a JSON string literal is also a valid expression string).
A condition is true when its value is truthy (``false``, ``null``, ``0``, ``""``, ``[]``, ``{}``
are false).

Every problem is a :class:`~symphony.commons.errors.ValidationError` whose context gives the
1-based ``column`` in the expression: parse errors when parsing, type errors and missing
outputs when evaluating. Expressions are capped in length and nesting, so no input can blow
the Python stack.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import attrs

from symphony.commons.errors import ValidationError

__all__ = [
    "Binary",
    "Compare",
    "Expression",
    "Index",
    "ListLiteral",
    "Literal",
    "Logical",
    "Node",
    "Ref",
    "Unary",
    "evaluate",
    "parse",
]

MAX_LENGTH = 4096
"""Longest accepted expression, in characters."""
MAX_DEPTH = 64
"""Deepest accepted syntax tree."""

KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "null"})
"""Words that cannot name a node in an expression."""

_OPERATORS = ("==", "!=", "<=", ">=", "<", ">", "+", "-", "*", "/", "%", "(", ")", "[", "]", ".", ",")


@attrs.frozen
class _Token:
    kind: str  # "num", "str", "name", "op", "end"
    value: Any
    col: int


def _error(message: str, expr: str, col: int, code: str = "expression.syntax") -> ValidationError:
    return ValidationError(
        message,
        code=code,
        context={"expression": expr if len(expr) <= 200 else expr[:200] + "...", "column": col},
    )


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        col = i + 1
        if ch in " \t\r\n":
            i += 1
            continue
        if ch.isdigit() and ch.isascii():
            j = i
            while j < n and text[j].isascii() and text[j].isdigit():
                j += 1
            is_float = False
            if j < n and text[j] == "." and j + 1 < n and text[j + 1].isascii() and text[j + 1].isdigit():
                is_float = True
                j += 1
                while j < n and text[j].isascii() and text[j].isdigit():
                    j += 1
            if j < n and text[j] in "eE":
                k = j + 1
                if k < n and text[k] in "+-":
                    k += 1
                if k < n and text[k].isascii() and text[k].isdigit():
                    is_float = True
                    j = k
                    while j < n and text[j].isascii() and text[j].isdigit():
                        j += 1
            raw = text[i:j]
            if len(raw) > 40:
                raise _error("number literal is too long", text, col)
            value: Any = float(raw) if is_float else int(raw)
            if is_float and not math.isfinite(value):
                raise _error("number literal is out of range", text, col)
            tokens.append(_Token("num", value, col))
            i = j
            continue
        if ch.isascii() and (ch.isalpha() or ch == "_"):
            j = i + 1
            while j < n and text[j].isascii() and (text[j].isalnum() or text[j] == "_"):
                j += 1
            tokens.append(_Token("name", text[i:j], col))
            i = j
            continue
        if ch in "'\"":
            quote = ch
            j = i + 1
            out: list[str] = []
            while True:
                if j >= n:
                    raise _error("unterminated string", text, col)
                c = text[j]
                if c == quote:
                    j += 1
                    break
                if c == "\\":
                    if j + 1 >= n:
                        raise _error("unterminated string", text, col)
                    esc = text[j + 1]
                    if esc == "u":
                        digits = text[j + 2 : j + 6]
                        if len(digits) != 4 or any(d not in "0123456789abcdefABCDEF" for d in digits):
                            raise _error("\\u needs four hex digits", text, j + 1)
                        code = int(digits, 16)
                        j += 6
                        low = text[j + 2 : j + 6] if text.startswith("\\u", j) else ""
                        if (
                            0xD800 <= code < 0xDC00
                            and len(low) == 4
                            and all(d in "0123456789abcdefABCDEF" for d in low)
                        ):
                            second = int(low, 16)
                            if 0xDC00 <= second < 0xE000:
                                code = 0x10000 + ((code - 0xD800) << 10) + (second - 0xDC00)
                                j += 6
                        out.append(chr(code))
                        continue
                    mapped = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"'}.get(esc)
                    if mapped is None:
                        raise _error(f"unknown escape \\{esc}", text, j + 1)
                    out.append(mapped)
                    j += 2
                    continue
                out.append(c)
                j += 1
            tokens.append(_Token("str", "".join(out), col))
            i = j
            continue
        for op in _OPERATORS:
            if text.startswith(op, i):
                tokens.append(_Token("op", op, col))
                i += len(op)
                break
        else:
            raise _error(f"unexpected character {ch!r}", text, col)
    tokens.append(_Token("end", None, n + 1))
    return tokens


# --- syntax tree --------------------------------------------------------------------------------


@attrs.frozen
class Literal:
    """A constant: number, string, bool or null."""

    value: Any
    col: int
    depth: int = 1


@attrs.frozen
class ListLiteral:
    """``[a, b, c]``."""

    items: tuple[Node, ...]
    col: int
    depth: int = 1


@attrs.frozen
class Ref:
    """``node.port``: the output ``port`` of upstream node ``node``."""

    node: str
    port: str
    col: int
    depth: int = 1


@attrs.frozen
class Index:
    """``value.field`` or ``value[key]``: a step into an object or a list."""

    target: Node
    key: Node
    col: int
    depth: int = 1


@attrs.frozen
class Unary:
    """``-x`` or ``not x``."""

    op: str
    operand: Node
    col: int
    depth: int = 1


@attrs.frozen
class Binary:
    """Arithmetic: ``+ - * / %``."""

    op: str
    left: Node
    right: Node
    col: int
    depth: int = 1


@attrs.frozen
class Compare:
    """A comparison or membership test: ``== != < <= > >= in``, ``not in``."""

    op: str
    left: Node
    right: Node
    col: int
    depth: int = 1


@attrs.frozen
class Logical:
    """``and`` / ``or`` with short-circuit evaluation."""

    op: str
    left: Node
    right: Node
    col: int
    depth: int = 1


Node = Literal | ListLiteral | Ref | Index | Unary | Binary | Compare | Logical
"""Any node of the syntax tree."""


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0
        self.nesting = 0

    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def take(self) -> _Token:
        tok = self.tokens[self.pos]
        if tok.kind != "end":
            self.pos += 1
        return tok

    def is_op(self, value: str) -> bool:
        tok = self.tokens[self.pos]
        return tok.kind == "op" and tok.value == value

    def is_word(self, value: str) -> bool:
        tok = self.tokens[self.pos]
        return tok.kind == "name" and tok.value == value

    def expect_op(self, value: str) -> _Token:
        tok = self.peek()
        if tok.kind != "op" or tok.value != value:
            raise _error(f"expected {value!r}, found {self._describe(tok)}", self.text, tok.col)
        return self.take()

    @staticmethod
    def _describe(tok: _Token) -> str:
        if tok.kind == "end":
            return "end of expression"
        return repr(tok.value)

    def _depth(self, *children: Node) -> int:
        depth = 1 + max((c.depth for c in children), default=0)
        if depth > MAX_DEPTH:
            col = min(c.col for c in children) if children else 1
            raise _error(f"expression is nested too deeply (more than {MAX_DEPTH} levels)", self.text, col)
        return depth

    def parse(self) -> Node:
        node = self.parse_or()
        tok = self.peek()
        if tok.kind != "end":
            raise _error(f"unexpected {self._describe(tok)}", self.text, tok.col)
        return node

    def parse_or(self) -> Node:
        left = self.parse_and()
        while self.is_word("or"):
            tok = self.take()
            right = self.parse_and()
            left = Logical("or", left, right, tok.col, self._depth(left, right))
        return left

    def parse_and(self) -> Node:
        left = self.parse_not()
        while self.is_word("and"):
            tok = self.take()
            right = self.parse_not()
            left = Logical("and", left, right, tok.col, self._depth(left, right))
        return left

    def parse_not(self) -> Node:
        if self.is_word("not"):
            tok = self.take()
            self._enter(tok)
            operand = self.parse_not()
            self.nesting -= 1
            return Unary("not", operand, tok.col, self._depth(operand))
        return self.parse_comparison()

    def _enter(self, tok: _Token) -> None:
        self.nesting += 1
        if self.nesting > MAX_DEPTH:
            raise _error(
                f"expression is nested too deeply (more than {MAX_DEPTH} levels)", self.text, tok.col
            )

    def _compare_op(self) -> str | None:
        tok = self.peek()
        if tok.kind == "op" and tok.value in ("==", "!=", "<", "<=", ">", ">="):
            return str(tok.value)
        if tok.kind == "name" and tok.value == "in":
            return "in"
        if tok.kind == "name" and tok.value == "not":
            nxt = self.tokens[self.pos + 1]
            if nxt.kind == "name" and nxt.value == "in":
                return "not in"
        return None

    def parse_comparison(self) -> Node:
        left = self.parse_additive()
        op = self._compare_op()
        if op is None:
            return left
        tok = self.take()
        if op == "not in":
            self.take()
        right = self.parse_additive()
        node = Compare(op, left, right, tok.col, self._depth(left, right))
        if self._compare_op() is not None:
            nxt = self.peek()
            raise _error("comparisons cannot be chained; join them with 'and'", self.text, nxt.col)
        return node

    def parse_additive(self) -> Node:
        left = self.parse_term()
        while self.peek().kind == "op" and self.peek().value in ("+", "-"):
            tok = self.take()
            right = self.parse_term()
            left = Binary(tok.value, left, right, tok.col, self._depth(left, right))
        return left

    def parse_term(self) -> Node:
        left = self.parse_unary()
        while self.peek().kind == "op" and self.peek().value in ("*", "/", "%"):
            tok = self.take()
            right = self.parse_unary()
            left = Binary(tok.value, left, right, tok.col, self._depth(left, right))
        return left

    def parse_unary(self) -> Node:
        if self.is_op("-"):
            tok = self.take()
            self._enter(tok)
            operand = self.parse_unary()
            self.nesting -= 1
            if isinstance(operand, Literal) and type(operand.value) in (int, float):
                return Literal(-operand.value, tok.col)
            return Unary("-", operand, tok.col, self._depth(operand))
        return self.parse_postfix()

    def parse_postfix(self) -> Node:
        node = self.parse_primary()
        while True:
            if self.is_op("."):
                dot = self.take()
                name = self.take()
                if name.kind != "name":
                    raise _error(
                        f"expected a field name after '.', found {self._describe(name)}", self.text, name.col
                    )
                key = Literal(name.value, name.col)
                node = Index(node, key, dot.col, self._depth(node))
            elif self.is_op("["):
                bracket = self.take()
                self._enter(bracket)
                key_node = self.parse_or()
                self.nesting -= 1
                self.expect_op("]")
                node = Index(node, key_node, bracket.col, self._depth(node, key_node))
            else:
                return node

    def parse_primary(self) -> Node:
        tok = self.take()
        if tok.kind in ("num", "str"):
            return Literal(tok.value, tok.col)
        if tok.kind == "name":
            word = tok.value
            if word == "true":
                return Literal(True, tok.col)
            if word == "false":
                return Literal(False, tok.col)
            if word == "null":
                return Literal(None, tok.col)
            if word in KEYWORDS:
                raise _error(f"unexpected keyword {word!r}", self.text, tok.col)
            if not self.is_op("."):
                raise _error(
                    f"{word!r} must be a reference to an upstream output, written {word}.<port>",
                    self.text,
                    tok.col,
                )
            self.take()
            port = self.take()
            if port.kind != "name":
                raise _error(
                    f"expected a port name after '{word}.', found {self._describe(port)}", self.text, port.col
                )
            return Ref(word, port.value, tok.col)
        if tok.kind == "op" and tok.value == "(":
            self._enter(tok)
            inner = self.parse_or()
            self.nesting -= 1
            self.expect_op(")")
            return inner
        if tok.kind == "op" and tok.value == "[":
            self._enter(tok)
            items: list[Node] = []
            if not self.is_op("]"):
                while True:
                    items.append(self.parse_or())
                    if self.is_op(","):
                        self.take()
                        continue
                    break
            self.nesting -= 1
            self.expect_op("]")
            return ListLiteral(tuple(items), tok.col, self._depth(*items))
        raise _error(f"unexpected {self._describe(tok)}", self.text, tok.col)


# --- evaluation ---------------------------------------------------------------------------------


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def truthy(value: Any) -> bool:
    """JSON truthiness: ``false``, ``null``, ``0``, ``""``, ``[]`` and ``{}`` are false."""
    if value is None or value is False:
        return False
    if _is_number(value):
        return bool(value)
    if isinstance(value, (str, list, tuple, Mapping)):
        return len(value) > 0
    return True


@attrs.frozen
class Expression:
    """A parsed expression: its source ``text`` and syntax ``tree``.

    >>> e = Expression.parse("score.value >= 0.5 and 'ok' in check.tags")
    >>> sorted(e.references())
    [('check', 'tags'), ('score', 'value')]
    >>> e.evaluate({"score": {"value": 0.7}, "check": {"tags": ["ok"]}})
    True
    """

    text: str
    tree: Node

    @classmethod
    def parse(cls, text: str) -> Expression:
        """Parse ``text``; :class:`ValidationError` with the ``column`` if it does not parse."""
        return parse(text)

    def references(self) -> set[tuple[str, str]]:
        """Every ``(node, port)`` the expression reads."""
        return {(r.node, r.port) for r in self.refs()}

    def refs(self) -> Iterator[Ref]:
        """Every :class:`Ref` in the tree (with its column), in source order."""
        stack: list[Node] = [self.tree]
        found: list[Ref] = []
        while stack:
            node = stack.pop()
            if isinstance(node, Ref):
                found.append(node)
            elif isinstance(node, ListLiteral):
                stack.extend(node.items)
            elif isinstance(node, Index):
                stack.extend((node.target, node.key))
            elif isinstance(node, Unary):
                stack.append(node.operand)
            elif isinstance(node, Binary | Compare | Logical):
                stack.extend((node.left, node.right))
        return iter(sorted(found, key=lambda r: r.col))

    def evaluate(self, outputs: Mapping[str, Mapping[str, Any]]) -> Any:
        """The value of the expression, reading ``outputs[node][port]`` for references."""
        try:
            return _Evaluator(self.text, outputs).eval(self.tree)
        except RecursionError:
            raise _error(
                "value is nested too deeply to compare", self.text, 1, "expression.too_deep"
            ) from None

    def test(self, outputs: Mapping[str, Mapping[str, Any]]) -> bool:
        """The truthiness of :meth:`evaluate` (what a conditional edge uses)."""
        return truthy(self.evaluate(outputs))


def parse(text: str) -> Expression:
    """Parse ``text`` into an :class:`Expression`; bad input raises :class:`ValidationError`."""
    if not isinstance(text, str):
        raise ValidationError(
            f"an expression must be a string, not {type(text).__name__}",
            code="expression.syntax",
            context={"column": 1},
        )
    if len(text) > MAX_LENGTH:
        raise _error(f"expression is longer than {MAX_LENGTH} characters", text, MAX_LENGTH + 1)
    if not text.strip():
        raise _error("expression is empty", text, 1)
    return Expression(text, _Parser(text).parse())


def evaluate(text: str, outputs: Mapping[str, Mapping[str, Any]]) -> Any:
    """Parse and evaluate ``text`` in one call."""
    return parse(text).evaluate(outputs)


class _Evaluator:
    def __init__(self, text: str, outputs: Mapping[str, Mapping[str, Any]]) -> None:
        self.text = text
        self.outputs = outputs

    def fail(self, message: str, col: int, code: str = "expression.type_error") -> ValidationError:
        return _error(message, self.text, col, code)

    def eval(self, node: Node) -> Any:
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, Ref):
            ports = self.outputs.get(node.node)
            if ports is None or not isinstance(ports, Mapping):
                raise self.fail(f"no output from node {node.node!r}", node.col, "expression.missing_output")
            if node.port not in ports:
                raise self.fail(
                    f"node {node.node!r} has no output {node.port!r}", node.col, "expression.missing_output"
                )
            return ports[node.port]
        if isinstance(node, Logical):
            left = self.eval(node.left)
            if node.op == "and":
                return self.eval(node.right) if truthy(left) else left
            return left if truthy(left) else self.eval(node.right)
        if isinstance(node, Unary):
            value = self.eval(node.operand)
            if node.op == "not":
                return not truthy(value)
            if not _is_number(value):
                raise self.fail(f"cannot negate a {_type_name(value)}", node.col)
            return -value
        if isinstance(node, Binary):
            return self._arith(node, self.eval(node.left), self.eval(node.right))
        if isinstance(node, Compare):
            return self._compare(node, self.eval(node.left), self.eval(node.right))
        if isinstance(node, Index):
            return self._index(node, self.eval(node.target), self.eval(node.key))
        if isinstance(node, ListLiteral):
            return [self.eval(item) for item in node.items]
        raise self.fail("unknown expression node", 1, "expression.internal")

    def _arith(self, node: Binary, left: Any, right: Any) -> Any:
        op = node.op
        if op == "+":
            if isinstance(left, str) and isinstance(right, str):
                return left + right
            if isinstance(left, list) and isinstance(right, list):
                return left + right
        if not (_is_number(left) and _is_number(right)):
            raise self.fail(f"cannot apply {op!r} to {_type_name(left)} and {_type_name(right)}", node.col)
        try:
            if op == "+":
                result = left + right
            elif op == "-":
                result = left - right
            elif op == "*":
                result = left * right
            elif op == "/":
                result = left / right
            else:
                result = left % right
        except ZeroDivisionError:
            raise self.fail("division by zero", node.col, "expression.division_by_zero") from None
        except OverflowError:
            raise self.fail("number out of range", node.col, "expression.overflow") from None
        if isinstance(result, float) and not math.isfinite(result):
            raise self.fail("number out of range", node.col, "expression.overflow")
        if isinstance(result, int) and result.bit_length() > 256:
            raise self.fail("number out of range", node.col, "expression.overflow")
        return result

    def _compare(self, node: Compare, left: Any, right: Any) -> bool:
        op = node.op
        if op == "==":
            return _json_equal(left, right)
        if op == "!=":
            return not _json_equal(left, right)
        if op in ("in", "not in"):
            if isinstance(right, str):
                if not isinstance(left, str):
                    raise self.fail(f"cannot look for a {_type_name(left)} in text", node.col)
                found = left in right
            elif isinstance(right, list | tuple):
                found = any(_json_equal(left, item) for item in right)
            elif isinstance(right, Mapping):
                found = isinstance(left, str) and left in right
            else:
                raise self.fail(f"'in' needs a list, an object or text, not {_type_name(right)}", node.col)
            return found if op == "in" else not found
        if (_is_number(left) and _is_number(right)) or (isinstance(left, str) and isinstance(right, str)):
            if op == "<":
                return bool(left < right)
            if op == "<=":
                return bool(left <= right)
            if op == ">":
                return bool(left > right)
            return bool(left >= right)
        raise self.fail(f"cannot compare {_type_name(left)} {op} {_type_name(right)}", node.col)

    def _index(self, node: Index, target: Any, key: Any) -> Any:
        if isinstance(target, Mapping):
            if not isinstance(key, str):
                raise self.fail(f"object keys are text, not {_type_name(key)}", node.col)
            if key not in target:
                raise self.fail(f"no field {key!r}", node.col, "expression.missing_field")
            return target[key]
        if isinstance(target, list | tuple):
            if not (isinstance(key, int) and not isinstance(key, bool)):
                raise self.fail(f"list indexes are integers, not {_type_name(key)}", node.col)
            if not -len(target) <= key < len(target):
                raise self.fail(f"index {key} is out of range", node.col, "expression.missing_field")
            return target[key]
        raise self.fail(f"cannot index into a {_type_name(target)}", node.col)


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and bool(a == b)
