"""The conductor's one hook: the decision policy, added to the kernel when the conductor activates.

A plugin implementing it lists ``symphony-conductor`` in its manifest's ``requires`` (so the
hookspec exists before its implementation is registered). Implement it with the kernel's
``hookimpl`` marker::

    from symphony_sdk import hookimpl

    @hookimpl
    def symphony_choose_implementation(node_type, candidates, node, kernel):
        return "symphony-local-llm" if "symphony-local-llm" in candidates else None
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from symphony.hookspecs import hookspec

if TYPE_CHECKING:
    from symphony.kernel import Kernel
    from symphony_workflow import Node


@hookspec(firstresult=True)
def symphony_choose_implementation(
    node_type: str, candidates: Sequence[str], node: Node, kernel: Kernel
) -> str | None:
    """Choose which plugin runs a node whose type several installed plugins provide.

    Called by the conductor while it plans a run, once per instrument or operator node whose
    type has more than one usable provider, before anything runs (the choice is part of the
    run's plan, so a resumed run keeps it). The first implementation returning a plugin id
    decides; ``None`` passes to the next one. When every implementation passes, the default
    policy picks the first candidate in sorted order, so a run's plan never depends on
    discovery order. Returning an id that is not among ``candidates`` fails the run's
    preparation with a ``ValidationError`` naming the hook's answer and the candidates.

    This is where a learned policy (the seeds' reinforcement-learning conductor) plugs in:
    keep implementations quick and free of side effects.

    :param node_type: The node's type name (``"textstats.analyze"``).
    :param candidates: Ids of the usable plugins providing it, sorted.
    :param node: The workflow node (:class:`symphony_workflow.Node`): its ``id``, ``config``
        and ``metadata`` (e.g. a ``cost`` estimate) may inform the choice.
    :param kernel: The conductor's kernel (config, plugin records).
    :return: The chosen plugin id, or ``None`` to let the next implementation (or the default) decide.

    Example::

        from symphony_sdk import hookimpl

        @hookimpl
        def symphony_choose_implementation(node_type, candidates, node):
            cheap = [c for c in candidates if c.endswith("-local")]
            return cheap[0] if cheap else None
    """
