"""A Python child answering JSON-RPC on stdio with serve_stdio (used by the stdio tests)."""

from __future__ import annotations

import os

import anyio

from symphony.bus._core import Bus
from symphony.bus._message import Message
from symphony.commons.errors import PermissionDeniedError, ValidationError
from symphony_transport_stdio import serve_stdio


async def main() -> None:
    notes: list[object] = []
    async with Bus(name="child") as bus:

        async def add(msg: Message) -> int:
            return int(msg.payload["a"] + msg.payload["b"])

        def fail(msg: Message) -> None:
            raise ValidationError(
                "the widget is too large", code="demo.widget_too_large", context={"size": 12}, hint="smaller"
            )

        def deny(msg: Message) -> None:
            raise PermissionDeniedError("not allowed", code="demo.denied", context={"who": "child"})

        def crash(msg: Message) -> None:
            raise RuntimeError("boom")

        async def slow(msg: Message) -> str:
            await anyio.sleep(float(msg.payload[0]))
            return "done"

        def die(msg: Message) -> None:
            os._exit(3)

        def shout(msg: Message) -> str:
            print("stray output that must not corrupt the protocol", flush=True)
            return "still fine"

        def pid(msg: Message) -> int:
            return os.getpid()

        async def ask_parent(msg: Message) -> object:
            (peer,) = bus.endpoints.names()
            reply = await bus.request("parent.greet", msg.payload, to=peer, timeout=10)
            return reply.payload

        async def notify_parent(msg: Message) -> int:
            (peer,) = bus.endpoints.names()
            endpoint = bus.endpoints.get(peer)
            for i in range(int(msg.payload[0])):
                await endpoint.deliver(Message("child.tick", {"i": i}))
            return int(msg.payload[0])

        def raw_bytes(msg: Message) -> bytes:
            return b"not JSON"  # the answer cannot be encoded: an error answer replaces it

        def count_notes(msg: Message) -> list[object]:
            return notes

        for name, fn in {
            "math.add": add,
            "demo.fail": fail,
            "demo.deny": deny,
            "demo.crash": crash,
            "demo.slow": slow,
            "demo.die": die,
            "demo.shout": shout,
            "demo.pid": pid,
            "demo.ask_parent": ask_parent,
            "demo.notify_parent": notify_parent,
            "notes.list": count_notes,
            "demo.bytes": raw_bytes,
        }.items():
            bus.handle(name, fn)
        bus.subscribe_callback("note.#", lambda m: notes.append(m.payload))
        await serve_stdio(bus)


if __name__ == "__main__":
    anyio.run(main)
