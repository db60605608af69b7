"""Helpers for plugin CLI commands (re-exported from the core CLI)."""

from __future__ import annotations

from symphony.cli import current_kernel

__all__ = ["current_kernel"]
