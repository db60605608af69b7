"""The build fails if a duck() probe is left in shipped code (every src/ folder of the repo)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def find_duck_calls(dirs: list[Path]) -> list[tuple[Path, int]]:
    """Every call to a function named ``duck`` (``duck(...)`` or ``x.duck(...)``) under ``dirs``.

    Files that do not parse are skipped (other checks report syntax errors). Returns
    ``(file, line)`` pairs sorted by file then line.
    """
    hits: list[tuple[Path, int]] = []
    for directory in dirs:
        for path in directory.rglob("*.py"):
            try:
                tree = ast.parse(path.read_bytes(), filename=str(path))
            except (SyntaxError, ValueError):
                continue
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                if (isinstance(func, ast.Name) and func.id == "duck") or (
                    isinstance(func, ast.Attribute) and func.attr == "duck"
                ):
                    hits.append((path, node.lineno))
    return sorted(hits, key=lambda hit: (str(hit[0]), hit[1]))


def shipped_source_dirs(repo: Path = REPO) -> list[Path]:
    """Every folder whose code ends up in a distribution."""
    candidates = [repo / "core" / "src", repo / "sdk" / "src"]
    candidates += sorted(repo.glob("plugins/*/src"))
    candidates += sorted(repo.glob("examples/extensions/*/src"))
    return [path for path in candidates if path.is_dir()]


def test_repo_layout_is_found() -> None:
    dirs = shipped_source_dirs()
    assert REPO / "core" / "src" in dirs  # guards against a wrong REPO making the check vacuous
    assert (REPO / "core" / "src" / "symphony" / "commons" / "debug.py").is_file()


def test_no_duck_calls_left_in_shipped_code() -> None:
    hits = find_duck_calls(shipped_source_dirs())
    listing = "\n".join(f"  {path.relative_to(REPO)}:{line}" for path, line in hits)
    assert not hits, f"remove these duck() debugging calls before shipping:\n{listing}"


def test_the_check_can_fail(tmp_path: Path) -> None:
    fake_repo = tmp_path / "repo"
    planted = fake_repo / "plugins" / "demo" / "src" / "symphony_demo" / "mod.py"
    planted.parent.mkdir(parents=True)
    planted.write_text("from symphony.commons.debug import duck\n\n\ndef f(x):\n    return duck(x)\n")
    (fake_repo / "core" / "src").mkdir(parents=True)
    assert find_duck_calls(shipped_source_dirs(fake_repo)) == [(planted, 5)]


def test_find_duck_calls_finds_bare_and_attribute_calls(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "a.py").write_text("from symphony.commons.debug import duck\n\nx = duck(1)\n")
    (pkg / "sub" / "b.py").write_text(
        "import symphony.commons.debug as d\n\n\ndef f():\n    return d.duck(2, k=1)\n"
    )
    (pkg / "clean.py").write_text("duck = 3  # a name, not a call\nprint(duck)\n")
    (pkg / "broken.py").write_text("def (:\n")
    (pkg / "notes.txt").write_text("duck(1)\n")
    assert find_duck_calls([pkg]) == [(pkg / "a.py", 3), (pkg / "sub" / "b.py", 5)]
    assert find_duck_calls([]) == []


def test_duck_is_not_a_top_level_export() -> None:
    import symphony
    import symphony.commons
    from symphony.commons import debug

    assert "duck" not in symphony.__all__
    assert not hasattr(symphony, "duck")
    assert "duck" not in symphony.commons.__all__
    assert not hasattr(symphony.commons, "duck")
    assert callable(debug.duck)
