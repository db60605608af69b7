"""``symphony workflow``: validate, show, render, convert and diff workflows; list and use templates.

Every command takes ``--json`` for machine-readable output. Errors go to stderr as
``error: <message>`` followed by where (file, JSON path, node, edge, column) and exit with
status 1; with ``--json`` the error's wire form is printed to stdout instead.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from symphony.commons.errors import SymphonyError, ValidationError
from symphony.commons.fs import atomic_write
from symphony_workflow._dag import critical_path, diff, levels
from symphony_workflow._model import NodeKind, Workflow
from symphony_workflow._render import FORMATS
from symphony_workflow._serialization import detect_format, json_schema
from symphony_workflow._service import WorkflowService
from symphony_workflow._validation import Issue, ValidationOptions

__all__ = ["workflow"]

F = TypeVar("F", bound=Callable[..., Any])

_CONVERT_FORMATS = ("json", "json-pretty", "binary", "binary-zstd")


def _json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout.")(fn)


def _service(extra_template_paths: Iterable[str] = (), node_types: Iterable[str] = ()) -> WorkflowService:
    """The kernel's workflow service inside ``symphony``; a standalone one otherwise."""
    from symphony.cli import current_kernel

    service: WorkflowService | None = None
    kernel = current_kernel(required=False)
    if kernel is not None:
        service = kernel.service("workflow")
    if service is None:
        service = WorkflowService()
    extra = set(node_types)
    if extra:
        base = service.node_type_lookup()
        known = extra | (set(base) if isinstance(base, set | frozenset) else set())
        service = WorkflowService(
            service.kernel,
            max_nodes=service.max_nodes,
            template_paths=service.template_paths,
            bus_events=service.bus_events,
            node_types=known,
            types=service.types,
        )
    for path in extra_template_paths:
        service.add_template_path(path)
    return service


def _fail(err: SymphonyError, as_json: bool) -> NoReturn:
    if as_json:
        click.echo(json.dumps({"ok": False, "error": err.to_wire()}, indent=2, default=str))
    else:
        lines = [f"error: {err.message}"]
        ctx = dict(err.context)
        issues = ctx.pop("issues", None)
        for key in (
            "file",
            "path",
            "node",
            "edge",
            "port",
            "column",
            "line",
            "parameter",
            "template",
            "cycle",
        ):
            if key in ctx:
                lines.append(f"  {key}: {ctx.pop(key)}")
        for key, value in ctx.items():
            if key in ("expected", "found", "expression", "allowed", "available"):
                lines.append(f"  {key}: {value}")
        if isinstance(issues, list) and len(issues) > 1:
            lines.append(f"  all {len(issues)} problems:")
            for issue in issues[:50]:
                where = _where(issue)
                lines.append(f"    - {issue.get('message')}{'  (' + where + ')' if where else ''}")
        if err.hint:
            lines.append(f"  hint: {err.hint}")
        lines.append(f"  code: {err.code}")
        click.echo("\n".join(lines), err=True)
    sys.exit(1)


def _where(issue: dict[str, Any]) -> str:
    parts = [f"{k}={issue[k]}" for k in ("node", "edge", "port", "column") if issue.get(k) is not None]
    if issue.get("path") and issue["path"] not in issue.get("message", ""):
        parts.insert(0, str(issue["path"]))
    return " ".join(parts)


def _run(as_json: bool, fn: Callable[[], None]) -> None:
    try:
        fn()
    except SymphonyError as err:
        _fail(err, as_json)


def _load(service: WorkflowService, path: str, *, strict: bool = False) -> Workflow:
    return service.load(path, strict=strict)


@click.group("workflow")
def workflow() -> None:
    """Validate, render and convert workflows; list and instantiate templates.

    A workflow file is JSON (schema version 1.0; `symphony workflow schema` prints the JSON
    Schema) or the compact binary form written by `convert`. Examples, from a clone of the
    repository:

    \b
      symphony workflow validate --strict examples/workflows/route-by-length.json
      symphony workflow render examples/workflows/route-by-length.json --format mermaid
      symphony workflow convert examples/workflows/text-report.json report.swf --to binary
      symphony workflow template instantiate document-stats --path examples/templates -p title=Report
    """


@workflow.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@click.option(
    "--schema", "schema_check", is_flag=True, help="Also check each document against the JSON Schema."
)
@click.option(
    "--node-type",
    "node_types",
    multiple=True,
    metavar="NAME",
    help="Treat NAME as an installed node type (repeatable), e.g. when validating in CI.",
)
@click.option("--allow-orphans", is_flag=True, help="Do not warn about nodes without edges.")
@_json_option
def validate_cmd(
    files: tuple[str, ...],
    strict: bool,
    schema_check: bool,
    node_types: tuple[str, ...],
    allow_orphans: bool,
    as_json: bool,
) -> None:
    """Check workflow FILES: structure, types, cycles, conditions, inputs, node types.

    Prints every error and warning with its location. Exit status 0 when all files are
    valid, 1 otherwise (with --strict, warnings count too). Node types are checked against
    the installed plugins when run inside `symphony`.
    """
    results: list[dict[str, Any]] = []
    failed = False
    try:
        service = _service(node_types=node_types)
    except SymphonyError as err:
        _fail(err, as_json)
    for file in files:
        entry: dict[str, Any] = {"file": file}
        try:
            wf = _load(service, file, strict=schema_check)
        except SymphonyError as err:
            failed = True
            entry.update({"valid": False, "errors": _issues_of(err), "warnings": []})
            results.append(entry)
            continue
        report = service.validate(wf, options=ValidationOptions(allow_orphans=allow_orphans))
        ok = report.valid and not (strict and report.warnings)
        failed = failed or not ok
        entry.update(report.to_dict())
        entry["valid"] = ok
        entry["workflow"] = {"id": wf.id, "name": wf.name, "nodes": len(wf.nodes), "edges": len(wf.edges)}
        results.append(entry)
    if as_json:
        click.echo(
            json.dumps({"ok": not failed, "results": results}, indent=2, ensure_ascii=False, default=str)
        )
    else:
        for entry in results:
            status = "valid" if entry["valid"] else "INVALID"
            summary = entry.get("workflow")
            size = f" ({_count(summary['nodes'], 'node')}, {_count(summary['edges'], 'edge')})" if summary else ""
            click.echo(f"{entry['file']}: {status}{size}", err=not entry["valid"])
            for issue in entry["errors"]:
                where = _where(issue)
                click.echo(f"  error: {issue['message']}" + (f"  [{where}]" if where else ""), err=True)
            for issue in entry["warnings"]:
                where = _where(issue)
                click.echo(f"  warning: {issue['message']}" + (f"  [{where}]" if where else ""), err=True)
    if failed:
        sys.exit(1)


def _issues_of(err: SymphonyError) -> list[dict[str, Any]]:
    issues = err.context.get("issues")
    if isinstance(issues, list) and issues:
        return [dict(i) for i in issues]
    data = {k: v for k, v in err.context.items() if k != "issues"}
    issue = Issue(err.code, err.message).to_dict()
    issue.update(data)
    return [issue]


@workflow.command("show")
@click.argument("file", type=click.Path(dir_okay=False))
@_json_option
def show_cmd(file: str, as_json: bool) -> None:
    """Summarize the workflow FILE: metadata, inputs, outputs, levels and critical path."""

    def go() -> None:
        service = _service()
        wf = _load(service, file)
        lv = levels(wf)
        cp = critical_path(wf)
        by_kind: dict[str, int] = {}
        for node in wf.nodes.values():
            by_kind[node.kind.value] = by_kind.get(node.kind.value, 0) + 1
        info: dict[str, Any] = {
            "id": wf.id,
            "name": wf.name,
            "version": wf.version,
            "description": wf.description,
            "author": wf.metadata.author,
            "tags": list(wf.metadata.tags),
            "nodes": len(wf.nodes),
            "edges": len(wf.edges),
            "nodes_by_kind": by_kind,
            "inputs": {
                n.id: n.outputs[0].type if n.outputs else "any"
                for n in wf.nodes.values()
                if n.kind is NodeKind.INPUT
            },
            "outputs": {
                n.id: n.inputs[0].type if n.inputs else "any"
                for n in wf.nodes.values()
                if n.kind is NodeKind.OUTPUT
            },
            "levels": lv,
            "critical_path": cp.to_dict(),
            "format": detect_format(Path(file).read_bytes()[:8]),
        }
        if as_json:
            click.echo(json.dumps(info, indent=2, ensure_ascii=False))
            return
        click.echo(f"{wf.name}  v{wf.version}  ({info['format']})")
        click.echo(f"  id: {wf.id}")
        if wf.description:
            click.echo(f"  description: {wf.description}")
        if wf.metadata.author:
            click.echo(f"  author: {wf.metadata.author}")
        if wf.metadata.tags:
            click.echo(f"  tags: {', '.join(wf.metadata.tags)}")
        click.echo(f"  nodes: {len(wf.nodes)} ({', '.join(f'{v} {k}' for k, v in sorted(by_kind.items()))})")
        click.echo(f"  edges: {len(wf.edges)}")
        click.echo("  inputs: " + (", ".join(f"{k}: {v}" for k, v in info["inputs"].items()) or "none"))
        click.echo("  outputs: " + (", ".join(f"{k}: {v}" for k, v in info["outputs"].items()) or "none"))
        click.echo(f"  levels: {len(lv)}")
        for i, level in enumerate(lv):
            click.echo(f"    {i}: {', '.join(level)}")
        click.echo(
            f"  critical path ({_count(len(cp.nodes), 'node')}, estimated cost {cp.cost:g}): {' -> '.join(cp.nodes)}"
        )

    _run(as_json, go)


@workflow.command("render")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--format",
    "-f",
    "fmt",
    type=click.Choice(sorted(FORMATS)),
    default="text",
    show_default=True,
    help="text: a tree for the terminal; mermaid: a flowchart for Markdown; dot: Graphviz.",
)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to this file instead of stdout.")
@click.option(
    "--color/--no-color",
    default=None,
    help="ANSI colours in text output (default: when stdout is a terminal).",
)
@_json_option
def render_cmd(file: str, fmt: str, output: str | None, color: bool | None, as_json: bool) -> None:
    """Draw the workflow FILE as a text tree, a Mermaid flowchart or a Graphviz graph."""

    def go() -> None:
        service = _service()
        wf = _load(service, file)
        use_color = (
            color
            if color is not None
            else (fmt == "text" and sys.stdout.isatty() and not as_json and not output)
        )
        text = service.render(wf, fmt, color=bool(use_color))
        if output:
            Path(output).write_text(text + "\n", "utf-8")
        if as_json:
            click.echo(
                json.dumps({"format": fmt, "output": output, "text": None if output else text}, indent=2)
            )
        elif not output:
            click.echo(text)

    _run(as_json, go)


@workflow.command("convert")
@click.argument("source", type=click.Path(dir_okay=False))
@click.argument("target", type=click.Path(dir_okay=False))
@click.option(
    "--to",
    "fmt",
    type=click.Choice(_CONVERT_FORMATS),
    default=None,
    help="Output form (default from TARGET's suffix: .json pretty JSON, .swf binary, .zst binary-zstd).",
)
@_json_option
def convert_cmd(source: str, target: str, fmt: str | None, as_json: bool) -> None:
    """Convert SOURCE (any form, detected) to TARGET: compact or pretty JSON, binary, zstd binary."""

    chosen = fmt or _format_for(target)

    def go() -> None:
        service = _service()
        wf = _load(service, source)
        if chosen == "json":
            data = service.dumps(wf).encode()
        elif chosen == "json-pretty":
            data = (service.dumps(wf, indent=2) + "\n").encode()
        elif chosen == "binary":
            data = service.to_binary(wf)
        else:
            data = service.to_binary(wf, compress="zstd")
        atomic_write(Path(target), data)
        in_size = Path(source).stat().st_size
        info: dict[str, Any] = {
            "source": source,
            "target": target,
            "format": chosen,
            "bytes": len(data),
            "source_bytes": in_size,
        }
        if as_json:
            click.echo(json.dumps(info, indent=2))
        else:
            click.echo(f"{source} ({in_size} bytes) -> {target} ({chosen}, {len(data)} bytes)")

    _run(as_json, go)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _format_for(target: str) -> str:
    suffix = Path(target).suffix.lower()
    if suffix in (".zst", ".zstd"):
        return "binary-zstd"
    if suffix in (".swf", ".bin", ".msgpack"):
        return "binary"
    if suffix == ".json":
        return "json-pretty"
    raise click.BadParameter(
        f"unknown extension {suffix or '(none)'!r}: use .json, .swf, .bin, .msgpack, .zst or pass --to",
        param_hint="TARGET",
    )


@workflow.command("diff")
@click.argument("old", type=click.Path(dir_okay=False))
@click.argument("new", type=click.Path(dir_okay=False))
@_json_option
def diff_cmd(old: str, new: str, as_json: bool) -> None:
    """Show what changed between two versions of a workflow (exit 0 either way)."""

    def go() -> None:
        service = _service()
        d = diff(_load(service, old), _load(service, new))
        if as_json:
            click.echo(json.dumps(d.to_dict(), indent=2, ensure_ascii=False))
        else:
            click.echo(d.summary())

    _run(as_json, go)


@workflow.command("schema")
@_json_option
def schema_cmd(as_json: bool) -> None:
    """Print the JSON Schema of workflow documents (schema version 1.0).

    The output is JSON either way; --json is accepted for symmetry with the other commands.
    """
    click.echo(json.dumps(json_schema(), indent=2))


# --- templates --------------------------------------------------------------------------------------

_path_option = click.option(
    "--path",
    "paths",
    multiple=True,
    type=click.Path(exists=True),
    help="A template file or directory to add to the library (repeatable).",
)


@workflow.group("template")
def template() -> None:
    """List, show and instantiate workflow templates.

    The library holds the templates from the `workflow.template_paths` config, the
    SYMPHONY_WORKFLOW_TEMPLATES directories, plugins, and --path.
    """


@template.command("list")
@_path_option
@click.option(
    "--search", "-s", "query", default="", help="Words to look for in names, tags and descriptions."
)
@click.option("--tag", "tags", multiple=True, help="Only templates with this tag (repeatable).")
@click.option("--category", default=None, help="Only templates of this category.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@_json_option
def template_list(
    paths: tuple[str, ...], query: str, tags: tuple[str, ...], category: str | None, limit: int, as_json: bool
) -> None:
    """List templates (latest version of each), best matches first when searching."""

    def go() -> None:
        library = _service(paths).templates
        hits = library.search(query, tags=tags, category=category, limit=limit)
        rows: list[dict[str, Any]] = [
            {
                "id": h.template.id,
                "name": h.template.name,
                "version": h.template.version,
                "versions": library.versions(h.template.id),
                "tags": list(h.template.tags),
                "category": h.template.category,
                "description": h.template.description,
                "parameters": [p.name for p in h.template.parameters],
                "score": h.score,
            }
            for h in hits
        ]
        if as_json:
            click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
            return
        if not rows:
            click.echo(
                "no templates found (add some with --path DIR, or list folders under workflow.template_paths: "
                "`symphony config set workflow.template_paths '[\"DIR\"]'`)",
                err=True,
            )
            return
        for r in rows:
            tags_text = f"  [{', '.join(r['tags'])}]" if r["tags"] else ""
            click.echo(f"{r['id']}  {r['version']}  {r['name']}{tags_text}")
            if r["description"]:
                click.echo(f"    {r['description']}")

    _run(as_json, go)


@template.command("show")
@click.argument("template_id")
@click.option(
    "--version", "version", default=None, help="Version constraint (e.g. ^1.2); default the latest."
)
@_path_option
@_json_option
def template_show(template_id: str, version: str | None, paths: tuple[str, ...], as_json: bool) -> None:
    """Show a template's parameters (with types, defaults and constraints)."""

    def go() -> None:
        t = _service(paths).templates.get(template_id, version)
        if as_json:
            click.echo(json.dumps(t.to_dict(), indent=2, ensure_ascii=False))
            return
        click.echo(f"{t.id}  {t.version}  {t.name}")
        if t.description:
            click.echo(f"  {t.description}")
        for p in t.parameters:
            req = "optional" if p.optional else "required"
            default = f", default {json.dumps(p.default)}" if p.default is not None else ""
            click.echo(
                f"  {p.name}: {p.type.value} ({req}{default})"
                + (f" - {p.description}" if p.description else "")
            )

    _run(as_json, go)


_MAX_PARAMS_FILE = 8 * 1024 * 1024
"""Largest ``--params-file`` read, in bytes."""


def _parse_param(text: str) -> tuple[str, Any]:
    name, eq, raw = text.partition("=")
    if not eq or not name:
        raise ValidationError(
            f"parameter {text!r} must look like name=value",
            code="workflow.cli.bad_parameter",
            context={"parameter": text},
        )
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    except RecursionError:
        raise ValidationError(
            f"the value of {name.strip()!r} is nested too deeply",
            code="workflow.cli.bad_parameter",
            context={"parameter": name.strip()},
        ) from None
    return name.strip(), value


@template.command("instantiate")
@click.argument("template_id")
@click.option(
    "--version", "version", default=None, help="Version constraint (e.g. ^1.2); default the latest."
)
@click.option(
    "--param",
    "-p",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="A parameter (VALUE parsed as JSON if it is JSON, else text).",
)
@click.option(
    "--params-file", type=click.Path(exists=True, dir_okay=False), help="A JSON object of parameters."
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="/POINTER=VALUE",
    help="Override a field of the result by JSON Pointer.",
)
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False), help="Write the workflow here (default: stdout)."
)
@click.option(
    "--node-type",
    "node_types",
    multiple=True,
    metavar="NAME",
    help="Treat NAME as an installed node type (repeatable), as `validate` does.",
)
@_path_option
@_json_option
def template_instantiate(
    template_id: str,
    version: str | None,
    params: tuple[str, ...],
    params_file: str | None,
    sets: tuple[str, ...],
    output: str | None,
    node_types: tuple[str, ...],
    paths: tuple[str, ...],
    as_json: bool,
) -> None:
    """Fill TEMPLATE_ID's parameters and write the resulting workflow as JSON."""

    def go() -> None:
        values: dict[str, Any] = {}
        if params_file:
            from symphony.commons.fs import read_text

            text = read_text(params_file, max_size=_MAX_PARAMS_FILE)
            try:
                loaded = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValidationError(
                    f"{params_file} is not a JSON object: {exc}",
                    code="workflow.cli.bad_parameter",
                    context={"file": params_file},
                ) from None
            except RecursionError:
                raise ValidationError(
                    f"{params_file} is nested too deeply to be parameter values",
                    code="workflow.cli.bad_parameter",
                    context={"file": params_file},
                ) from None
            if not isinstance(loaded, dict):
                raise ValidationError(
                    f"{params_file} must hold a JSON object",
                    code="workflow.cli.bad_parameter",
                    context={"file": params_file},
                )
            values.update(loaded)
        values.update(_parse_param(p) for p in params)
        overrides = dict(_parse_param(s) for s in sets)
        service = _service(paths, node_types)
        result = service.instantiate(template_id, values, version=version, overrides=overrides)
        text = service.dumps(result.workflow, indent=2)
        if output:
            atomic_write(Path(output), (text + "\n").encode())
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "output": output,
                        "workflow": None if output else json.loads(text),
                        "applied_defaults": dict(result.applied_defaults),
                        "warnings": list(result.warnings),
                    },
                    indent=2,
                    ensure_ascii=False,
                    default=str,
                )
            )
            return
        if output:
            click.echo(f"wrote {output} ({len(result.workflow.nodes)} nodes)")
        else:
            click.echo(text)
        for w in result.warnings:
            click.echo(f"warning: {w}", err=True)

    _run(as_json, go)
