"""Workflow templates: typed parameters, placeholders, instantiation, and a searchable library.

A :class:`Template` is a workflow body with ``{{ placeholders }}`` plus the :class:`Parameter`
declarations that fill them. Template files are JSON::

    {
      "schema_version": "1.0",
      "id": "summarize-document", "name": "Summarize a document", "version": "1.2.0",
      "description": "...", "tags": ["nlp"], "category": "text",
      "parameters": [
        {"name": "model", "type": "model_id", "default": "local/llama-3-8b",
         "ui": {"widget": "model-picker", "group": "Model", "order": 1}},
        {"name": "max_words", "type": "integer", "required": false, "default": 200,
         "constraints": {"minimum": 10, "maximum": 2000}}
      ],
      "workflow": { "name": "Summary of {{ title }}", "nodes": [...], "edges": [...] }
    }

**Placeholders.** A string that is exactly ``"{{ name }}"`` becomes the parameter's value with
its type (a number stays a number, a list stays a list). Inside a longer string,
``{{ name }}`` is replaced by the value as text (JSON for non-strings). A filter may follow:
``{{ name | upper }}`` (``upper``, ``lower``, ``title``, ``strip``, ``slug``, ``json``, ``str``).
Text that does not match ``{{ identifier [| filter] }}`` is left alone. In an edge's
``condition`` a value is never expression source: outside quotes a placeholder becomes one
literal (string, number, boolean, ``null`` or list; ``json`` adds nothing there), inside a
quoted string it becomes escaped text, so ``x' or true or 'y`` stays a string. Only an
``expression`` parameter is inserted as source, parenthesised.

**Parameter types** (:class:`ParamType`): ``string``, ``integer``, ``number``, ``boolean``,
``enum`` (``constraints.choices``), ``array`` (``constraints.items``), ``object``,
``model_id``, ``port_type``, ``expression``. Constraints: ``min_length``/``max_length`` (strings
and arrays), ``minimum``/``maximum``, ``pattern`` (RE2 syntax, matched in linear time: no
backreferences or lookaround), ``choices``, and ``validator``, the name of a
custom check passed to :meth:`Template.instantiate`. Each parameter compiles to a JSON Schema
(:meth:`Parameter.json_schema`, with its UI hints under ``x-ui``) that checks values and is
enough to generate a form (:meth:`Template.form_schema`).

**Library.** :class:`TemplateLibrary` keeps several versions per template id, resolves version
constraints (:mod:`symphony_workflow._versioning`) and answers ranked text searches over names,
tags and descriptions from an in-memory inverted index.
"""

from __future__ import annotations

import bisect
import copy
import enum
import functools
import json
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import cattrs

from symphony.commons.errors import ConflictError, NotFoundError, ValidationError
from symphony.commons.validation import TEMPLATE_ID
from symphony_workflow._errors import WorkflowValidationError
from symphony_workflow._expr import Expression
from symphony_workflow._model import Workflow, is_semver
from symphony_workflow._serialization import SCHEMA_VERSION, from_document, json_problem
from symphony_workflow._types import DEFAULT_TYPES, TypeSystem
from symphony_workflow._validation import Issue, NodeTypeLookup, ValidationReport, validate
from symphony_workflow._versioning import SemVer, VersionConstraint

__all__ = [
    "Constraints",
    "Instantiation",
    "ParamType",
    "Parameter",
    "SearchHit",
    "Template",
    "TemplateLibrary",
    "UIHints",
    "load_template",
]

TEMPLATE_SCHEMA_VERSION = "1.0"
"""The template file format version this package reads and writes."""

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\|\s*([A-Za-z_]+)\s*)?\}\}")
_MODEL_ID = r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,255}$"
_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")

Validator = Callable[[Any], str | None]
"""A custom parameter check: returns an error message, or ``None`` when the value is fine."""


class ParamType(enum.StrEnum):
    """The type of a template parameter."""

    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    ENUM = "enum"
    ARRAY = "array"
    OBJECT = "object"
    MODEL_ID = "model_id"
    PORT_TYPE = "port_type"
    EXPRESSION = "expression"


_JSON_TYPES = {
    ParamType.STRING: "string",
    ParamType.INTEGER: "integer",
    ParamType.NUMBER: "number",
    ParamType.BOOLEAN: "boolean",
    ParamType.ARRAY: "array",
    ParamType.OBJECT: "object",
    ParamType.MODEL_ID: "string",
    ParamType.PORT_TYPE: "string",
    ParamType.EXPRESSION: "string",
}


@attrs.frozen
class Constraints:
    """Rules a parameter value must follow (all optional)."""

    min_length: int | None = None
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None
    choices: tuple[Any, ...] | None = None
    items: ParamType | None = None
    validator: str | None = None


@attrs.frozen
class UIHints:
    """How a form should show a parameter."""

    widget: str | None = None
    placeholder: str | None = None
    help: str | None = None
    group: str | None = None
    order: int | None = None


@attrs.frozen
class Parameter:
    """A typed template parameter with constraints, a default and UI hints.

    A parameter with a ``default`` is optional whatever ``required`` says.
    """

    name: str
    type: ParamType
    description: str = ""
    required: bool = True
    default: Any = None
    constraints: Constraints = Constraints()
    ui: UIHints = UIHints()
    _validator: Any = attrs.field(default=None, init=False, eq=False, repr=False, alias="_validator")

    @property
    def optional(self) -> bool:
        """True if the parameter may be left out."""
        return not self.required or self.default is not None

    def json_schema(self) -> dict[str, Any]:
        """The JSON Schema of this parameter's values, with ``title``, ``default`` and ``x-ui`` hints."""
        c = self.constraints
        schema: dict[str, Any] = {"title": self.name}
        if self.description:
            schema["description"] = self.description
        if self.type is ParamType.ENUM:
            schema["enum"] = list(c.choices or ())
        else:
            schema["type"] = _JSON_TYPES[self.type]
            if c.choices is not None:
                schema["enum"] = list(c.choices)
        if self.type is ParamType.ARRAY:
            if c.items is not None:
                schema["items"] = Parameter("item", c.items).json_schema() | {"title": "item"}
            if c.min_length is not None:
                schema["minItems"] = c.min_length
            if c.max_length is not None:
                schema["maxItems"] = c.max_length
        elif _JSON_TYPES.get(self.type) == "string":
            if c.min_length is not None:
                schema["minLength"] = c.min_length
            if c.max_length is not None:
                schema["maxLength"] = c.max_length
            if c.pattern is not None:
                schema["pattern"] = c.pattern
            elif self.type is ParamType.MODEL_ID:
                schema["pattern"] = _MODEL_ID
        if c.minimum is not None:
            schema["minimum"] = c.minimum
        if c.maximum is not None:
            schema["maximum"] = c.maximum
        if self.default is not None:
            schema["default"] = self.default
        ui = {k: v for k, v in attrs.asdict(self.ui).items() if v is not None}
        if ui:
            schema["x-ui"] = ui
        return schema

    def check(self, value: Any, *, validators: Mapping[str, Validator] | None = None) -> None:
        """Raise :class:`ValidationError` (naming the parameter) if ``value`` breaks a rule."""
        import jsonschema

        validator = self._validator
        if validator is None:
            schema = self.json_schema()
            validator = _linear_time_validator(jsonschema.validators.validator_for(schema))(schema)
            object.__setattr__(self, "_validator", validator)
        problem = json_problem(value)
        if problem is not None:
            raise self._error(f"value is not JSON: {problem[1]}", value)
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
        if errors:
            raise self._error(errors[0].message, value)
        if self.type is ParamType.PORT_TYPE and not DEFAULT_TYPES.is_valid(value):
            raise self._error(f"{value!r} is not a port type (any, text, number, list[T], ...)", value)
        if self.type is ParamType.EXPRESSION:
            try:
                Expression.parse(value)
            except ValidationError as err:
                raise self._error(
                    f"expression does not parse: {err.message} (column {err.context.get('column')})", value
                ) from None
        name = self.constraints.validator
        if name is not None:
            fn = (validators or {}).get(name)
            if fn is None:
                raise ValidationError(
                    f"parameter {self.name!r} needs the custom validator {name!r}, which was not given",
                    code="workflow.template.unknown_validator",
                    context={"parameter": self.name, "validator": name},
                )
            message = fn(value)
            if message:
                raise self._error(message, value)

    def _error(self, message: str, value: Any) -> ValidationError:
        try:
            shown = repr(value)
        except RecursionError:  # a value nested deeper than the interpreter's stack
            shown = f"<{type(value).__name__} nested too deeply to show>"
        return ValidationError(
            f"parameter {self.name!r}: {message}",
            code="workflow.template.invalid_parameter",
            context={"parameter": self.name, "value": shown if len(shown) <= 200 else shown[:200] + "..."},
        )


@attrs.frozen
class Instantiation:
    """The result of :meth:`Template.instantiate`: the workflow, the defaults used, and warnings."""

    workflow: Workflow
    values: Mapping[str, Any]
    applied_defaults: Mapping[str, Any]
    warnings: tuple[str, ...] = ()


def _strict(kind: type) -> Callable[[Any, type], Any]:
    def hook(value: Any, _: type) -> Any:
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise TypeError(f"expected {kind.__name__}, found {type(value).__name__}")
        return value

    return hook


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True)
    for kind in (str, int, float, bool):
        conv.register_structure_hook(kind, _strict(kind))
    conv.register_structure_hook(Any, lambda v, _: v)

    def enum_hook(value: Any, cls: type[enum.Enum]) -> Any:
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"expected one of {[m.value for m in cls]}, found {value!r}") from None

    conv.register_structure_hook(ParamType, enum_hook)
    conv.register_structure_hook_func(
        lambda t: t == dict[str, Any], lambda v, _: v if isinstance(v, dict) else _raise_type("an object", v)
    )
    conv.register_structure_hook_func(
        lambda t: t == tuple[Any, ...] | None,
        lambda v, _: None if v is None else tuple(v) if isinstance(v, list) else _raise_type("an array", v),
    )
    return conv


def _raise_type(expected: str, value: Any) -> Any:
    raise TypeError(f"expected {expected}, found {type(value).__name__}")


_CONVERTER = _make_converter()
_FILTERS: dict[str, Callable[[Any], Any]] = {
    "upper": lambda v: _text(v).upper(),
    "lower": lambda v: _text(v).lower(),
    "title": lambda v: _text(v).title(),
    "strip": lambda v: _text(v).strip(),
    "slug": lambda v: re.sub(r"[^a-z0-9]+", "-", _text(v).lower()).strip("-"),
    "json": lambda v: json.dumps(v, ensure_ascii=False),
    "str": lambda v: _text(v),
}


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False)


@attrs.frozen
class Template:
    """A parameterised workflow; see the module docstring for the file format."""

    id: str
    name: str
    version: str
    workflow: dict[str, Any]
    description: str = ""
    category: str | None = None
    tags: tuple[str, ...] = ()
    author: str | None = None
    icon: str | None = None
    docs_url: str | None = None
    parameters: tuple[Parameter, ...] = ()
    examples: tuple[dict[str, Any], ...] = ()

    @property
    def semver(self) -> SemVer:
        """The version, parsed."""
        return SemVer.parse(self.version)

    def parameter(self, name: str) -> Parameter:
        """The parameter ``name``; :class:`NotFoundError` if undeclared."""
        for p in self.parameters:
            if p.name == name:
                return p
        raise NotFoundError(
            f"template {self.id!r} has no parameter {name!r}",
            code="workflow.template.unknown_parameter",
            context={"template": self.id, "parameter": name, "known": [p.name for p in self.parameters]},
        )

    # -- (de)serialization ------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str | None = None) -> Template:
        """Build and check a template from its JSON form; every problem is reported with its path."""
        where = {"file": source} if source else {}
        if not isinstance(data, Mapping):
            raise WorkflowValidationError(
                "a template must be a JSON object",
                code="workflow.template.invalid",
                context={"path": "$", **where},
            )
        body = dict(data)
        version = body.pop("schema_version", None)
        if version != TEMPLATE_SCHEMA_VERSION:
            raise ValidationError(
                f"unsupported template schema_version {version!r}",
                code="workflow.template.schema_version",
                context={
                    "path": "$.schema_version",
                    "expected": TEMPLATE_SCHEMA_VERSION,
                    "found": repr(version),
                    **where,
                },
            )
        shape = [
            Issue("workflow.template.invalid", f"expected an array at $.{key}", path=f"$.{key}")
            for key in ("tags", "parameters", "examples")
            if key in body and not isinstance(body[key], list)
        ]
        if shape:
            ValidationReport(tuple(shape)).raise_for_errors(what="template")
        try:
            template = _CONVERTER.structure(body, cls)
        except Exception as exc:
            messages = (
                cattrs.transform_error(exc, path="$")
                if isinstance(exc, cattrs.BaseValidationError)
                else [f"{exc} @ $"]
            )
            issues = [_issue_from_cattrs(m) for m in messages]
            ValidationReport(tuple(issues)).raise_for_errors(what="template")
            raise  # pragma: no cover - raise_for_errors raised
        issues = template._semantic_issues()
        if issues:
            try:
                ValidationReport(tuple(issues)).raise_for_errors(what=f"template {template.id!r}")
            except ValidationError as err:
                err.context.update(where)
                raise
        return template

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (fields at their defaults left out)."""
        raw = _CONVERTER.unstructure(self)
        raw["workflow"] = copy.deepcopy(self.workflow)
        raw["examples"] = copy.deepcopy(list(self.examples))
        out: dict[str, Any] = {"schema_version": TEMPLATE_SCHEMA_VERSION}
        for key, value in raw.items():
            if key in ("workflow",):
                out[key] = value
            elif key == "parameters":
                out[key] = [_param_dict(p) for p in self.parameters]
            elif value not in (None, "", [], ()):
                out[key] = value
        return out

    def _semantic_issues(self) -> list[Issue]:
        issues: list[Issue] = []
        try:
            TEMPLATE_ID.check(self.id, "id")
        except ValidationError:
            issues.append(Issue("workflow.template.invalid", f"invalid template id {self.id!r}", path="$.id"))
        if not is_semver(self.version):
            issues.append(
                Issue(
                    "workflow.template.invalid",
                    f"version {self.version!r} is not a semantic version",
                    path="$.version",
                )
            )
        seen: set[str] = set()
        for i, p in enumerate(self.parameters):
            path = f"$.parameters[{i}]"
            if not _PARAM_NAME.fullmatch(p.name):
                issues.append(
                    Issue(
                        "workflow.template.invalid", f"invalid parameter name {p.name!r}", path=f"{path}.name"
                    )
                )
            if p.name in seen:
                issues.append(
                    Issue(
                        "workflow.template.invalid",
                        f"parameter {p.name!r} is declared twice",
                        path=f"{path}.name",
                    )
                )
            seen.add(p.name)
            c = p.constraints
            if p.type is ParamType.ENUM and not c.choices:
                issues.append(
                    Issue(
                        "workflow.template.invalid",
                        f"enum parameter {p.name!r} needs choices",
                        path=f"{path}.constraints",
                    )
                )
            if c.items is not None and p.type is not ParamType.ARRAY:
                issues.append(
                    Issue(
                        "workflow.template.invalid",
                        "only array parameters have items",
                        path=f"{path}.constraints.items",
                    )
                )
            if c.pattern is not None:
                reason = _pattern_problem(c.pattern)
                if reason is not None:
                    issues.append(
                        Issue(
                            "workflow.template.bad_pattern",
                            f"parameter {p.name!r}: pattern {c.pattern!r} is not supported: {reason} "
                            "(patterns use RE2 syntax: no backreferences, no lookaround)",
                            path=f"{path}.constraints.pattern",
                        )
                    )
                    continue
            if p.default is not None and c.validator is None:
                try:
                    p.check(p.default)
                except ValidationError as err:
                    issues.append(
                        Issue("workflow.template.invalid", f"default: {err.message}", path=f"{path}.default")
                    )
        if not isinstance(self.workflow, dict):
            issues.append(Issue("workflow.template.invalid", "workflow must be an object", path="$.workflow"))
            return issues
        problem = json_problem(self.workflow)
        if problem is not None:
            issues.append(Issue("workflow.template.invalid", problem[1], path="$.workflow" + problem[0]))
            return issues
        for path, name, filt in _placeholders(self.workflow, "$.workflow"):
            if name not in seen:
                issues.append(
                    Issue(
                        "workflow.template.unknown_placeholder",
                        f"placeholder {{{{ {name} }}}} names no declared parameter",
                        path=path,
                        details={"placeholder": name},
                    )
                )
            if filt is not None and filt not in _FILTERS:
                issues.append(
                    Issue(
                        "workflow.template.unknown_filter",
                        f"unknown filter {filt!r} (known: {', '.join(sorted(_FILTERS))})",
                        path=path,
                    )
                )
        return issues

    def placeholders(self) -> set[str]:
        """Every parameter name the workflow body refers to."""
        return {name for _, name, _ in _placeholders(self.workflow, "$.workflow")}

    def form_schema(self) -> dict[str, Any]:
        """A JSON Schema object for all parameters (with ``x-ui`` hints), ready to render a form."""
        ordered = sorted(
            self.parameters,
            key=lambda p: (p.ui.group or "", p.ui.order if p.ui.order is not None else 1 << 30),
        )
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": self.name,
            "description": self.description,
            "type": "object",
            "additionalProperties": False,
            "required": [p.name for p in self.parameters if not p.optional],
            "properties": {p.name: p.json_schema() for p in ordered},
        }

    # -- instantiation ----------------------------------------------------------------------------

    def instantiate(
        self,
        values: Mapping[str, Any] | None = None,
        *,
        overrides: Mapping[str, Any] | None = None,
        workflow_id: str | None = None,
        validators: Mapping[str, Validator] | None = None,
        node_types: NodeTypeLookup | None = None,
        types: TypeSystem = DEFAULT_TYPES,
        check: bool = True,
    ) -> Instantiation:
        """Fill the placeholders with ``values`` (plus defaults), apply ``overrides``, build the workflow.

        ``overrides`` maps JSON Pointers into the workflow body (``/nodes/0/config/temperature``)
        to values set after substitution. Every parameter problem is reported together;
        nothing is changed on failure (the template is immutable). With ``check`` the result
        must pass :func:`~symphony_workflow._validation.validate`.
        """
        given = dict(values or {})
        issues: list[Issue] = []
        declared = {p.name: p for p in self.parameters}
        for name in given:
            if name not in declared:
                issues.append(
                    Issue(
                        "workflow.template.unknown_parameter",
                        f"template {self.id!r} has no parameter {name!r}",
                        details={"parameter": name, "known": sorted(declared)},
                    )
                )
        resolved: dict[str, Any] = {}
        applied: dict[str, Any] = {}
        warnings: list[str] = []
        used = self.placeholders()
        for p in self.parameters:
            if p.name in given:
                try:
                    p.check(given[p.name], validators=validators)
                except ValidationError as err:
                    issues.append(
                        Issue(
                            err.code,
                            err.message,
                            details={"parameter": p.name, "value": err.context.get("value")},
                        )
                    )
                    continue
                resolved[p.name] = given[p.name]
            elif p.default is not None:
                resolved[p.name] = copy.deepcopy(p.default)
                applied[p.name] = p.default
            elif p.required:
                issues.append(
                    Issue(
                        "workflow.template.missing_parameter",
                        f"missing required parameter {p.name!r} ({p.type.value})",
                        details={"parameter": p.name},
                    )
                )
            else:
                resolved[p.name] = None
                if p.name in used:
                    warnings.append(
                        f"optional parameter {p.name!r} was not given; its placeholders became null/empty"
                    )
        if issues:
            ValidationReport(tuple(issues)).raise_for_errors(what=f"parameters for template {self.id!r}")
        expression_params = frozenset(p.name for p in self.parameters if p.type is ParamType.EXPRESSION)
        body = _substitute_body(self.workflow, resolved, expression_params)
        for pointer, value in (overrides or {}).items():
            problem = json_problem(value)
            if problem is not None:
                raise ValidationError(
                    f"override {pointer!r}: {problem[1]}",
                    code="workflow.template.bad_override",
                    context={"pointer": pointer, "template": self.id},
                )
            _set_pointer(body, pointer, copy.deepcopy(value))
        body["id"] = workflow_id or str(uuid.uuid4())
        body.setdefault("name", self.name)
        metadata = body.setdefault("metadata", {})
        if isinstance(metadata, dict):
            custom = metadata.setdefault("custom", {})
            if isinstance(custom, dict):
                custom.setdefault(
                    "template",
                    {"id": self.id, "version": self.version, "parameters": copy.deepcopy(resolved)},
                )
        try:
            wf = from_document({"schema_version": SCHEMA_VERSION, "workflow": body}, types=types)
        except ValidationError as err:
            err.context.setdefault("template", self.id)
            raise
        if check:
            report = validate(wf, node_types=node_types)
            try:
                report.raise_for_errors(what=f"workflow from template {self.id!r}")
            except ValidationError as err:
                err.context.setdefault("template", self.id)
                raise
            warnings.extend(w.message for w in report.warnings)
        return Instantiation(wf, resolved, applied, tuple(warnings))


def _issue_from_cattrs(message: str) -> Issue:
    text, _, path = message.rpartition(" @ ")
    if not text:
        text, path = message, "$"
    return Issue("workflow.template.invalid", f"{text} at {path}", path=path)


def _param_dict(p: Parameter) -> dict[str, Any]:
    out: dict[str, Any] = {"name": p.name, "type": p.type.value}
    if p.description:
        out["description"] = p.description
    if not p.required:
        out["required"] = False
    if p.default is not None:
        out["default"] = copy.deepcopy(p.default)
    c = {k: v for k, v in attrs.asdict(p.constraints).items() if v is not None}
    if "choices" in c:
        c["choices"] = copy.deepcopy(list(c["choices"]))
    if "items" in c:
        c["items"] = c["items"].value
    if c:
        out["constraints"] = c
    ui = {k: v for k, v in attrs.asdict(p.ui).items() if v is not None}
    if ui:
        out["ui"] = ui
    return out


def _placeholders(value: Any, path: str) -> Iterator[tuple[str, str, str | None]]:
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        v, p = stack.pop()
        if isinstance(v, str):
            for m in _PLACEHOLDER.finditer(v):
                yield p, m.group(1), m.group(2)
        elif isinstance(v, dict):
            stack.extend((item, f"{p}.{k}") for k, item in v.items())
        elif isinstance(v, list):
            stack.extend((item, f"{p}[{i}]") for i, item in enumerate(v))


def _substitute(value: Any, values: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value)
        if whole is not None:
            return _apply(values.get(whole.group(1)), whole.group(2), whole=True)
        if "{{" not in value:
            return value
        return _PLACEHOLDER.sub(
            lambda m: _text(_apply(values.get(m.group(1)), m.group(2), whole=False)), value
        )
    if isinstance(value, dict):
        return {k: _substitute(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, values) for v in value]
    return value


def _apply(value: Any, filt: str | None, *, whole: bool) -> Any:
    if filt is None:
        return copy.deepcopy(value) if whole else value
    return _FILTERS[filt](value)


def _substitute_body(
    workflow: Mapping[str, Any], values: Mapping[str, Any], expression_params: frozenset[str]
) -> dict[str, Any]:
    """The workflow body with its placeholders filled; in edge conditions values become literals."""
    body: dict[str, Any] = {}
    for key, value in workflow.items():
        if key == "edges" and isinstance(value, list):
            body[key] = [
                {
                    k: _substitute_condition(v, values, expression_params)
                    if k == "condition" and isinstance(v, str)
                    else _substitute(v, values)
                    for k, v in edge.items()
                }
                if isinstance(edge, dict)
                else _substitute(edge, values)
                for edge in value
            ]
        else:
            body[key] = _substitute(value, values)
    return body


_TOKEN_CHARS = frozenset("_.'\"")


def _substitute_condition(text: str, values: Mapping[str, Any], expression_params: frozenset[str]) -> str:
    """Fill the placeholders of a condition so that no value can change what the condition means.

    Outside a string literal a placeholder becomes one literal of the expression language (a
    string, number, boolean, ``null`` or list; ``json`` adds nothing there); inside a quoted
    string it becomes escaped text of that string. Only an ``expression`` parameter is source,
    and it goes in parenthesised (it was checked to parse on its own).
    """
    if "{{" not in text:
        return text
    out: list[str] = []
    quote: str | None = None
    i, n = 0, len(text)
    while i < n:
        m = _PLACEHOLDER.match(text, i) if text.startswith("{{", i) else None
        if m is not None:
            name, filt = m.group(1), m.group(2)
            value = values.get(name)
            if quote is not None:
                out.append(_escape_in_string(_text(_apply(value, filt, whole=False)), quote))
            else:
                if name in expression_params and filt is None and isinstance(value, str):
                    literal = f"({value})"
                else:
                    literal = _expr_literal(value if filt in (None, "json") else _FILTERS[filt](value), name)
                before = out[-1][-1:] if out else ""
                after = text[m.end() : m.end() + 1]
                if before and (before.isalnum() or before in _TOKEN_CHARS):
                    literal = " " + literal
                if after and (after.isalnum() or after in _TOKEN_CHARS):
                    literal += " "
                out.append(literal)
            i = m.end()
            continue
        ch = text[i]
        if quote is None:
            if ch in "'\"":
                quote = ch
        elif ch == "\\":
            out.append(text[i : i + 2])
            i += 2
            continue
        elif ch == quote:
            quote = None
        out.append(ch)
        i += 1
    return "".join(out)


def _escape_in_string(text: str, quote: str) -> str:
    return (
        text.replace("\\", "\\\\")
        .replace(quote, "\\" + quote)
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )


def _expr_literal(value: Any, name: str) -> str:
    """``value`` written as a literal of the expression language (negative numbers parenthesised)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        text = json.dumps(value)
        return f"({text})" if text.startswith("-") else text
    if isinstance(value, str):
        return '"' + _escape_in_string(value, '"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_expr_literal(v, name) for v in value) + "]"
    raise ValidationError(
        f"parameter {name!r}: {type(value).__name__} values cannot be written in a condition "
        "(text, numbers, booleans, null and lists can)",
        code="workflow.template.not_a_literal",
        context={"parameter": name},
    )


@functools.lru_cache(maxsize=256)
def _re2(pattern: str) -> Any:
    """``pattern`` compiled by RE2, whose matching time is linear in the input; ``re2.error`` if unsupported."""
    import re2

    options = re2.Options()
    options.log_errors = False
    return re2.compile(pattern, options)


def _pattern_problem(pattern: str) -> str | None:
    """Why RE2 cannot compile ``pattern``, or ``None`` when it can."""
    import re2

    try:
        _re2(pattern)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        return reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
    except UnicodeError:
        return "it is not valid Unicode"
    return None


_LINEAR_VALIDATORS: dict[Any, Any] = {}


def _linear_time_validator(cls: Any) -> Any:
    """The jsonschema validator class ``cls`` with ``pattern`` matched by RE2 instead of ``re``.

    Python's ``re`` backtracks: a pattern such as ``^(a+)+$`` takes exponential time on a crafted
    value. Parameter patterns come from template files, so they are matched in linear time.
    """
    extended = _LINEAR_VALIDATORS.get(cls)
    if extended is None:
        import jsonschema

        def pattern(validator: Any, patrn: str, instance: Any, schema: Any) -> Iterator[Any]:
            if not validator.is_type(instance, "string"):
                return
            reason = _pattern_problem(patrn)
            if reason is not None:
                yield jsonschema.ValidationError(f"pattern {patrn!r} is not supported: {reason}")
            elif _re2(patrn).search(instance) is None:
                yield jsonschema.ValidationError(f"{instance!r} does not match {patrn!r}")

        extended = jsonschema.validators.extend(cls, {"pattern": pattern})
        _LINEAR_VALIDATORS[cls] = extended
    return extended


def _set_pointer(doc: dict[str, Any], pointer: str, value: Any) -> None:
    def bad(why: str) -> ValidationError:
        return ValidationError(
            f"override {pointer!r}: {why}",
            code="workflow.template.bad_override",
            context={"pointer": pointer},
        )

    if not isinstance(pointer, str) or not pointer.startswith("/"):
        raise bad("a JSON Pointer starts with '/'")
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/")]
    target: Any = doc
    for part in parts[:-1]:
        if isinstance(target, dict):
            if part not in target:
                raise bad(f"no field {part!r}")
            target = target[part]
        elif isinstance(target, list):
            if not part.isdigit() or int(part) >= len(target):
                raise bad(f"no index {part!r}")
            target = target[int(part)]
        else:
            raise bad(f"cannot step into {type(target).__name__} at {part!r}")
    last = parts[-1]
    if isinstance(target, dict):
        target[last] = value
    elif isinstance(target, list):
        if last == "-":
            target.append(value)
        elif last.isdigit() and int(last) < len(target):
            target[int(last)] = value
        else:
            raise bad(f"no index {last!r}")
    else:
        raise bad(f"cannot set a field on {type(target).__name__}")


def load_template(path: str | Path) -> Template:
    """Read and check a template JSON file; errors name the file and the JSON path."""
    from symphony.commons.fs import read_bytes

    p = Path(path)
    raw = read_bytes(p)  # a regular file within the default size limit
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(
            f"template {p} is not UTF-8",
            code="workflow.template.invalid",
            context={"file": str(p), "pos": exc.start},
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"template {p} is not valid JSON: {exc.msg}",
            code="workflow.template.invalid",
            context={"file": str(p), "line": exc.lineno, "column": exc.colno},
        ) from None
    except RecursionError:
        raise ValidationError(
            f"template {p} is nested too deeply", code="workflow.template.invalid", context={"file": str(p)}
        ) from None
    return Template.from_dict(data, source=str(p))


# --- library ----------------------------------------------------------------------------------------


_WORD = re.compile(r"[^\W_]+")
_WEIGHTS = {"id": 4.0, "name": 4.0, "tags": 3.0, "category": 2.0, "description": 1.0, "author": 1.0}


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


@attrs.frozen
class SearchHit:
    """A search result: the template (latest matching version) and its score."""

    template: Template
    score: float


class TemplateLibrary:
    """Templates by id and version, with constraint lookup and ranked search.

    >>> lib = TemplateLibrary()
    >>> len(lib.search("summarize"))
    0
    """

    def __init__(self, templates: Iterable[Template] = ()) -> None:
        self._by_id: dict[str, dict[SemVer, Template]] = {}
        self._postings: dict[str, dict[str, float]] = {}
        self._vocab: list[str] = []
        self._vocab_dirty = False
        for t in templates:
            self.add(t)

    def add(self, template: Template, *, replace: bool = False) -> None:
        """Add a template version; :class:`ConflictError` if that id and version exist, unless ``replace``."""
        versions = self._by_id.setdefault(template.id, {})
        v = template.semver
        if v in versions and not replace:
            raise ConflictError(
                f"template {template.id!r} version {template.version} is already in the library",
                code="workflow.template.duplicate",
                context={"template": template.id, "version": template.version},
            )
        versions[v] = template
        self._reindex(template.id)

    def remove(self, template_id: str, version: str | None = None) -> None:
        """Remove one version, or every version when ``version`` is ``None``."""
        versions = self._by_id.get(template_id)
        if versions is None:
            raise NotFoundError(
                f"no template {template_id!r}",
                code="workflow.template.not_found",
                context={"template": template_id},
            )
        if version is None:
            versions.clear()
        else:
            versions.pop(SemVer.parse(version), None)
        if not versions:
            del self._by_id[template_id]
        self._reindex(template_id)

    def _reindex(self, template_id: str) -> None:
        for entries in self._postings.values():
            entries.pop(template_id, None)
        versions = self._by_id.get(template_id)
        if not versions:
            return
        latest = versions[max(versions)]
        fields = {
            "id": latest.id,
            "name": latest.name,
            "tags": " ".join(t for v in versions.values() for t in v.tags),
            "category": latest.category or "",
            "description": latest.description,
            "author": latest.author or "",
        }
        for field, text in fields.items():
            weight = _WEIGHTS[field]
            for word in _words(text):
                postings = self._postings.get(word)
                if postings is None:
                    postings = {}
                    self._postings[word] = postings
                    self._vocab_dirty = True
                if postings.get(template_id, 0.0) < weight:
                    postings[template_id] = weight

    # -- lookup -----------------------------------------------------------------------------------

    def ids(self) -> list[str]:
        """Every template id, sorted."""
        return sorted(self._by_id)

    def versions(self, template_id: str) -> list[str]:
        """The versions of ``template_id``, oldest first."""
        return [str(v) for v in sorted(self._versions(template_id))]

    def _versions(self, template_id: str) -> dict[SemVer, Template]:
        versions = self._by_id.get(template_id)
        if not versions:
            raise NotFoundError(
                f"no template {template_id!r}",
                code="workflow.template.not_found",
                context={"template": template_id},
                hint="`symphony workflow template list` shows the installed templates",
            )
        return versions

    def get(self, template_id: str, constraint: str | None = None) -> Template:
        """The highest version of ``template_id`` allowed by ``constraint`` (default: latest release)."""
        TEMPLATE_ID.check(template_id, "template_id")
        versions = self._versions(template_id)
        c = VersionConstraint.parse(constraint)
        best = c.best(list(versions))
        if best is None:
            if constraint in (None, "", "*"):
                return versions[max(versions)]  # only pre-releases exist
            raise NotFoundError(
                f"no version of template {template_id!r} matches {constraint!r}",
                code="workflow.template.no_matching_version",
                context={
                    "template": template_id,
                    "constraint": constraint,
                    "versions": self.versions(template_id),
                },
            )
        return versions[best]

    def latest(self, template_id: str) -> Template:
        """The highest version of ``template_id`` (pre-releases included)."""
        versions = self._versions(template_id)
        return versions[max(versions)]

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, template_id: object) -> bool:
        return template_id in self._by_id

    def __iter__(self) -> Iterator[Template]:
        for tid in sorted(self._by_id):
            yield self.latest(tid)

    # -- search -----------------------------------------------------------------------------------

    def search(
        self,
        query: str = "",
        *,
        tags: Iterable[str] = (),
        category: str | None = None,
        author: str | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> list[SearchHit]:
        """Ranked search over id, name, tags, category, description and author (latest versions).

        Every query word must match a word of the template (the last word also as a prefix,
        for search-as-you-type). Names and ids weigh most, then tags, category, description.
        ``tags`` (all required), ``category`` and ``author`` filter exactly (case-insensitive).
        """
        if limit < 0 or offset < 0:
            raise ValidationError(
                "limit and offset must be >= 0",
                code="workflow.template.bad_paging",
                context={"limit": limit, "offset": offset},
            )
        words = _words(query) if isinstance(query, str) else []
        if self._vocab_dirty:
            self._vocab = sorted(self._postings)
            self._vocab_dirty = False
        scores: dict[str, float] | None = None
        for k, word in enumerate(words):
            matched: dict[str, float] = dict(self._postings.get(word, {}))
            if k == len(words) - 1 or not matched:
                lo = bisect.bisect_left(self._vocab, word)
                for candidate in self._vocab[lo : lo + 200]:
                    if not candidate.startswith(word):
                        break
                    if candidate == word:
                        continue
                    for tid, weight in self._postings[candidate].items():
                        partial = weight * 0.6
                        if matched.get(tid, 0.0) < partial:
                            matched[tid] = partial
            if scores is None:
                scores = matched
            else:
                scores = {tid: s + matched[tid] for tid, s in scores.items() if tid in matched}
            if not scores:
                return []
        if scores is None:
            scores = dict.fromkeys(self._by_id, 0.0)
        wanted_tags = {t.lower() for t in tags}
        hits: list[SearchHit] = []
        for tid, score in scores.items():
            t = self.latest(tid)
            if wanted_tags and not wanted_tags <= {x.lower() for x in t.tags}:
                continue
            if category is not None and (t.category or "").lower() != category.lower():
                continue
            if author is not None and (t.author or "").lower() != author.lower():
                continue
            hits.append(SearchHit(t, score))
        hits.sort(key=lambda h: (-h.score, h.template.name.lower(), h.template.id))
        return hits[offset : offset + limit]

    # -- loading ----------------------------------------------------------------------------------

    def load_path(self, path: str | Path, *, replace: bool = False) -> list[Template]:
        """Add the template file ``path``, or every ``*.json`` file in the directory ``path``."""
        p = Path(path)
        files = sorted(p.glob("*.json")) if p.is_dir() else [p]
        loaded = [load_template(f) for f in files]
        for t in loaded:
            self.add(t, replace=replace)
        return loaded

    @classmethod
    def from_paths(cls, paths: Iterable[str | Path]) -> TemplateLibrary:
        """A library with the templates found at ``paths`` (files or directories)."""
        lib = cls()
        for path in paths:
            lib.load_path(path)
        return lib
