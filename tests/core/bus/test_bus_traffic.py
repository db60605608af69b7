"""Traffic subscriptions: every message of a matching type that passes through the bus --
events, requests and their answers, the bus's own refusals -- never slowing any of it."""

from __future__ import annotations

import anyio
import pytest

from symphony.bus import Bus, Message
from symphony.bus._message import ERROR, EVENT, REQUEST, RESPONSE
from symphony.commons.errors import NotFoundError, OperationTimeoutError, ValidationError

pytestmark = pytest.mark.anyio


def _drain(sub: object) -> list[Message]:
    seen = []
    while (msg := sub.receive_nowait()) is not None:  # type: ignore[attr-defined]
        seen.append(msg)
    return seen


async def test_a_traffic_subscription_sees_requests_answers_and_events() -> None:
    bus = Bus()
    bus.handle("svc.echo", lambda msg: {"echo": msg.payload})
    traffic = bus.subscribe("svc.#", traffic=True)
    plain = bus.subscribe("svc.#")

    reply = await bus.request("svc.echo", 1)
    await bus.publish(Message("svc.tick", {"n": 2}))

    seen = _drain(traffic)
    assert [(m.kind, m.type) for m in seen] == [
        (REQUEST, "svc.echo"),
        (RESPONSE, "svc.echo"),
        (EVENT, "svc.tick"),
    ]
    request, response, _ = seen
    assert response is reply and response.correlation_id == request.id
    # an ordinary subscription sees events only
    assert [m.type for m in _drain(plain)] == ["svc.tick"]


async def test_refusals_errors_and_timeouts_are_traffic_too() -> None:
    bus = Bus()

    def broken(msg: Message) -> None:
        raise ValidationError("no", code="svc.refused", context={})

    async def slow(msg: Message) -> None:
        await anyio.sleep(10)

    bus.handle("svc.broken", broken)
    bus.handle("svc.slow", slow)
    traffic = bus.subscribe("#", traffic=True)
    with pytest.raises(NotFoundError):
        await bus.request("nobody.home")
    with pytest.raises(ValidationError):
        await bus.request("svc.broken")
    with pytest.raises(OperationTimeoutError):
        await bus.request("svc.slow", timeout=0.05)
    with pytest.raises(NotFoundError):
        await bus.request("svc.broken", to="no-such-endpoint")

    seen = _drain(traffic)
    assert [(m.kind, m.type) for m in seen] == [
        (REQUEST, "nobody.home"),
        (ERROR, "nobody.home"),
        (REQUEST, "svc.broken"),
        (ERROR, "svc.broken"),
        (REQUEST, "svc.slow"),
        (ERROR, "svc.slow"),
        (REQUEST, "svc.broken"),
        (ERROR, "svc.broken"),
    ]
    codes = [m.payload["code"] for m in seen if m.kind == ERROR]
    assert codes == ["bus.no_route", "svc.refused", "bus.request_timeout", "bus.unknown_endpoint"]
    for request, answer in zip(seen[::2], seen[1::2], strict=True):
        assert answer.correlation_id == request.id


async def test_traffic_never_waits_it_drops_and_counts() -> None:
    bus = Bus()
    bus.handle("svc.echo", lambda msg: msg.payload)
    traffic = bus.subscribe("svc.*", traffic=True, buffer=3)
    assert traffic.policy == "drop-oldest"
    for n in range(5):
        await bus.request("svc.echo", n)  # 10 messages through a queue of 3: nothing blocks
    assert traffic.depth == 3 and traffic.dropped == 7 and traffic.delivered == 10
    assert [m.kind for m in _drain(traffic)] == [RESPONSE, REQUEST, RESPONSE]
    stats = {s["name"]: s for s in bus.metrics.snapshot()["subscriptions"]}
    assert stats[traffic.name]["dropped"] == 7

    with pytest.raises(ValidationError) as info:
        bus.subscribe("svc.*", traffic=True, policy="wait")
    assert info.value.code == "bus.bad_subscription"


async def test_closing_a_traffic_subscription_stops_it_and_callbacks_work() -> None:
    bus = Bus()
    bus.handle("svc.echo", lambda msg: msg.payload)
    kinds: list[str] = []
    callback = bus.subscribe_callback("svc.echo", lambda msg: kinds.append(msg.kind), traffic=True)
    traffic = bus.subscribe("svc.echo", traffic=True)
    assert set(bus.matching("svc.echo")) == {callback, traffic}
    await bus.request("svc.echo", 1)
    assert kinds == [REQUEST, RESPONSE]
    traffic.close()
    callback.close()
    await bus.request("svc.echo", 2)
    assert kinds == [REQUEST, RESPONSE] and traffic.depth == 2
    assert bus.matching("svc.echo") == ()
    assert bus._tapped == 0  # back on the path that tests one integer


async def test_publish_nowait_and_request_all_are_seen() -> None:
    bus = Bus()
    bus.handle("svc.who", lambda msg: "a", name="a")
    bus.handle("svc.who", lambda msg: "b", name="b")
    traffic = bus.subscribe("svc.#", traffic=True)
    bus.publish_nowait(Message("svc.tick"))
    answers = await bus.request_all("svc.who")
    assert sorted(m.payload for m in answers) == ["a", "b"]
    seen = _drain(traffic)
    assert seen[0].kind == EVENT
    assert sorted(m.kind for m in seen[1:]) == [REQUEST, REQUEST, RESPONSE, RESPONSE]
