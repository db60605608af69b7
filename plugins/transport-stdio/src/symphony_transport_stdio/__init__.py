"""JSON-RPC 2.0 over a child process's stdin/stdout (NDJSON) for the Symphony bus.

Parent side: ``BusClient.connect("stdio:?cmd=python&arg=-m&arg=my_ext.server")`` (or the
transport directly). Child side: :func:`serve_stdio`. The kernel finds the transport through
the ``symphony.plugins`` entry point.
"""

from __future__ import annotations

from symphony_transport_stdio.child import serve_stdio
from symphony_transport_stdio.jsonrpc import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    SERVER_ERROR,
    JsonRpcCodec,
    JsonRpcError,
    LineSplitter,
    error_from_jsonrpc,
    error_to_jsonrpc,
)
from symphony_transport_stdio.transport import JsonRpcConnection, StdioTransport, parse_stdio_url

__all__ = [
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "PARSE_ERROR",
    "SERVER_ERROR",
    "JsonRpcCodec",
    "JsonRpcConnection",
    "JsonRpcError",
    "LineSplitter",
    "StdioTransport",
    "error_from_jsonrpc",
    "error_to_jsonrpc",
    "parse_stdio_url",
    "serve_stdio",
]
__version__ = "0.1.0"
