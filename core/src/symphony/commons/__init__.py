"""Commons: what every Symphony package shares (errors, config, logging, fs, validation, duck).

Import from the modules directly (``from symphony.commons.errors import ConfigError``); the
most used names are also re-exported from ``symphony``.
"""
