"""Commons: what every Symphony package shares (errors, config, logging, fs, validation, debug).

Import from the modules directly (``from symphony.commons.errors import ConfigError``); the
most used names are also re-exported from ``symphony``. The throw-away duck-debugging probe
is only reachable from ``symphony.commons.debug``, never as a top-level name.
"""

__all__: list[str] = []
