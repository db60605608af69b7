"""Hooks the pool manager adds to the kernel (with ``kernel.add_hookspecs``) when activated.

Implement them in any plugin with the kernel's ``hookimpl`` marker::

    from symphony.hookspecs import hookimpl

    @hookimpl
    def symphony_pool_transition(transition):
        log.info("model", key=transition.key, to=transition.target.value, why=transition.reason.value)

    @hookimpl
    def symphony_pool_predictors(pool):
        return MyPredictor()
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from symphony.hookspecs import hookspec

if TYPE_CHECKING:
    from symphony_pool_manager.lifecycle import Transition
    from symphony_pool_manager.pool import ModelPool


@hookspec
def symphony_pool_transition(transition: Transition) -> None:
    """Called on every lifecycle change of every model in the ``pool-manager`` service.

    :param transition: key, from and to states, reason, time, duration of the previous state.

    Runs synchronously inside the change, on the event loop: keep it quick. A raising
    implementation is logged and skipped; the change stands.
    """


@hookspec
def symphony_pool_predictors(pool: ModelPool) -> Any:
    """Return a predictor (or a list of them) for the pool to consult when pre-warming.

    :param pool: the pool being built; a predictor may keep it to look at states.

    Called once, when the ``pool-manager`` service is created. A predictor has ``name``,
    ``predict(now) -> [Prediction]`` and ``observe(key, now)``
    (see :mod:`symphony_pool_manager.predictors`).
    """
