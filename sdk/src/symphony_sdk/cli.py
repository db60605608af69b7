"""Helpers for plugin CLI commands."""

from __future__ import annotations

import click

from symphony.cli._context import CliState
from symphony.kernel import Kernel

__all__ = ["current_kernel"]


def current_kernel() -> Kernel:
    """The kernel of the running ``symphony`` command (call it inside a click command).

    Plugin commands run inside ``symphony <command>``; this returns the kernel that activated
    them, configured by the top-level ``--config``/``--env`` options.
    """
    ctx = click.get_current_context()
    state = ctx.find_object(CliState)
    if state is None:
        state = ctx.ensure_object(CliState)
    return state.kernel()
