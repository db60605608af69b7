"""Run every ``bench_*.py`` in this folder, each in its own process; stdout is JSON lines.

Usage: ``python tests/benchmarks/run.py [NAME-SUBSTRING ...]``

At the end a summary goes to stderr: every figure that has a target, and whether it met it
(the ``met`` field each benchmark computes beside its ``target``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _run(script: Path, checked: list[dict[str, Any]]) -> int:
    """Run one script, passing its JSON lines through as they come; collect the checked ones."""
    with subprocess.Popen(
        [sys.executable, str(script)], cwd=HERE.parent.parent, stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and "met" in record:
                checked.append(record)
    return proc.returncode


def _summary(checked: list[dict[str, Any]]) -> str:
    missed = [r for r in checked if not r["met"]]
    lines = [f"# targets: {len(checked) - len(missed)} of {len(checked)} met"]
    for r in missed:
        lines.append(f"#   missed: {r['name']} = {r['value']} {r['unit']} (target {r.get('target')})")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """Run the selected benchmark scripts; return non-zero if any failed to run."""
    scripts = sorted(HERE.glob("bench_*.py"))
    if argv:
        scripts = [s for s in scripts if any(a in s.name for a in argv)]
    failed = []
    checked: list[dict[str, Any]] = []
    for script in scripts:
        print(f"# {script.name}", file=sys.stderr, flush=True)
        if _run(script, checked):
            failed.append(script.name)
    print(_summary(checked), file=sys.stderr, flush=True)
    if failed:
        print(f"# failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
