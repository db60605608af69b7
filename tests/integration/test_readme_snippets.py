"""Every code snippet in every README.md runs as written, and every relative link resolves.

How a README's fenced blocks are treated:

- ```` ```python ```` runs as a script (``python snippet.py``); one that defines ``test_*``
  functions runs under pytest (the SDK's fixtures are there, as for a plugin author).
- ```` ```bash ```` (``sh``, ``shell``) runs with ``bash -e``. ``pip install X`` lines are checked,
  not run: each requirement must be installed here (or be a path that exists).
- A block whose first line is a comment naming a file (``# pyproject.toml``,
  ``# src/symphony_hello/plugin.py``, ``# my_ext/server.py``) is that file of the README's example
  project rather than a snippet. The files of one README are written into one project folder;
  when it holds a ``pyproject.toml`` with ``symphony.plugins`` entry points it must pass
  ``symphony plugins validate`` and its built wheel is installed (unpacked into a site
  directory on ``PYTHONPATH``) for that README's other snippets; otherwise the folder (and its
  ``src/``) is put on ``PYTHONPATH``.
- ``<!-- not-run: reason -->`` on the line before a fence skips it, with its reason. Use it
  sparingly: for blocks that cannot run standalone (two processes side by side, commands that
  run this very suite).
- Other languages (``toml``, ``text``, none) are not run.

Snippets run in a temporary directory holding links to the repository's top-level entries (so
``README.md`` or ``examples/...`` resolve as on a fresh clone) with this venv's ``symphony`` on
``PATH``, and isolated config and cache directories.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SKIPPED_DIRS = {".git", ".venv", "venv", "node_modules", "build", "dist", "__pycache__", ".tox"}

FENCE = re.compile(r"^(```+|~~~+)\s*([\w+-]*)")
NOT_RUN = re.compile(r"^<!--\s*not-run:\s*(?P<reason>\S.*?)\s*-->\s*$")
FILE_COMMENT = re.compile(r"^#\s*(?P<path>[\w./-]+\.(?:py|toml|json|cfg|txt|md))(?:\s|$)")
LANGS = {"python": "python", "py": "python", "bash": "shell", "sh": "shell", "shell": "shell", "toml": "toml"}


@dataclass
class Snippet:
    readme: Path
    line: int
    lang: str
    text: str
    skip: str | None = None

    @property
    def file(self) -> str | None:
        first = self.text.splitlines()[0] if self.text.strip() else ""
        match = FILE_COMMENT.match(first)
        return match.group("path") if match else None

    @property
    def id(self) -> str:
        return f"{self.readme.relative_to(ROOT).as_posix()}:{self.line}"


def readmes() -> list[Path]:
    found = []
    for path in ROOT.rglob("README.md"):
        if not SKIPPED_DIRS.intersection(path.relative_to(ROOT).parts[:-1]) and not any(
            part.startswith(".") for part in path.relative_to(ROOT).parts[:-1]
        ):
            found.append(path)
    return sorted(found)


def snippets_of(readme: Path) -> list[Snippet]:
    out: list[Snippet] = []
    lines = readme.read_text("utf-8").splitlines()
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, lang = match.group(1), match.group(2).lower()
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].startswith(fence):
            body.append(lines[i])
            i += 1
        i += 1
        before = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        skip = NOT_RUN.match(before.strip())
        if lang in LANGS:
            out.append(Snippet(readme, start + 1, LANGS[lang], "\n".join(body) + "\n", skip and skip["reason"]))
    return out


def runnable(readme: Path) -> list[Snippet]:
    return [s for s in snippets_of(readme) if s.file is None and s.lang != "toml" and not s.skip]


ALL_READMES = readmes()
CASES = [(r, s) for r in ALL_READMES for s in runnable(r)]


# --------------------------------------------------------------------------- environment


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory that looks like a fresh clone (links to the top-level entries)."""
    work = tmp_path_factory.mktemp("readme-work")
    for entry in ROOT.iterdir():
        if entry.name not in SKIPPED_DIRS and not entry.name.startswith("."):
            (work / entry.name).symlink_to(entry)
    return work


_projects: dict[Path, list[str]] = {}


def project_paths(readme: Path, tmp_root: Path) -> list[str]:
    """Assemble the README's example project; return the PYTHONPATH entries that provide it."""
    if readme in _projects:
        return _projects[readme]
    files = [s for s in snippets_of(readme) if s.file is not None and not s.skip]
    paths: list[str] = []
    if files:
        project = tmp_root / f"project-{len(_projects)}"
        for snippet in files:
            assert snippet.file is not None
            target = project / snippet.file
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(snippet.text)
        paths = _install(project, tmp_root / f"site-{len(_projects)}")
    _projects[readme] = paths
    return paths


def _install(project: Path, site: Path) -> list[str]:
    pyproject = project / "pyproject.toml"
    plugins = {}
    if pyproject.is_file():
        plugins = tomllib.loads(pyproject.read_text()).get("project", {}).get("entry-points", {})
        plugins = plugins.get("symphony.plugins", {})
    if not plugins:
        return [str(project), str(project / "src")]
    for package in (project / "src").glob("*/"):
        (package / "__init__.py").touch()  # the README's layout lists it; an empty file is enough
    checked = subprocess.run(
        [str(BIN / "symphony"), "plugins", "validate", str(project)],
        capture_output=True, text=True, check=False, timeout=300,
    )
    assert checked.returncode == 0, f"the README's plugin project does not validate:\n{checked.stdout}{checked.stderr}"
    wheels = project.parent / f"{project.name}-wheels"
    wheels.mkdir()
    backend = tomllib.loads(pyproject.read_text()).get("build-system", {}).get("build-backend", "")
    assert backend, "the README's pyproject.toml needs a [build-system]"
    module, _, attr = backend.partition(":")
    build = f"import {module} as b; b = getattr(b, {attr!r}) if {attr!r} else b; b.build_wheel({str(wheels)!r})"
    built = subprocess.run(  # the PEP 517 hook pip calls, without pip's start-up
        [sys.executable, "-c", build], cwd=project, capture_output=True, text=True, check=False, timeout=300
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = wheels.glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)  # what pip install does with a pure-Python wheel, minus scripts
    return [str(site)]


def environment(tmp: Path, extra_paths: list[str]) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
    env["PYTHONPATH"] = os.pathsep.join(extra_paths)
    env["SYMPHONY_USER_CONFIG"] = str(tmp / "user.toml")
    env["SYMPHONY_CACHE_DIR"] = str(tmp / "cache")
    env["SYMPHONY_DATA_DIR"] = str(tmp / "data")
    env.pop("SYMPHONY_CONFIG_DIR", None)
    env["COLUMNS"] = "120"
    return env


def checked_pip_install(line: str) -> str:
    """``pip install ...`` -> a shell check that each requirement is installed or exists."""
    checks = []
    args = shlex.split(line, comments=True)[2:]
    skip_next = False
    for arg in args:
        if skip_next:
            skip_next = False
            continue
        if arg in ("-e", "--editable", "-q", "-U", "--upgrade"):
            continue
        if arg.startswith("-"):
            skip_next = arg in ("-r", "-c", "--index-url")
            continue
        name = re.split(r"[\[<>=!~;]", arg, maxsplit=1)[0]
        if "/" in name or name.startswith("."):
            checks.append(f"test -e {shlex.quote(name)}")
        else:
            checks.append(f"{shlex.quote(sys.executable)} -m pip show -q {shlex.quote(name)} >/dev/null")
    return " && ".join(checks) or "true"


def run_snippet(snippet: Snippet, cwd: Path, env: dict[str, str], tmp: Path) -> subprocess.CompletedProcess[str]:
    if snippet.lang == "python" and re.search(r"^(async )?def test_", snippet.text, re.M):
        tests = tmp / "snippet-tests"
        tests.mkdir()
        (tests / "pytest.ini").write_text("[pytest]\n")
        (tests / "test_snippet.py").write_text(snippet.text)
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_snippet.py"]
        cwd = tests
    elif snippet.lang == "python":
        script = tmp / "snippet.py"
        script.write_text(snippet.text)
        cmd = [sys.executable, str(script)]
    else:
        lines = [checked_pip_install(x) if x.strip().startswith("pip install ") else x for x in snippet.text.splitlines()]
        script = tmp / "snippet.sh"
        script.write_text("set -e -o pipefail\n" + "\n".join(lines) + "\n")
        cmd = ["bash", str(script)]
    # Output goes to files, not pipes: a background job (`serve ... &`) must not hold them open.
    with open(tmp / "stdout", "w+") as out, open(tmp / "stderr", "w+") as err:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True)
        try:
            proc.wait(timeout=120)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGTERM)  # background jobs the snippet started
            except ProcessLookupError:
                pass
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(cmd, proc.returncode, out.read(), err.read())


@pytest.mark.parametrize(("readme", "snippet"), CASES, ids=[s.id for _, s in CASES])
def test_readme_snippet_runs(readme: Path, snippet: Snippet, workdir: Path, tmp_path: Path) -> None:
    paths = project_paths(readme, tmp_path.parent)
    proc = run_snippet(snippet, workdir, environment(tmp_path, paths), tmp_path)
    assert proc.returncode == 0, (
        f"{snippet.id} ({snippet.lang}) failed with {proc.returncode}:\n{snippet.text}\n"
        f"--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}"
    )


def test_snippets_are_found_and_skips_give_a_reason() -> None:
    assert len(ALL_READMES) >= 5
    assert len(CASES) >= 10
    for readme in ALL_READMES:
        text = readme.read_text("utf-8")
        for marker in re.findall(r"<!--\s*not-run\b.*?-->", text):
            assert NOT_RUN.match(marker), f"{readme}: {marker!r} needs a reason (<!-- not-run: why -->)"


# --------------------------------------------------------------------------- links

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|!\[[^\]]*\]\(([^)\s]+)\)")


@pytest.mark.parametrize("readme", ALL_READMES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_readme_links_point_to_files_that_exist(readme: Path) -> None:
    text = re.sub(r"```.*?```", "", readme.read_text("utf-8"), flags=re.S)
    missing = []
    for match in LINK.finditer(text):
        target = match.group(1) or match.group(2)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL or an anchor in the same page
        path = (readme.parent / target.split("#", 1)[0]).resolve()
        if not path.exists():
            missing.append(target)
    assert not missing, f"{readme.relative_to(ROOT)} links to missing files: {missing}"


def test_the_repository_has_the_license_its_distributions_declare() -> None:
    text = (ROOT / "LICENSE").read_text("utf-8")
    assert text.startswith("MIT License") and "Symphony developers" in text
    for pyproject in [ROOT / "core", ROOT / "sdk", *ROOT.glob("plugins/*"), *ROOT.glob("examples/extensions/*")]:
        if (pyproject / "pyproject.toml").is_file():
            assert tomllib.loads((pyproject / "pyproject.toml").read_text())["project"]["license"] == "MIT"
