"""How an instrument tells the pool to load, unload and check its model.

A model is anything with the four methods of :class:`ModelLoader`. The pool calls ``load``,
``unload`` and ``health`` in a worker thread (they may block: read weights, start a server),
and ``estimate`` on the event loop (it must be cheap). The SDK's ``Instrument`` base class
implements this protocol; any object with these methods works::

    class WordVectors:
        def __init__(self, path):
            self.path = path

        def estimate(self):
            return ResourceEstimate(memory=os.path.getsize(self.path) * 4)

        def load(self):
            return dict(parse(self.path))      # the instance the pool hands to leases

        def unload(self, instance):
            instance.clear()

        def health(self, instance):
            return "the" in instance            # False or raising marks it unhealthy
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import attrs

__all__ = ["ModelLoader", "ResourceEstimate"]


def _non_negative(instance: Any, attribute: attrs.Attribute[int], value: int) -> None:
    from symphony.commons.errors import ValidationError

    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValidationError(
            f"resource estimate {attribute.name} must be a non-negative integer, got {value!r}",
            code="pool.estimate.invalid",
            context={"field": attribute.name, "value": repr(value)},
        )


@attrs.frozen
class ResourceEstimate:
    """What one loaded instance is expected to use (bytes); the pool measures and corrects it."""

    memory: int = attrs.field(default=0, validator=_non_negative)
    gpu_memory: int = attrs.field(default=0, validator=_non_negative)

    def to_dict(self) -> dict[str, int]:
        """A JSON-safe form."""
        return {"memory": self.memory, "gpu_memory": self.gpu_memory}


@runtime_checkable
class ModelLoader(Protocol):
    """The contract between an instrument and the pool (load, unload, health, estimate)."""

    def estimate(self) -> ResourceEstimate:
        """Declared resource use of one loaded instance; called on the event loop, keep it cheap."""
        ...

    def load(self) -> Any:
        """Build and return the instance; runs in a worker thread, may block; raise on failure."""
        ...

    def unload(self, instance: Any) -> None:
        """Release what ``load`` built; runs in a worker thread."""
        ...

    def health(self, instance: Any) -> bool:
        """True when ``instance`` still serves; False or raising counts as a failed check."""
        ...
