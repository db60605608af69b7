"""Run requests: what a caller asks the conductor to run, and how text from a command line or
a bus payload becomes typed parameter values and workflow inputs."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from symphony.commons.errors import ValidationError

__all__ = ["PRIORITIES", "RunRequest", "coerce_input", "coerce_parameter", "split_assignment"]

PRIORITIES = ("critical", "high", "normal", "low", "background")
"""The priority classes a run may ask for (arbitration's, highest first)."""

_MAX_JSON_DEPTH_TEXT = 1_000_000
"""Longest text parsed as JSON for one value (parameters and inputs given on a command line)."""


def _mapping(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ValidationError(
            "expected an object with string keys",
            code="conductor.request.malformed",
            context={"value": repr(value)[:200]},
        )
    return dict(value)


@attrs.frozen
class RunRequest:
    """What to run: exactly one of ``workflow`` (a file path, a workflow document as a dict,
    or a :class:`symphony_workflow.Workflow`) and ``template`` (a template id, filled with
    ``params``); ``inputs`` feed the workflow's input nodes by node id.

    ``run_id`` names the run (a fresh id by default); ``resume`` names an earlier run to finish
    instead of starting a new one (``workflow``/``template`` may then be left out).
    ``priority`` (one of :data:`PRIORITIES`, default ``normal``) is the class arbitration gives
    the run's instrument nodes.
    """

    workflow: Any = None
    template: str | None = None
    template_version: str | None = None
    params: Mapping[str, Any] = attrs.field(factory=dict, converter=_mapping)
    inputs: Mapping[str, Any] = attrs.field(factory=dict, converter=_mapping)
    run_id: str | None = None
    resume: str | None = None
    priority: str = "normal"

    def __attrs_post_init__(self) -> None:
        if self.priority not in PRIORITIES:
            raise ValidationError(
                f"priority must be one of {', '.join(PRIORITIES)}, got {self.priority!r}",
                code="conductor.request.priority",
                context={"priority": repr(self.priority)[:200], "choices": list(PRIORITIES)},
            )
        sources = (self.workflow is not None) + (self.template is not None)
        if sources > 1 or (sources == 0 and self.resume is None):
            raise ValidationError(
                "a run request names exactly one of a workflow and a template (or a run to resume)",
                code="conductor.request.source",
                context={"workflow": self.workflow is not None, "template": self.template},
                hint="give a workflow file, a workflow document, or a template id with its parameters",
            )
        if self.params and self.template is None:
            raise ValidationError(
                "parameters fill a template; this request names no template",
                code="conductor.request.params_without_template",
                context={"params": sorted(self.params)},
            )
        for name in ("template", "template_version", "run_id", "resume"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value or len(value) > 256):
                raise ValidationError(
                    f"{name} must be a non-empty string of at most 256 characters",
                    code="conductor.request.malformed",
                    context={"field": name, "value": repr(value)[:200]},
                )

    @classmethod
    def from_dict(cls, payload: Any) -> RunRequest:
        """A request from a bus payload: ``{"workflow": path-or-document, "template": id,
        "template_version": "^1", "params": {...}, "inputs": {...}, "run_id": ..., "resume": ..., "priority": "high"}``."""
        if not isinstance(payload, Mapping):
            raise ValidationError("a run request must be an object", code="conductor.request.malformed")
        known = {f.name for f in attrs.fields(cls)}
        extra = sorted(str(k) for k in payload if k not in known)
        if extra:
            raise ValidationError(
                f"a run request has no field(s) {extra}",
                code="conductor.request.malformed",
                context={"fields": sorted(known)},
            )
        workflow = payload.get("workflow")
        if workflow is not None and not isinstance(workflow, str | Mapping):
            raise ValidationError(
                "workflow must be a file path or a workflow document",
                code="conductor.request.malformed",
                context={"field": "workflow"},
            )
        return cls(**{k: payload[k] for k in known if k in payload})

    def describe(self) -> str:
        """One line naming what runs (for listings and logs)."""
        if self.template is not None:
            return f"template {self.template}" + (
                f" {self.template_version}" if self.template_version else ""
            )
        if isinstance(self.workflow, str | Path):
            return str(self.workflow)
        if self.workflow is None:
            return f"resume {self.resume}"
        name = getattr(self.workflow, "name", None) or (
            self.workflow.get("workflow", {}).get("name") if isinstance(self.workflow, Mapping) else None
        )
        return f"workflow {name!r}" if name else "workflow"


def split_assignment(text: str, what: str) -> tuple[str, str]:
    """``"name=value"`` -> ``("name", "value")``; :class:`ValidationError` naming ``what`` otherwise."""
    name, eq, raw = text.partition("=")
    name = name.strip()
    if not eq or not name:
        raise ValidationError(
            f"{what} {text!r} must look like NAME=VALUE",
            code=f"conductor.bad_{what}",
            context={what: text},
        )
    return name, raw


def _json(text: str, where: Mapping[str, Any], code: str) -> Any:
    if len(text) > _MAX_JSON_DEPTH_TEXT:
        raise ValidationError(
            f"value too long to parse ({len(text)} characters)", code=code, context=dict(where)
        )
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ValidationError(f"not JSON: {exc}", code=code, context=dict(where)) from None


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def coerce_parameter(template: Any, name: str, text: str) -> Any:
    """The value of template parameter ``name`` written as ``text`` on a command line.

    The parameter's declared type decides: ``integer`` and ``number`` parse numbers, ``boolean``
    takes true/false/yes/no/on/off/1/0, ``array`` and ``object`` parse JSON, the string-like
    types keep the text as it is (so ``--param title=2024`` stays a string). A parameter the
    template does not declare is kept as text: instantiation then names it. A value that does
    not parse raises :class:`ValidationError` naming the parameter and the type it needs.
    """
    declared = {p.name: p for p in getattr(template, "parameters", ())}
    param = declared.get(name)
    if param is None:
        return text
    kind = str(getattr(param.type, "value", param.type))
    where = {"parameter": name, "type": kind, "value": text[:200]}

    def bad(why: str) -> ValidationError:
        return ValidationError(
            f"parameter {name!r} needs {why}, got {text!r}",
            code="conductor.bad_parameter",
            context=where,
            hint=f"`symphony workflow template show {getattr(template, 'id', '')}` lists its parameters",
        )

    stripped = text.strip()
    if kind == "integer":
        try:
            return int(stripped, 10)
        except ValueError:
            raise bad("a whole number") from None
    if kind == "number":
        try:
            value = float(stripped)
        except ValueError:
            raise bad("a number") from None
        if not math.isfinite(value):
            raise bad("a finite number")
        return (
            int(value)
            if value.is_integer() and "." not in stripped and "e" not in stripped.lower()
            else value
        )
    if kind == "boolean":
        lowered = stripped.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise bad("true or false")
    if kind in ("array", "object"):
        value = _json(text, where, "conductor.bad_parameter")
        if not isinstance(value, list if kind == "array" else dict):
            raise bad(f"a JSON {kind}")
        return value
    if kind == "enum":
        choices = tuple(getattr(param.constraints, "choices", None) or ())
        if text in choices or all(isinstance(c, str) for c in choices):
            return text
        try:
            return json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            return text
    return text


def coerce_input(node_id: str, port_type: str, raw: str | bytes) -> Any:
    """The value for input node ``node_id`` whose output port has type ``port_type``.

    ``raw`` is the text after ``NODE=`` or the content of the file after ``NODE=@``. ``text``,
    ``file`` and ``any`` take the text as is; ``bytes`` takes the bytes; ``integer``,
    ``number``, ``bool``, ``json`` and ``list[...]`` parse JSON and must match the type.
    """
    kind = port_type.strip()
    where = {"node": node_id, "type": kind}
    if kind == "bytes":
        return raw if isinstance(raw, bytes) else raw.encode("utf-8")
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationError(
                f"input {node_id!r} ({kind}) must be UTF-8 text", code="conductor.bad_input", context=where
            ) from None
    if kind in ("text", "file", "any"):
        return raw
    value = _json(raw, where, "conductor.bad_input")
    ok = {
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
        "json": True,
    }.get(kind, isinstance(value, list) if kind.startswith("list[") else True)
    if not ok:
        raise ValidationError(
            f"input {node_id!r} needs a {kind} value, got {raw[:80]!r}",
            code="conductor.bad_input",
            context={**where, "value": raw[:200]},
        )
    return value


def input_ports(workflow: Any) -> dict[str, str]:
    """Input node id -> the type of its (first) output port (``any`` when it declares none)."""
    ports: dict[str, str] = {}
    for node in workflow.nodes.values():
        if str(getattr(node.kind, "value", node.kind)) == "input":
            outs: Sequence[Any] = node.outputs
            ports[node.id] = str(outs[0].type) if outs else "any"
    return ports
