"""The CLI fast path imports config, log, fs and debug: they must not pull in heavy libraries."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = [
    "jsonschema",
    "tomlkit",
    "cattrs",
    "structlog",
    "platformdirs",
    "attrs",
    "attr",
    "tomllib",
    "logging",
]


def test_commons_modules_import_no_heavy_dependency() -> None:
    code = (
        "import sys, json\n"
        "import symphony.commons.config, symphony.commons.log, symphony.commons.fs, symphony.commons.debug\n"
        "from symphony.commons.log import get_logger\n"
        "log = get_logger('fast.path', k=1)\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(proc.stdout) == []


def test_heavy_dependencies_load_on_use() -> None:
    code = (
        "import sys, json\n"
        "from symphony.commons.config import load_config\n"
        "load_config(environ={}, user_file='/nonexistent/user.toml')\n"
        "from symphony.commons.log import get_logger\n"
        "get_logger('x').debug('hidden')\n"
        "print(json.dumps(sorted(m for m in ('jsonschema', 'structlog', 'tomllib') if m in sys.modules)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # only defaults and the packaged profile: nothing to validate, so no jsonschema
    assert json.loads(proc.stdout) == ["structlog", "tomllib"]
    touched = code.replace("environ={}", "environ={'SYMPHONY_LOGGING__LEVEL': 'error'}")
    proc = subprocess.run([sys.executable, "-c", touched], capture_output=True, text=True, check=True)
    assert json.loads(proc.stdout) == ["jsonschema", "structlog", "tomllib"]


def test_debug_enabled_answers_without_structlog() -> None:
    code = (
        "import sys, json\n"
        "from symphony.commons.config import load_config\n"
        "from symphony.commons.log import configure_from_config, debug_enabled\n"
        "def at(level):\n"
        "    configure_from_config(load_config(environ={'SYMPHONY_LOGGING__LEVEL': level},"
        " user_file='/nonexistent/user.toml'), lazy=True)\n"
        "    return debug_enabled('symphony.kernel')\n"
        "print(json.dumps([at('info'), at('debug'), 'structlog' in sys.modules]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(proc.stdout) == [False, True, False]
