"""Versions: the distribution's, and the plugin API the kernel implements."""

__version__ = "0.1.0"

PLUGIN_API_VERSION = "0.1.0"
"""The plugin API this kernel implements; a manifest's ``api`` range is checked against it."""
