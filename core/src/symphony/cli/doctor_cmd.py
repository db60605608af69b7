"""``symphony doctor``: check the environment, the plugins and the discovery index."""

from __future__ import annotations

import platform
import sys
from typing import Any

import click

from symphony.cli._context import EXIT_CONFIG, EXIT_PLUGIN_FAILURES, CliState, echo_json, say


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--no-import", is_flag=True, help="Do not import plugins (only check manifests).")
@click.pass_obj
def doctor(state: CliState, as_json: bool, no_import: bool) -> None:
    """Check the environment, every plugin (importing each one) and the discovery index.

    Exits 3 when any plugin is unusable.
    """
    from symphony import __version__
    from symphony._version import PLUGIN_API_VERSION
    from symphony.cli.plugins_cmd import load_all
    from symphony.plugins.discovery import DiscoveryIndex

    kernel = state.kernel(tolerant=True)
    if not no_import:
        load_all(kernel)
    index = DiscoveryIndex()
    counts: dict[str, int] = {}
    for r in kernel.plugins:
        counts[r.state.value] = counts.get(r.state.value, 0) + 1
    report: dict[str, Any] = {
        "symphony": __version__,
        "plugin_api": PLUGIN_API_VERSION,
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "platform": platform.platform(),
        "config": {
            "env": kernel.config.env,
            "files": [str(f) for f in kernel.config.files],
            # a plugin section's problem is that plugin's failure (below), not listed twice
            "problems": [_config_item(p) for p in kernel.config.problems if _is_core(p, kernel)],
            "warnings": [_config_item(w) for w in kernel.config.warnings],
        },
        "index": {"path": str(index.path), "status": kernel.index_status, "exists": index.path.exists()},
        "plugins": counts,
        "problems": [
            {"plugin": r.id, "state": r.state.value, "reason": r.reason, "code": r.error_code}
            for r in kernel.failures()
        ],
    }
    if as_json:
        echo_json(report)
    else:
        say(f"symphony {report['symphony']} (plugin API {report['plugin_api']}), Python {report['python']}")
        say(f"  interpreter: {report['executable']}")
        files = ", ".join(report["config"]["files"]) or "(none)"
        say(f"  config: env={report['config']['env']} files={files}")
        say(f"  discovery index: {report['index']['path']} ({report['index']['status']})")
        say(
            "  plugins: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
            if counts
            else "  plugins: none"
        )
        for item in report["config"]["problems"]:
            say("  ", ("✗", "red"), f" config: {item['message']}")
        for item in report["config"]["warnings"]:
            say("  ", ("!", "yellow"), f" config: {item['message']}")
        for p in report["problems"]:
            say("  ", ("✗", "red"), f" {p['plugin']}: {p['state']}: {p['reason']}")
        if not report["problems"] and not report["config"]["problems"]:
            say("  ", ("✓", "green"), " no problems found")
    if report["config"]["problems"]:
        raise SystemExit(EXIT_CONFIG)
    if report["problems"]:
        raise SystemExit(EXIT_PLUGIN_FAILURES)


def _config_item(error: Any) -> dict[str, Any]:
    keep = ("file", "key", "rule", "section", "variable", "line")
    return {
        "message": error.message,
        "code": error.code,
        **{k: error.context[k] for k in keep if k in error.context},
    }


def _is_core(problem: Any, kernel: Any) -> bool:
    section = problem.context.get("section")
    owned = {r.manifest.config_section for r in kernel.plugins if r.manifest is not None}
    return section is None or section not in owned
