"""The ``tcp`` transport: length-prefixed frames over TCP, with TLS and a shared token.

URL: ``tcp://host:port`` (IPv6 as ``tcp://[::1]:7400``; port ``0`` when serving picks a free
port, reported by ``task_status.started("tcp://host:<port>")``).

Connection set-up, in order:

1. TCP connect (``TCP_NODELAY`` on).
2. TLS, when configured (``ssl_context``, or ``certfile``/``keyfile`` on the server and
   ``cafile`` on the client). Without TLS the transport only runs on loopback addresses unless
   ``allow_plaintext=True`` says otherwise: a token sent in clear over a network is a leak.
3. Token handshake: the client's first frame is a JSON ``_transport.auth`` request carrying
   the shared token; the server compares it in constant time (:func:`hmac.compare_digest`)
   and answers with a response frame, or with a
   ``PermissionDeniedError(code="transport.auth_failed")`` error frame before closing. A peer
   that sends nothing within ``handshake_timeout``, garbage, or the wrong token is refused and
   logged (``transport.tcp.auth_failed`` / ``transport.connection_refused``); the server keeps
   serving everyone else.

Options (besides the common ``codec``, ``max_frame_size``, ``connect_timeout``):

``token`` / ``token_file``  the shared secret (required on both sides; the file's content is
                            stripped of surrounding whitespace)
``ssl_context``             an :class:`ssl.SSLContext` (server- or client-side as appropriate)
``certfile``, ``keyfile``   (serve) PEM certificate chain and key: builds a server context
``cafile``                  (connect) PEM CA bundle to trust: builds a client context
``tls``                     (connect) ``True`` to use TLS with the system trust store
``server_hostname``         (connect) name to verify in the server certificate (default: host)
``allow_plaintext``         allow a non-loopback address without TLS (default ``False``)
``handshake_timeout``       seconds for TLS plus token exchange (default 5.0)
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import socket
import ssl
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import anyio
import anyio.abc
from anyio.abc import SocketAttribute
from anyio.streams.tls import TLSStream

from symphony.bus import Connection, Message, PeerInfo, get_codec
from symphony.bus.links import ConnectionHandler
from symphony.commons.errors import (
    ConfigError,
    OperationTimeoutError,
    PermissionDeniedError,
    SerializationError,
    SymphonyError,
    TransportError,
)
from symphony.commons.log import get_logger
from symphony_bus_remote import (
    HANDSHAKE_CODEC,
    PRE_HANDSHAKE_MAX_FRAME_SIZE,
    CommonOptions,
    FramedStream,
    StreamConnection,
    common_options,
    note_local_end,
    open_socket_stream,
    send_refusal,
    serve_sockets,
)

__all__ = ["TcpTransport", "parse_tcp_url"]

_log = get_logger("symphony_transport_tcp")

AUTH_TYPE: Final = "_transport.auth"
PROTOCOL_VERSION: Final = 1
DEFAULT_HANDSHAKE_TIMEOUT: Final = 5.0


def parse_tcp_url(url: str, *, allow_port_zero: bool = False) -> tuple[str, int]:
    """``(host, port)`` of a ``tcp://host:port`` URL.

    >>> parse_tcp_url("tcp://127.0.0.1:7400")
    ('127.0.0.1', 7400)
    >>> parse_tcp_url("tcp://[::1]:7400")
    ('::1', 7400)
    """
    if not isinstance(url, str):
        raise ConfigError(f"not a tcp URL: {url!r}", code="transport.bad_url", context={"url": repr(url)})
    try:
        parts = urllib.parse.urlsplit(url)
        scheme, host, port = parts.scheme, parts.hostname, parts.port
    except ValueError:  # an unbalanced "[" or a port that is not a number
        scheme, host, port = None, None, None
    low = 0 if allow_port_zero else 1
    if scheme != "tcp" or not host or port is None or not low <= port <= 65535:
        raise ConfigError(
            f"bad tcp transport URL {url!r}",
            code="transport.bad_url",
            context={"url": url},
            hint="write tcp://host:port, e.g. tcp://127.0.0.1:7400",
        )
    return host, port


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _option_error(key: str, message: str, value: Any = None) -> ConfigError:
    return ConfigError(
        message, code="transport.bad_option", context={"option": key, "value": repr(value)[:100]}
    )


def _token(opts: Mapping[str, Any]) -> bytes:
    token = opts.get("token")
    token_file = opts.get("token_file")
    if token is None and token_file is not None:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"cannot read the token file {token_file}: {exc.strerror}",
                code="transport.tcp.token_file",
                context={"path": str(token_file)},
            ) from exc
    if not isinstance(token, str) or not token:
        raise ConfigError(
            "the tcp transport needs a shared token (option 'token' or 'token_file')",
            code="transport.tcp.token_required",
            context={"option": "token"},
            hint="generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'",
        )
    return token.encode("utf-8")


def _handshake_timeout(opts: Mapping[str, Any]) -> float:
    value = opts.get("handshake_timeout", DEFAULT_HANDSHAKE_TIMEOUT)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise _option_error("handshake_timeout", "handshake_timeout must be a positive number", value)
    return float(value)


def _server_context(opts: Mapping[str, Any]) -> ssl.SSLContext | None:
    ctx = opts.get("ssl_context")
    if ctx is not None:
        if not isinstance(ctx, ssl.SSLContext):
            raise _option_error("ssl_context", "ssl_context must be an ssl.SSLContext", ctx)
        return ctx
    certfile, keyfile = opts.get("certfile"), opts.get("keyfile")
    if certfile is None:
        if keyfile is not None:
            raise _option_error("certfile", "keyfile given without certfile", keyfile)
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(str(certfile), None if keyfile is None else str(keyfile))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot load the TLS certificate/key: {exc}",
            code="transport.tcp.bad_certificate",
            context={"certfile": str(certfile), "keyfile": str(keyfile)},
        ) from exc
    return ctx


def _client_context(opts: Mapping[str, Any]) -> ssl.SSLContext | None:
    ctx = opts.get("ssl_context")
    if ctx is not None:
        if not isinstance(ctx, ssl.SSLContext):
            raise _option_error("ssl_context", "ssl_context must be an ssl.SSLContext", ctx)
        return ctx
    cafile = opts.get("cafile")
    if cafile is None and not opts.get("tls"):
        return None
    try:
        ctx = ssl.create_default_context(cafile=None if cafile is None else str(cafile))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot load the TLS CA file: {exc}",
            code="transport.tcp.bad_certificate",
            context={"cafile": str(cafile)},
        ) from exc
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def _check_plaintext(host: str, ctx: ssl.SSLContext | None, opts: Mapping[str, Any]) -> None:
    if ctx is None and not _is_loopback(host) and not opts.get("allow_plaintext"):
        raise ConfigError(
            f"refusing plaintext TCP to the non-loopback address {host}: the token would travel in clear",
            code="transport.tcp.tls_required",
            context={"host": host},
            hint="configure TLS (certfile/keyfile on the server, cafile on the client), or allow_plaintext",
        )


async def _connect_socket(host: str, port: int) -> socket.socket:
    """A connected, non-blocking TCP socket to ``host:port`` (``TCP_NODELAY`` on), trying each
    address the name resolves to in turn; the last ``OSError`` if none accepts."""
    error: OSError | None = None
    for family, kind, proto, _, address in await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            try:
                sock.connect(address)
                note_local_end(sock)
            except (BlockingIOError, InterruptedError):
                note_local_end(sock)  # before the server side (maybe in this process) accepts
                await anyio.wait_writable(sock)
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code:
                    raise OSError(code, os.strerror(code)) from None
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    raise error or OSError(f"{host!r} resolves to no address")


def _set_nodelay(stream: anyio.abc.ByteStream) -> None:
    sock = stream.extra(SocketAttribute.raw_socket, None)
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


def _address(stream: anyio.abc.ByteStream) -> str:
    addr = stream.extra(SocketAttribute.remote_address, None)
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = addr[0]
        return f"[{host}]:{addr[1]}" if ":" in str(host) else f"{host}:{addr[1]}"
    return str(addr)


class TcpTransport:
    """``tcp://host:port`` with TLS and a shared token (see the module documentation)."""

    scheme: Final = "tcp"

    async def connect(self, url: str, *, options: Mapping[str, Any] | None = None) -> Connection:
        """Connect, run TLS if configured, and authenticate with the shared token."""
        host, port = parse_tcp_url(url)
        opts = dict(options or {})
        common = common_options(opts)
        token = _token(opts)
        ctx = _client_context(opts)
        _check_plaintext(host, ctx, opts)
        timeout = _handshake_timeout(opts)
        try:
            with anyio.fail_after(common.connect_timeout):
                sock = await _connect_socket(host, port)
                stream: anyio.abc.ByteStream = await open_socket_stream(sock, busy_poll=common.busy_poll)
        except TimeoutError:
            raise OperationTimeoutError(
                f"connecting to {url} took longer than {common.connect_timeout} s",
                code="transport.connect_timeout",
                context={"url": url, "timeout": common.connect_timeout},
            ) from None
        except OSError as exc:
            raise TransportError(
                f"cannot connect to {url}: {exc.strerror or exc}",
                code="transport.connect_failed",
                context={"url": url, "errno": exc.errno, "reason": str(exc)},
                hint="is the server running and listening on that address?",
            ) from exc
        address = _address(stream)
        try:
            with anyio.fail_after(timeout):
                if ctx is not None:
                    stream = await TLSStream.wrap(
                        stream,
                        server_side=False,
                        hostname=str(opts.get("server_hostname") or host),
                        ssl_context=ctx,
                        standard_compatible=False,
                    )
                framed = FramedStream(stream, max_frame_size=common.max_frame_size)
                codec = get_codec(HANDSHAKE_CODEC)
                hello = Message.request(
                    AUTH_TYPE, {"token": token.decode("utf-8"), "protocol": PROTOCOL_VERSION}
                )
                await framed.send_frame(codec.encode(hello))
                answer = codec.decode(await framed.receive_frame())
        except TimeoutError:
            await _aclose(stream)
            raise OperationTimeoutError(
                f"the TLS/token handshake with {url} took longer than {timeout} s",
                code="transport.handshake_timeout",
                context={"url": url, "timeout": timeout},
            ) from None
        except (ssl.SSLError, anyio.BrokenResourceError) as exc:
            await _aclose(stream)
            raise TransportError(
                f"TLS handshake with {url} failed: {exc}",
                code="transport.tls_failed",
                context={"url": url, "reason": str(exc)[:300]},
                hint="check the server certificate, cafile and server_hostname",
            ) from exc
        except SymphonyError:
            await _aclose(stream)
            raise
        if answer.is_error:
            await _aclose(stream)
            answer.raise_if_error()
        if answer.kind != "response" or answer.correlation_id != hello.id:
            await _aclose(stream)
            raise TransportError(
                f"{url} answered the token handshake with an unexpected {answer.kind} {answer.type!r}",
                code="transport.handshake_failed",
                context={"url": url, "type": answer.type, "kind": answer.kind},
            )
        peer = PeerInfo("tcp", address, extra={"tls": ctx is not None})
        return StreamConnection(framed, codec=common.codec, peer=peer, max_frame_size=common.max_frame_size)

    async def serve(
        self,
        url: str,
        handler: ConnectionHandler,
        *,
        options: Mapping[str, Any] | None = None,
        task_status: anyio.abc.TaskStatus[str] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen until cancelled; authenticate each peer, then run ``handler`` on it."""
        host, port = parse_tcp_url(url, allow_port_zero=True)
        opts = dict(options or {})
        common = common_options(opts)
        token = _token(opts)
        ctx = _server_context(opts)
        _check_plaintext(host, ctx, opts)
        timeout = _handshake_timeout(opts)
        try:
            # anyio binds (every address family of the host, one port for all); the sockets
            # are then accepted on directly, so each connection gets Symphony's socket stream.
            listener = await anyio.create_tcp_listener(local_host=host, local_port=port, reuse_port=False)
        except OSError as exc:
            raise TransportError(
                f"cannot listen on {url}: {exc.strerror or exc}",
                code="transport.tcp.bind_failed",
                context={"url": url, "errno": exc.errno},
            ) from exc
        sockets = [one.extra(SocketAttribute.raw_socket) for one in listener.listeners]
        bound_port = listener.extra(SocketAttribute.local_port)
        shown = f"[{host}]" if ":" in host else host
        bound = f"tcp://{shown}:{bound_port}"
        _log.info("transport.tcp.listening", url=bound, tls=ctx is not None)

        async def accept(stream: anyio.abc.ByteStream) -> Connection | None:
            return await self._authenticate(
                stream, token=token, ctx=ctx, timeout=timeout, common=common, url=bound
            )

        task_status.started(bound)
        try:
            async with listener:
                await serve_sockets(sockets, accept, handler, name=bound, busy_poll=common.busy_poll)
        finally:
            _log.info("transport.tcp.closed", url=bound)

    async def _authenticate(
        self,
        stream: anyio.abc.ByteStream,
        *,
        token: bytes,
        ctx: ssl.SSLContext | None,
        timeout: float,
        common: CommonOptions,
        url: str,
    ) -> Connection | None:
        _set_nodelay(stream)
        address = _address(stream)
        codec = get_codec(HANDSHAKE_CODEC)
        try:
            with anyio.fail_after(timeout):
                if ctx is not None:
                    stream = await TLSStream.wrap(
                        stream, server_side=True, ssl_context=ctx, standard_compatible=False
                    )
                # The auth frame is small: a tight frame limit keeps garbage from allocating much.
                framed = FramedStream(
                    stream, max_frame_size=min(common.max_frame_size, PRE_HANDSHAKE_MAX_FRAME_SIZE)
                )
                hello = codec.decode(await framed.receive_frame())
        except TimeoutError:
            _log.warning("transport.tcp.auth_failed", url=url, peer=address, reason="handshake timeout")
            await _aclose(stream)
            return None
        except (ssl.SSLError, anyio.BrokenResourceError, anyio.EndOfStream, OSError) as exc:
            _log.warning("transport.tcp.auth_failed", url=url, peer=address, reason=f"TLS: {exc}"[:300])
            await _aclose(stream)
            return None
        except (SerializationError, TransportError) as exc:
            _log.warning("transport.tcp.auth_failed", url=url, peer=address, reason=exc.code)
            await send_refusal(
                stream,
                PermissionDeniedError(
                    "expected a token handshake", code="transport.auth_failed", context={"reason": exc.code}
                ),
            )
            return None
        payload = hello.payload if isinstance(hello.payload, dict) else {}
        offered = payload.get("token")
        # The offered token is compared and forgotten: never logged, never in an error (a
        # token with a lone surrogate is just a wrong token, not an encoding crash).
        good = (
            hello.type == AUTH_TYPE
            and hello.kind == "request"
            and isinstance(offered, str)
            and hmac.compare_digest(offered.encode("utf-8", "surrogatepass"), token)
        )
        del offered
        if not good:
            reason = "wrong token" if hello.type == AUTH_TYPE else f"unexpected first message {hello.type!r}"
            _log.warning("transport.tcp.auth_failed", url=url, peer=address, reason=reason)
            await send_refusal(
                stream,
                PermissionDeniedError(
                    "authentication failed: wrong or missing token",
                    code="transport.auth_failed",
                    hint="give the client the server's token (option 'token' or 'token_file')",
                ),
            )
            return None
        try:
            await framed.send_frame(codec.encode(hello.reply({"ok": True, "protocol": PROTOCOL_VERSION})))
        except TransportError:
            await _aclose(stream)
            return None
        _log.debug("transport.tcp.accepted", url=url, peer=address)
        return StreamConnection(
            framed,
            codec=common.codec,
            peer=PeerInfo("tcp", address, extra={"tls": ctx is not None}),
            max_frame_size=common.max_frame_size,
        )

    def __repr__(self) -> str:
        return "TcpTransport()"


async def _aclose(stream: anyio.abc.AsyncResource) -> None:
    with anyio.CancelScope(shield=True):
        try:
            await stream.aclose()
        except Exception:
            pass
