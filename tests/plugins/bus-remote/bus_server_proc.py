"""A real BusServer in its own process, for the reliability tests and the benchmark.

    python bus_server_proc.py URL [--heartbeat SECONDS] [--token TOKEN] [--backend asyncio|trio] [--uvloop]

Prints ``READY <bound url> <pid>`` on stdout once it accepts connections, then serves until
killed. Handlers: ``demo.echo`` (returns the payload), ``demo.pid`` (its pid), ``demo.slow``
(sleeps ``payload`` seconds, then answers), ``demo.fail`` (raises a ValidationError with a
context and a hint), ``demo.publish`` (publishes ``payload["count"]`` events of type
``payload["type"]``). It also counts events of type ``bench.#`` and answers ``demo.count``.
"""

from __future__ import annotations

import argparse
import os
import sys

import anyio

from symphony.bus._core import Bus
from symphony.bus._message import Message
from symphony.commons.errors import ValidationError
from symphony_bus_remote import BusServer


async def main(args: argparse.Namespace) -> None:
    config = {"heartbeat_interval": args.heartbeat, "heartbeat_timeout": args.heartbeat * 4}
    counted = {"n": 0}

    async def echo(msg: Message) -> object:
        return msg.payload

    def pid(msg: Message) -> int:
        return os.getpid()

    async def slow(msg: Message) -> str:
        await anyio.sleep(float(msg.payload))
        return "done"

    def fail(msg: Message) -> None:
        raise ValidationError(
            "the widget is too large",
            code="demo.widget_too_large",
            context={"size": 12, "limit": 10, "nested": {"unit": "cm"}},
            hint="use a smaller widget",
        )

    async def publish(msg: Message) -> int:
        for i in range(int(msg.payload["count"])):
            await bus.publish(Message(msg.payload["type"], {"i": i}))
        return int(msg.payload["count"])

    def count(msg: Message) -> int:
        return counted["n"]

    def on_bench(msg: Message) -> None:
        counted["n"] += 1

    options = {"token": args.token} if args.token else {}
    async with Bus(config=config) as bus:
        bus.handle("demo.echo", echo)
        bus.handle("bench.echo", echo)
        bus.handle("demo.pid", pid)
        bus.handle("demo.slow", slow)
        bus.handle("demo.fail", fail)
        bus.handle("demo.publish", publish)
        bus.handle("demo.count", count)
        bus.subscribe_callback("bench.#", on_bench, buffer=100_000)
        async with BusServer(bus, args.url, options=options) as server:
            print(f"READY {server.url} {os.getpid()}", flush=True)
            await anyio.sleep_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--heartbeat", type=float, default=1.0)
    parser.add_argument("--token", default=None)
    parser.add_argument("--backend", default="asyncio")
    parser.add_argument("--uvloop", action="store_true")
    ns = parser.parse_args()
    backend_options = {"use_uvloop": True} if ns.uvloop and ns.backend == "asyncio" else {}
    try:
        anyio.run(main, ns, backend=ns.backend, backend_options=backend_options)
    except KeyboardInterrupt:
        sys.exit(0)
