"""The ``symphony`` command line (click). Plugins add commands through a hook.

:func:`current_kernel` gives a plugin's command the kernel of the running ``symphony``;
``CliState(kernel=...)`` as the click ``obj`` of :data:`symphony.cli.main.cli` runs the command
line against an existing kernel (what ``symphony_sdk.testing.invoke_command`` does);
:func:`echo_json` prints what a command returns as JSON; :func:`plain` makes outside text safe
to print.
"""

from symphony.cli._context import CliState, current_kernel, echo_json, plain

__all__ = ["CliState", "current_kernel", "echo_json", "plain"]
