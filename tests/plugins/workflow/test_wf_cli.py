"""``symphony workflow``: click commands in-process, and the real console script as a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from symphony_workflow import load, loads
from symphony_workflow._cli import workflow
from symphony_workflow._serialization import from_binary

from .conftest import EXAMPLES, FIXTURE_TEMPLATES, FIXTURE_WORKFLOWS, REPO

TRIAGE_TYPES = [
    "--node-type",
    "llm.classify",
    "--node-type",
    "tracker.create_issue",
    "--node-type",
    "review.queue",
]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(workflow, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_validate_valid_and_invalid(tmp_path: Path) -> None:
    code, out, err = run("validate", str(FIXTURE_WORKFLOWS / "ticket-triage.json"), *TRIAGE_TYPES)
    assert code == 0 and "valid (7 nodes, 8 edges)" in out
    code, out, err = run("validate", str(EXAMPLES / "text-report.json"))
    assert code == 0 and "warning: node types were not checked" in err
    code, out, err = run("validate", "--strict", str(EXAMPLES / "text-report.json"))
    assert code == 1
    bad = json.loads((FIXTURE_WORKFLOWS / "ticket-triage.json").read_text())
    bad["workflow"]["nodes"][1]["kind"] = "wizard"
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    code, out, err = run("validate", str(tmp_path / "bad.json"), str(EXAMPLES / "legacy-0.9.json"))
    assert code == 1
    assert "INVALID" in err and "unknown node kind 'wizard'" in err and "$.workflow.nodes[1].kind" in err
    assert "legacy-0.9.json: valid" in out


def test_validate_json_output(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text('{"schema_version": "1.0", "workflow": ')
    code, out, _ = run(
        "validate", "--json", str(tmp_path / "broken.json"), str(FIXTURE_WORKFLOWS / "ticket-triage.json")
    )
    data = json.loads(out)
    assert code == 1 and data["ok"] is False
    first, second = data["results"]
    assert first["valid"] is False and first["errors"][0]["code"] == "workflow.json.malformed"
    assert first["errors"][0]["line"] == 1
    assert second["valid"] is True and second["errors"] == []  # no kernel here: node types unchecked
    assert [w["code"] for w in second["warnings"]] == ["workflow.node_types_unchecked"]
    assert second["workflow"]["nodes"] == 7


def test_validate_reports_cycles_and_missing_files(tmp_path: Path) -> None:
    doc = json.loads((EXAMPLES / "text-report.json").read_text())
    doc["workflow"]["edges"].append({"kind": "control", "source": "report", "target": "document"})
    (tmp_path / "cyclic.json").write_text(json.dumps(doc))
    code, _, err = run("validate", str(tmp_path / "cyclic.json"))
    assert code == 1 and "cycle" in err and "document -> stats -> report -> document" in err
    code, out, _ = run("validate", "--json", str(tmp_path / "nope.json"))
    assert code == 1 and json.loads(out)["results"][0]["errors"][0]["code"] == "io.not_found"


def test_show(triage_path: Path = FIXTURE_WORKFLOWS / "parallel-embed.json") -> None:
    code, out, _ = run("show", str(triage_path))
    assert code == 0 and "critical path (7 nodes, estimated cost 12): passages -> clean -> fan_out -> embed_large" in out
    code, out, _ = run("show", "--json", str(triage_path))
    info = json.loads(out)
    assert info["levels"][3] == ["embed_small", "embed_large"] and info["format"] == "json"
    assert info["inputs"] == {"passages": "list[text]"}


@pytest.mark.parametrize("fmt", ["text", "mermaid", "dot"])
def test_render(fmt: str, tmp_path: Path) -> None:
    code, out, _ = run("render", str(FIXTURE_WORKFLOWS / "ticket-triage.json"), "--format", fmt)
    assert code == 0
    first = {"text": "Ticket triage", "mermaid": "flowchart TD", "dot": 'digraph "Ticket triage"'}[fmt]
    assert out.startswith(first)
    target = tmp_path / f"out.{fmt}"
    code, out, _ = run(
        "render", str(FIXTURE_WORKFLOWS / "ticket-triage.json"), "-f", fmt, "-o", str(target), "--json"
    )
    assert code == 0 and json.loads(out)["output"] == str(target) and target.read_text().startswith(first)


def test_render_bad_format_is_a_usage_error() -> None:
    code, _, err = run("render", str(FIXTURE_WORKFLOWS / "ticket-triage.json"), "--format", "svg")
    assert code == 2 and "svg" in err


def test_convert_between_every_form(tmp_path: Path) -> None:
    source = FIXTURE_WORKFLOWS / "ticket-triage.json"
    original = load(source)
    code, out, _ = run("convert", str(source), str(tmp_path / "t.swf"), "--json")
    info = json.loads(out)
    assert code == 0 and info["format"] == "binary" and info["bytes"] <= info["source_bytes"] // 2
    assert from_binary((tmp_path / "t.swf").read_bytes()) == original
    code, _, _ = run("convert", str(tmp_path / "t.swf"), str(tmp_path / "t.zst"))
    assert code == 0 and load(tmp_path / "t.zst") == original
    code, out, _ = run("convert", str(tmp_path / "t.zst"), str(tmp_path / "back.json"))
    assert code == 0 and "json-pretty" in out and load(tmp_path / "back.json") == original
    code, _, _ = run("convert", str(source), str(tmp_path / "c.txt"), "--to", "json")
    assert (
        loads((tmp_path / "c.txt").read_text()) == original and "\n" not in (tmp_path / "c.txt").read_text()
    )


def test_diff(tmp_path: Path) -> None:
    doc = json.loads((FIXTURE_WORKFLOWS / "ticket-triage.json").read_text())
    doc["workflow"]["nodes"][1]["config"]["temperature"] = 0.5
    doc["workflow"]["version"] = "2.2.0"
    (tmp_path / "v2.json").write_text(json.dumps(doc))
    code, out, _ = run("diff", str(FIXTURE_WORKFLOWS / "ticket-triage.json"), str(tmp_path / "v2.json"))
    assert code == 0 and "~ version: '2.1.0' -> '2.2.0'" in out and "~ node classify: config" in out
    code, out, _ = run(
        "diff", "--json", str(FIXTURE_WORKFLOWS / "ticket-triage.json"), str(tmp_path / "v2.json")
    )
    assert json.loads(out)["changed_nodes"]["classify"]["config"][1]["temperature"] == 0.5


def test_schema() -> None:
    code, out, _ = run("schema")
    assert code == 0 and json.loads(out)["properties"]["schema_version"] == {"const": "1.1"}


def test_template_list_show_instantiate(tmp_path: Path) -> None:
    code, out, _ = run("template", "list", "--path", str(FIXTURE_TEMPLATES))
    assert code == 0 and "summarize-document  1.1.0" in out
    code, out, _ = run("template", "list", "--path", str(FIXTURE_TEMPLATES), "--search", "rout", "--json")
    rows = json.loads(out)
    assert [r["id"] for r in rows] == ["classify-and-route"] and rows[0]["versions"] == ["0.2.0"]
    code, out, _ = run(
        "template", "show", "summarize-document", "--version", "~1.0", "--path", str(FIXTURE_TEMPLATES)
    )
    assert (
        code == 0
        and "summarize-document  1.0.0" in out
        and "max_words: integer (optional, default 200)" in out
    )
    target = tmp_path / "wf.json"
    code, out, err = run(
        "template",
        "instantiate",
        "classify-and-route",
        "--path",
        str(FIXTURE_TEMPLATES),
        "-p",
        'labels=["bug", "idea"]',
        "-p",
        "route_label=bug",
        "-p",
        "threshold=0.6",
        "--set",
        "/description=made by the CLI",
        "-o",
        str(target),
    )
    assert code == 0, err
    wf = load(target)
    assert wf.description == "made by the CLI"
    assert (
        wf.edge("route.out->handle.text?").condition
        == 'classify.label == "bug" and classify.confidence >= 0.6'
    )
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"title": "From a file"}))
    code, out, _ = run(
        "template",
        "instantiate",
        "summarize-document",
        "--path",
        str(FIXTURE_TEMPLATES),
        "--params-file",
        str(params),
        "--json",
    )
    data = json.loads(out)
    assert code == 0 and data["workflow"]["workflow"]["name"] == "Summary of From a file"
    assert data["applied_defaults"]["max_words"] == 200


def test_template_errors_are_reported_with_location() -> None:
    code, _, err = run(
        "template", "instantiate", "classify-and-route", "--path", str(FIXTURE_TEMPLATES), "-p", "threshold=7"
    )
    assert code == 1
    assert "error: invalid parameters for template 'classify-and-route'" in err
    assert "parameter 'threshold': 7 is greater than the maximum of 1.0" in err
    assert "missing required parameter 'labels' (array)" in err
    assert "code: workflow.template.missing_parameter" in err
    code, out, _ = run("template", "instantiate", "nope", "--path", str(FIXTURE_TEMPLATES), "--json")
    assert code == 1 and json.loads(out)["error"]["code"] == "workflow.template.not_found"
    code, _, err = run(
        "template", "instantiate", "summarize-document", "--path", str(FIXTURE_TEMPLATES), "-p", "novalue"
    )
    assert code == 1 and "name=value" in err


def test_help_texts() -> None:
    code, out, _ = run("--help")
    assert code == 0 and "symphony workflow validate --strict examples/workflows/" in out
    code, out, _ = run("validate", "--help")
    assert "--node-type NAME" in out and "Exit status 0" in out


# --- the real console script -------------------------------------------------------------------------


def _symphony() -> str:
    exe = Path(sys.executable).with_name("symphony")
    if exe.exists():
        return str(exe)
    found = shutil.which("symphony")
    if found is None:
        pytest.fail("the `symphony` console script is not installed")
    return found


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["SYMPHONY_CACHE_DIR"] = str(tmp_path / "cache")
    env["SYMPHONY_USER_CONFIG"] = str(tmp_path / "user.toml")
    env["SYMPHONY_CONFIG_DIR"] = str(tmp_path / "config")
    return env


def test_console_script_validates_an_example(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            _symphony(),
            "workflow",
            "validate",
            "--json",
            str(EXAMPLES / "text-report.json"),
            str(FIXTURE_WORKFLOWS / "ticket-triage.json"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=_env(tmp_path),
        timeout=60,
        check=False,
    )
    data = json.loads(proc.stdout)
    report, triage = data["results"]
    # textstats.analyze is provided by an installed plugin (the textstats example) through its manifest;
    # the triage example's node types are provided by nothing installed.
    assert report["valid"] is True and report["warnings"] == [], proc.stderr
    assert triage["valid"] is False
    assert {e["node"] for e in triage["errors"]} == {"classify", "file_issue", "review"}
    assert proc.returncode == 1


def test_console_script_reports_bad_input_with_location(tmp_path: Path) -> None:
    doc = json.loads((EXAMPLES / "text-report.json").read_text())
    doc["workflow"]["edges"][1]["source_port"] = "nope"
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    proc = subprocess.run(
        [_symphony(), "workflow", "validate", str(tmp_path / "bad.json")],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert "node 'stats' has no output 'nope'" in proc.stderr
    assert "$.workflow.edges[1].source_port" in proc.stderr
    ok = subprocess.run(
        [_symphony(), "workflow", "render", "--format", "mermaid", str(EXAMPLES / "text-report.json")],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=60,
        check=False,
    )
    assert ok.returncode == 0 and ok.stdout.startswith("flowchart TD")


def test_convert_refuses_an_unknown_extension(tmp_path: Path) -> None:
    code, _, err = run("convert", str(EXAMPLES / "text-report.json"), str(tmp_path / "out.xyz"))
    assert code == 2 and "unknown extension '.xyz'" in err
    assert not (tmp_path / "out.xyz").exists()


def test_counts_are_singular_for_one(tmp_path: Path) -> None:
    doc = json.loads((EXAMPLES / "text-report.json").read_text())
    wf = doc["workflow"]
    wf["nodes"] = [n for n in wf["nodes"] if n["id"] != "report"]
    wf["edges"] = wf["edges"][:1]
    small = tmp_path / "small.json"
    small.write_text(json.dumps(doc))
    code, out, err = run("validate", "--allow-orphans", str(small))
    assert code == 0, out + err
    assert "(2 nodes, 1 edge)" in out
    code, out, _ = run("render", str(small))
    assert "(2 nodes, 1 edge)" in out
