"""Commons: what every Symphony package shares (errors, config, logging, fs, validation, debug).

Import from the modules directly (``from symphony.commons.errors import ConfigError``); the
most used names are also re-exported from ``symphony``. The throw-away ``duck()`` probe is
only reachable as ``symphony.commons.debug.duck``, never as a top-level name.
"""

__all__: list[str] = []
