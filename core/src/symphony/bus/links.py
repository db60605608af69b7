"""The kit for transport and link implementers: what a new transport or a bus-to-bus link needs
beyond :mod:`symphony.bus`.

A user of the bus does not need this module; :mod:`symphony.bus` exports what they call. Whoever
writes a :class:`~symphony.bus.Transport` (the unix, tcp and stdio transports), or carries
messages between buses (``symphony-bus-remote``), imports these from here:

- the connection contract around :class:`~symphony.bus.Connection`: :data:`ConnectionHandler`
  (what ``Transport.serve`` calls), :func:`run_handler`, :func:`resolve_codec`,
  :func:`number_option` (checked URL options), :data:`DEFAULT_MAX_FRAME_SIZE` and
  :func:`message_too_large`;
- the envelope's parts: the kinds :data:`EVENT`, :data:`REQUEST`, :data:`RESPONSE` and
  :data:`ERROR`, :func:`new_id`, :func:`is_valid_type`, :func:`check_payload` and
  :func:`trusted_message` (a message built from fields already checked);
- request/response plumbing: :class:`Correlator` and :func:`request_timeout_error`;
- subscriptions held for a peer: :class:`TopicTrie`, :func:`validate_pattern` and
  :func:`receive_next`;
- task helpers: :class:`Signal` and :func:`start_in_own_task_group`.

Every name is the bus's own, so a link behaves exactly as the in-process bus does.
"""

from __future__ import annotations

from symphony.bus._correlation import Correlator, request_timeout_error
from symphony.bus._message import (
    ERROR,
    EVENT,
    REQUEST,
    RESPONSE,
    check_payload,
    is_valid_type,
    new_id,
    trusted_message,
)
from symphony.bus._subscription import receive_next
from symphony.bus._sync import Signal, start_in_own_task_group
from symphony.bus._topics import TopicTrie, validate_pattern
from symphony.bus._transport import (
    DEFAULT_MAX_FRAME_SIZE,
    ConnectionHandler,
    message_too_large,
    number_option,
    resolve_codec,
    run_handler,
)

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "ERROR",
    "EVENT",
    "REQUEST",
    "RESPONSE",
    "ConnectionHandler",
    "Correlator",
    "Signal",
    "TopicTrie",
    "check_payload",
    "is_valid_type",
    "message_too_large",
    "new_id",
    "number_option",
    "receive_next",
    "request_timeout_error",
    "resolve_codec",
    "run_handler",
    "start_in_own_task_group",
    "trusted_message",
    "validate_pattern",
]
