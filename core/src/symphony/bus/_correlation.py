"""Request/response correlation: the table of requests waiting for their answer.

A :class:`Correlator` maps request ids to :class:`PendingRequest` waiters. Whoever sends a
request opens an entry, sends, and waits; whoever receives an answer (a ``response`` or
``error`` message whose ``correlation_id`` names the request) resolves it::

    with correlator.expect(request) as pending:
        await connection.send(request)
        with anyio.fail_after(timeout):
            reply = await pending.wait()

The entry leaves the table when the ``with`` block exits -- normally, on timeout, on
cancellation or on error -- so the table never leaks. An answer that arrives for an id no
longer (or never) in the table is an *orphan*: it is counted in ``orphans`` and dropped.
:meth:`Correlator.fail_all` answers every waiter with an error (a connection died).

The bus keeps one correlator (``bus.pending``) for the requests it routes; remote peers keep
one per connection.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import anyio.lowlevel

from symphony.bus._message import ERROR, Message
from symphony.bus._sync import Signal
from symphony.commons.errors import ConflictError, OperationTimeoutError, SymphonyError

__all__ = ["Correlator", "PendingRequest", "request_timeout_error"]


def request_timeout_error(type: str, request_id: str, timeout: float, *, key: str, who: str) -> OperationTimeoutError:
    """The ``bus.request_timeout`` error of request ``request_id`` (of ``type``) that got no
    answer from ``who`` within ``timeout`` seconds; ``context[key]`` names ``who`` (``target``
    for a route or endpoint, ``peer`` for the other end of a link)."""
    return OperationTimeoutError(
        f"request {type!r} got no answer from {who} within {timeout} s",
        code="bus.request_timeout",
        context={"type": type, "id": request_id, "timeout": timeout, key: who},
    )


class PendingRequest:
    """One request waiting for its answer."""

    __slots__ = ("_event", "_reply", "id", "target", "type")

    def __init__(self, request_id: str, type: str, target: str | None) -> None:
        self.id = request_id
        self.type = type
        self.target = target
        self._reply: Message | None = None
        self._event: Signal | None = None

    @property
    def done(self) -> bool:
        """Whether an answer has arrived."""
        return self._reply is not None

    def resolve(self, reply: Message) -> bool:
        """Hand over the answer; False if one was already given (the first wins)."""
        if self._reply is not None:
            return False
        self._reply = reply
        if self._event is not None:
            self._event.set()
        return True

    def fail(self, error: SymphonyError) -> bool:
        """Answer with ``error`` (as an ``error`` message correlated to this request)."""
        return self.resolve(Message(self.type, error.to_wire(), kind=ERROR, correlation_id=self.id))

    async def wait(self) -> Message:
        """Wait for the answer (wrap in ``anyio.fail_after`` for a deadline)."""
        if self._reply is None:
            if self._event is None:
                self._event = Signal()
            await self._event.wait()
        else:
            await anyio.lowlevel.checkpoint_if_cancelled()
        assert self._reply is not None
        return self._reply

    def __repr__(self) -> str:
        return f"<PendingRequest {self.id} {self.type!r} {'done' if self.done else 'waiting'}>"


class Correlator:
    """Request id -> :class:`PendingRequest` (see the module docs)."""

    __slots__ = ("_pending", "orphans")

    def __init__(self) -> None:
        self._pending: dict[str, PendingRequest] = {}
        self.orphans = 0

    def open(self, request: Message, target: str | None = None) -> PendingRequest:
        """Start waiting for the answer to ``request``; ConflictError if its id is already waiting."""
        if request.id in self._pending:
            raise ConflictError(
                f"a request with id {request.id!r} is already waiting for an answer",
                code="bus.duplicate_request_id",
                context={"id": request.id, "type": request.type},
            )
        pending = PendingRequest(request.id, request.type, target)
        self._pending[request.id] = pending
        return pending

    def close(self, request_id: str) -> None:
        """Stop waiting for ``request_id`` (no error if unknown)."""
        self._pending.pop(request_id, None)

    @contextmanager
    def expect(self, request: Message, target: str | None = None) -> Iterator[PendingRequest]:
        """``open`` on entry, ``close`` on exit whatever happens."""
        pending = self.open(request, target)
        try:
            yield pending
        finally:
            self._pending.pop(request.id, None)

    def resolve(self, reply: Message) -> bool:
        """Deliver ``reply`` to its waiter; False (and one more orphan) if nobody waits for it."""
        cid = reply.correlation_id
        pending = self._pending.get(cid) if cid is not None else None
        if pending is None or not pending.resolve(reply):
            self.orphans += 1
            return False
        return True

    def fail_all(self, error: SymphonyError) -> int:
        """Answer every waiter with ``error``; return how many there were."""
        count = 0
        for pending in list(self._pending.values()):
            if pending.fail(error):
                count += 1
        return count

    def get(self, request_id: str) -> PendingRequest | None:
        """The waiter for ``request_id``, if any."""
        return self._pending.get(request_id)

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, request_id: object) -> bool:
        return request_id in self._pending

    def __repr__(self) -> str:
        return f"Correlator({len(self._pending)} pending, {self.orphans} orphans)"
