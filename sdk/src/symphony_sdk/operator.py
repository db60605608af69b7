"""A base class for operators: cheap, deterministic utilities with checked inputs and outputs."""

from __future__ import annotations

import abc
import inspect
from collections.abc import Awaitable, Mapping
from typing import Any, ClassVar

from symphony.commons.errors import ValidationError
from symphony_sdk.nodes import NodeContext, NodeImplementation

__all__ = ["Operator"]


class Operator(NodeImplementation):
    """Subclass, set ``name`` and the JSON Schemas, and implement :meth:`process`.

    :meth:`run` validates the inputs, calls :meth:`process`, and validates the outputs, so a
    bad call fails with a :class:`ValidationError` naming the offending path. ``process`` may
    also be an ``async`` method (then call :meth:`arun`). As a workflow node implementation
    (:meth:`execute`) an operator is ``pure`` by default, so its results are memoized.

    >>> class Upper(Operator):
    ...     name = "text.upper"
    ...     input_schema = {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}
    ...     def process(self, inputs):
    ...         return {"text": inputs["text"].upper()}
    >>> Upper().run({"text": "hi"})
    {'text': 'HI'}
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    input_schema: ClassVar[Mapping[str, Any]] = {"type": "object"}
    output_schema: ClassVar[Mapping[str, Any]] = {"type": "object"}

    pure: ClassVar[bool] = True

    _validators: ClassVar[dict[tuple[type, str], Any]] = {}

    @abc.abstractmethod
    def process(self, inputs: Mapping[str, Any]) -> Mapping[str, Any] | Awaitable[Mapping[str, Any]]:
        """Do the work: map validated inputs to outputs (a plain or an ``async`` method)."""

    def run(self, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        """Validate ``inputs``, process them, validate and return the outputs."""
        self._check("input", inputs)
        outputs = self.process(inputs)
        if inspect.isawaitable(outputs):
            close = getattr(outputs, "close", None)
            if close is not None:
                close()
            raise TypeError(f"{self.name or type(self).__name__}.process is async: call arun()")
        self._check("output", outputs)
        return outputs

    async def arun(self, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        """Like :meth:`run`, awaiting ``process`` if it is ``async``."""
        self._check("input", inputs)
        outputs = self.process(inputs)
        if inspect.isawaitable(outputs):
            outputs = await outputs
        self._check("output", outputs)
        return outputs

    def execute(self, inputs: Mapping[str, Any], context: NodeContext) -> Any:
        """Run as a workflow node: :meth:`run`, or :meth:`arun` when ``process`` is ``async``."""
        if inspect.iscoroutinefunction(self.process):
            return self.arun(inputs)
        return self.run(inputs)

    def describe(self) -> dict[str, Any]:
        """Name, summary and schemas, for registries and UIs."""
        return {
            "name": self.name,
            "summary": self.summary,
            "input_schema": dict(self.input_schema),
            "output_schema": dict(self.output_schema),
        }

    def _check(self, which: str, value: Any) -> None:
        key = (type(self), which)
        validator = self._validators.get(key)
        if validator is None:
            import jsonschema

            schema = self.input_schema if which == "input" else self.output_schema
            validator = jsonschema.validators.validator_for(schema)(schema)
            self._validators[key] = validator
        error = next(iter(sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))), None)
        if error is not None:
            path = "/".join(str(p) for p in error.absolute_path) or "(root)"
            raise ValidationError(
                f"{self.name or type(self).__name__}: invalid {which} at {path}: {error.message}",
                code=f"operator.invalid_{which}",
                context={"operator": self.name, "path": path, "rule": error.validator},
            )
