"""The conductor's bus API: request handlers for ``run.submit``, ``run.status``, ``run.list`` and
``run.control``. A served bus (``symphony serve``) exposes them to other processes; errors
cross as themselves (class, code, context)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from symphony.commons.errors import ValidationError

__all__ = ["CONTROL_COMMANDS", "REQUEST_TYPES", "register_handlers"]

REQUEST_TYPES = ("run.submit", "run.status", "run.list", "run.control")
"""The request types the conductor answers."""

CONTROL_COMMANDS = ("pause", "resume", "cancel", "retry-node", "skip-node", "provide-input")
"""What ``run.control`` accepts as ``command``."""


def _payload(msg: Any) -> Mapping[str, Any]:
    payload = msg.payload if msg.payload is not None else {}
    if not isinstance(payload, Mapping):
        raise ValidationError(
            f"{msg.type} takes an object payload",
            code="conductor.request.malformed",
            context={"type": msg.type},
        )
    return payload


def _run_id(payload: Mapping[str, Any], type_: str) -> str:
    run_id = payload.get("run_id")
    if not isinstance(run_id, str) or not run_id:
        raise ValidationError(
            f"{type_} needs a run_id", code="conductor.request.malformed", context={"type": type_}
        )
    return run_id


def _typed_params(conductor: Any, payload: Mapping[str, Any]) -> Mapping[str, Any]:
    """``payload`` with its ``param_text`` (name -> text, as typed on a command line) typed by
    the template's parameter types and merged into ``params``."""
    from symphony_conductor._request import coerce_parameter

    if "param_text" not in payload:
        return payload
    texts = payload["param_text"]
    template_id = payload.get("template")
    version = payload.get("template_version")
    if (
        not isinstance(texts, Mapping)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in texts.items())
        or not isinstance(template_id, str)
        or not isinstance(version, str | None)
        or not isinstance(payload.get("params") or {}, Mapping)
    ):
        raise ValidationError(
            "param_text maps parameter names to text and needs a template id",
            code="conductor.request.malformed",
            context={"field": "param_text"},
        )
    template = conductor.workflows.templates.get(template_id, version)
    params = dict(payload.get("params") or {})
    params.update((name, coerce_parameter(template, name, raw)) for name, raw in texts.items())
    rest = {k: v for k, v in payload.items() if k != "param_text"}
    return {**rest, "params": params}


def register_handlers(kernel: Any, conductor: Callable[[], Any]) -> None:
    """Route the ``run.*`` requests of ``kernel.bus`` to the conductor (built on first request)."""

    async def submit(msg: Any) -> dict[str, Any]:
        from symphony_conductor._request import RunRequest

        request = RunRequest.from_dict(_typed_params(conductor(), _payload(msg)))
        if request.resume is not None:
            run = await conductor().resume(request.resume, workflow=request.workflow)
        else:
            run = await conductor().submit(request)
        summary: dict[str, Any] = run.summary()
        return summary

    async def status(msg: Any) -> dict[str, Any]:
        payload = _payload(msg)
        return dict(conductor().status(_run_id(payload, "run.status")))

    async def listing(msg: Any) -> list[dict[str, Any]]:
        payload = _payload(msg)
        state = payload.get("state")
        if state is not None and not isinstance(state, str):
            raise ValidationError("state must be a string", code="conductor.request.malformed")
        return [dict(r) for r in conductor().list_runs(state=state)]

    async def control(msg: Any) -> dict[str, Any]:
        payload = _payload(msg)
        run_id = _run_id(payload, "run.control")
        command = payload.get("command")
        if command not in CONTROL_COMMANDS:
            raise ValidationError(
                f"unknown run command {command!r}; known: {', '.join(CONTROL_COMMANDS)}",
                code="conductor.unknown_command",
                context={"command": repr(command), "known": list(CONTROL_COMMANDS)},
            )
        extra = sorted(set(payload) - {"run_id", "command", "node", "value", "reason"})
        if extra:
            raise ValidationError(
                f"run.control has no field(s) {extra}",
                code="conductor.request.malformed",
                context={"fields": ["run_id", "command", "node", "value", "reason"]},
            )
        return dict(
            await conductor().control(
                run_id,
                command,
                node=payload.get("node"),
                value=payload.get("value"),
                reason=payload.get("reason"),
            )
        )

    bus = kernel.bus
    for type_, handler in zip(REQUEST_TYPES, (submit, status, listing, control), strict=True):
        bus.handle(type_, handler, name=f"symphony-conductor:{type_}")
