"""The ``symphony`` command line (click). Plugins add commands through a hook.

:func:`current_kernel` gives a plugin's command the kernel of the running ``symphony``.
"""

from symphony.cli._context import current_kernel

__all__ = ["current_kernel"]
