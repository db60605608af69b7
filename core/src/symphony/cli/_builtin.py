"""The kernel's own top-level CLI commands, imported only when invoked.

Each entry: command name -> (``"module:attribute"`` of the click command, one-line summary).
The summary is what ``symphony --help`` shows, so listing commands never imports them.
"""

from __future__ import annotations

BUILTIN_COMMANDS: dict[str, tuple[str, str]] = {
    "plugins": ("symphony.cli.plugins_cmd:plugins", "List, inspect and validate plugins."),
    "config": ("symphony.cli.config_cmd:config", "Show, read and edit the layered configuration."),
    "doctor": (
        "symphony.cli.doctor_cmd:doctor",
        "Check the environment, the plugins and the discovery index.",
    ),
}
