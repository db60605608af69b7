"""The ``symphony`` command line (click). Plugins add commands through a hook.

:func:`current_kernel` gives a plugin's command the kernel of the running ``symphony``;
:class:`CliState` is the object of the top-level group (``@click.pass_obj``) holding its
options; :func:`echo_json` prints what a command returns as JSON.
"""

from symphony.cli._context import CliState, current_kernel, echo_json

__all__ = ["CliState", "current_kernel", "echo_json"]
