"""What runs inside a process-executor worker: find the implementation again, run it, return outputs."""

from __future__ import annotations

import importlib
import inspect
import traceback
from importlib.metadata import entry_points
from typing import Any

from symphony.commons.errors import SymphonyError

__all__ = ["WorkerError", "find_implementation", "run_task"]

_FOUND: dict[tuple[str | None, str | None, str], Any] = {}


class WorkerError(SymphonyError):
    """A node failed inside a worker process; the message carries the worker's traceback."""

    default_code = "dag.executor.worker_failed"


def _from_plugin(provider: str, node_type: str) -> Any:
    from symphony_workflow import NodeTypeRegistry

    matches = [ep for ep in entry_points(group="symphony.plugins") if ep.name == provider]
    if not matches:
        return None
    module = matches[0].load()
    hook = getattr(module, "symphony_register_node_types", None)
    if hook is None:
        return None
    registry = NodeTypeRegistry()
    params = inspect.signature(hook).parameters
    with registry.providing(provider):
        hook(**{k: v for k, v in {"registry": registry, "kernel": None}.items() if k in params})
    return registry.get(node_type).implementation if node_type in registry else None


def _from_locator(locator: str) -> Any:
    module_name, _, qualname = locator.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target() if isinstance(target, type) else target


def find_implementation(provider: str | None, locator: str | None, node_type: str) -> Any:
    """The implementation of ``node_type``: from its plugin's hook, else from its locator."""
    key = (provider, locator, node_type)
    found = _FOUND.get(key)
    if found is None:
        if provider is not None:
            found = _from_plugin(provider, node_type)
        if found is None and locator is not None:
            found = _from_locator(locator)
        if found is None:
            raise LookupError(f"node type {node_type!r} not found (plugin {provider}, locator {locator})")
        _FOUND[key] = found
    return found


def run_task(
    provider: str | None,
    locator: str | None,
    node_type: str,
    inputs: dict[str, Any],
    config: dict[str, Any],
    run_id: str,
    node_id: str,
    attempt: int,
) -> tuple[bool, Any]:
    """``(True, outputs)`` or ``(False, "error text with traceback")``."""
    from symphony_sdk.nodes import NodeContext

    try:
        impl = find_implementation(provider, locator, node_type)
        result = impl.execute(inputs, NodeContext(run_id, node_id, node_type, config, attempt))
        if inspect.isawaitable(result):
            import anyio

            async def wait() -> Any:
                return await result

            result = anyio.run(wait)
        return True, result
    except BaseException as exc:  # the worker must answer, whatever happened
        return False, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
