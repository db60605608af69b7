"""One error family for every Symphony package.

Every failure Symphony reports is a :class:`SymphonyError`. Subclasses name a *category*
(validation, config, not-found, ...); each instance carries a stable string ``code`` that
tools and tests can match on, a human ``message``, a ``context`` mapping naming what was
wrong (file, key, plugin, path ...), and an optional ``hint`` saying what to do about it.

Errors convert to and from a plain *wire form* (a JSON-safe dict) so they survive the bus:
a handler's error arrives at the requester with the same class, code, message and context.

Validation failures carry a ``stage``: ``"pre-validation"`` for the cheap technical checks
the core runs before any real work, ``"authoritative"`` for the verdict of the component that
owns the data. :class:`PreValidationError` is the pre-validation flavour.
"""

from __future__ import annotations

import errno as _errno
from collections.abc import Mapping
from typing import Any, ClassVar

__all__ = [
    "ConfigError",
    "ConflictError",
    "FilesystemError",
    "IntegrityError",
    "InternalError",
    "NotFoundError",
    "OperationTimeoutError",
    "PermissionDeniedError",
    "PluginError",
    "PreValidationError",
    "SerializationError",
    "SymphonyError",
    "TransportError",
    "ValidationError",
    "error_from_wire",
    "from_os_error",
    "sole_exception",
]

_BY_CATEGORY: dict[str, type[SymphonyError]] = {}


class SymphonyError(Exception):
    """Root of every error Symphony raises.

    >>> err = ValidationError("name must not be empty", code="user.name.empty", context={"field": "name"})
    >>> error_from_wire(err.to_wire()).code
    'user.name.empty'
    """

    category: ClassVar[str] = "error"
    default_code: ClassVar[str] = "symphony.error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        context: Mapping[str, Any] | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.context: dict[str, Any] = dict(context or {})
        self.hint = hint

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # The first class declaring a category is the one the wire form maps back to.
        _BY_CATEGORY.setdefault(cls.__dict__.get("category", cls.category), cls)

    def __str__(self) -> str:
        text = self.message
        if self.context:
            details = ", ".join(f"{k}={v!r}" for k, v in self.context.items())
            text = f"{text} [{details}]"
        if self.hint:
            text = f"{text} (hint: {self.hint})"
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, context={self.context!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (error_from_wire, (self.to_wire(),))

    def to_wire(self) -> dict[str, Any]:
        """Return the JSON-safe wire form of this error."""
        wire: dict[str, Any] = {
            "category": self.category,
            "code": self.code,
            "message": self.message,
            "context": {k: _wire_safe(v) for k, v in self.context.items()},
        }
        if self.hint is not None:
            wire["hint"] = self.hint
        stage = getattr(self, "stage", None)
        if stage is not None:
            wire["stage"] = stage
        return wire


def _wire_safe(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _wire_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_wire_safe(v) for v in value]
    return str(value)


class ValidationError(SymphonyError):
    """Input broke a rule. ``stage`` tells pre-validation from an authoritative verdict."""

    category = "validation"
    default_code = "validation.failed"
    stage: str = "authoritative"

    def __init__(self, message: str, *, stage: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        if stage is not None:
            self.stage = stage


class PreValidationError(ValidationError):
    """A cheap technical check failed before any real work was done."""

    default_code = "validation.pre"
    stage = "pre-validation"


class ConfigError(SymphonyError):
    """A configuration file, key, value or environment variable is wrong."""

    category = "config"
    default_code = "config.invalid"


class NotFoundError(SymphonyError):
    """Something named does not exist (a service, plugin, file, message type...)."""

    category = "not-found"
    default_code = "not_found"


class ConflictError(SymphonyError):
    """Two things claim the same place (a slot, an id, a route)."""

    category = "conflict"
    default_code = "conflict"


class PermissionDeniedError(SymphonyError):
    """An operation is not allowed (undeclared permission, wrong peer, bad token)."""

    category = "permission"
    default_code = "permission.denied"


class OperationTimeoutError(SymphonyError):
    """An operation did not finish within its deadline."""

    category = "timeout"
    default_code = "timeout"


class TransportError(SymphonyError):
    """A connection failed, closed or spoke garbage."""

    category = "transport"
    default_code = "transport.failed"


class SerializationError(SymphonyError):
    """Bytes or a document could not be encoded or decoded."""

    category = "serialization"
    default_code = "serialization.failed"


class PluginError(SymphonyError):
    """A plugin is malformed, incompatible, conflicting, or failed to import or activate."""

    category = "plugin"
    default_code = "plugin.failed"


class FilesystemError(SymphonyError):
    """A filesystem operation failed (wrapping the OS error with the path)."""

    category = "io"
    default_code = "io.failed"


class IntegrityError(SymphonyError):
    """Stored data failed its check: the bytes do not match their digest or checksum.

    Raised instead of returning corrupt data; ``context`` names what was checked (a
    ``digest``, a ``path``) and what was found.
    """

    category = "integrity"
    default_code = "integrity.mismatch"


class InternalError(SymphonyError):
    """A bug: something that should not happen did."""

    category = "internal"
    default_code = "internal"


_BY_CATEGORY["error"] = SymphonyError  # the root declares its category without __init_subclass__


def error_from_wire(wire: Mapping[str, Any]) -> SymphonyError:
    """Rebuild a :class:`SymphonyError` from its wire form.

    Unknown categories become a plain :class:`SymphonyError`; a wire form that is not a
    mapping with a string message still yields an error rather than raising something else.
    """
    if not isinstance(wire, Mapping):
        return SymphonyError("malformed error on the wire", code="wire.malformed_error", context={"value": repr(wire)[:200]})
    category = wire.get("category")
    cls = _BY_CATEGORY.get(category, SymphonyError) if isinstance(category, str) else SymphonyError
    stage = wire.get("stage")
    if cls is ValidationError and stage == "pre-validation":
        cls = PreValidationError
    message = wire.get("message")
    context = wire.get("context")
    hint = wire.get("hint")
    code = wire.get("code")
    if not isinstance(message, str):
        message = repr(message)
    if not message.strip():
        message = f"{code if isinstance(code, str) and code else 'error'} (the sender gave no message)"
    err = cls.__new__(cls)
    SymphonyError.__init__(
        err,
        message,
        code=code if isinstance(code, str) else None,
        context=context if isinstance(context, Mapping) else None,
        hint=hint if isinstance(hint, str) else None,
    )
    if isinstance(err, ValidationError) and isinstance(stage, str):
        err.stage = stage
    return err


def from_os_error(exc: OSError, *, path: object = None, action: str = "access") -> SymphonyError:
    """Convert an ``OSError`` into the matching :class:`SymphonyError`, keeping the path."""
    context: dict[str, Any] = {"action": action, "errno": exc.errno}
    if path is not None:
        context["path"] = str(path)
    reason = exc.strerror or str(exc)
    message = f"cannot {action} {path}: {reason}" if path is not None else f"cannot {action}: {reason}"
    err: SymphonyError
    if exc.errno == _errno.ENOENT:
        err = NotFoundError(message, code="io.not_found", context=context)
    elif exc.errno in (_errno.EACCES, _errno.EPERM):
        err = PermissionDeniedError(message, code="io.permission_denied", context=context)
    elif exc.errno == _errno.EEXIST:
        err = ConflictError(message, code="io.exists", context=context)
    else:
        err = FilesystemError(message, code="io.failed", context=context)
    err.__cause__ = exc
    return err


def sole_exception(exc: BaseException) -> BaseException:
    """The one exception an ``ExceptionGroup`` wraps (task groups wrap whatever crosses them).

    Nested groups of one are unwrapped too. Returns ``exc`` itself when it is not a group or
    holds several exceptions.
    """
    leaf = exc
    while isinstance(leaf, BaseExceptionGroup) and len(leaf.exceptions) == 1:
        leaf = leaf.exceptions[0]
    return exc if isinstance(leaf, BaseExceptionGroup) else leaf
