"""Telling whether a socket's peer is this very process (no busy polling towards it)."""

from __future__ import annotations

import gc
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from symphony_bus_remote import _same_process
from symphony_bus_remote._same_process import note_local_end, peer_is_this_process


def _listener(host: str = "127.0.0.1", family: socket.AddressFamily = socket.AF_INET) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.bind((host, 0))
    sock.listen()
    return sock


def _connect(port: int, host: str = "127.0.0.1", *, note: bool = True) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        sock.connect((host, port))
    except BlockingIOError:
        pass
    if note:
        note_local_end(sock)
    sock.setblocking(True)
    return sock


@pytest.fixture
def clean_registry() -> Iterator[None]:
    saved = dict(_same_process._local_ends)
    _same_process._local_ends.clear()
    yield
    _same_process._local_ends.clear()
    _same_process._local_ends.update(saved)


def test_a_tcp_connection_within_this_process_is_seen_from_both_ends(clean_registry: None) -> None:
    listener = _listener()
    note_local_end(listener)
    client = _connect(listener.getsockname()[1])
    server, _ = listener.accept()
    try:
        assert peer_is_this_process(client)  # its peer is our listener's address
        assert peer_is_this_process(server)  # its peer is our client's address
    finally:
        for sock in (client, server, listener):
            sock.close()


def test_a_wildcard_listener_is_matched_by_port_on_this_host(clean_registry: None) -> None:
    listener = _listener("0.0.0.0")
    note_local_end(listener)
    client = _connect(listener.getsockname()[1], note=False)
    try:
        assert peer_is_this_process(client)
    finally:
        client.close()
        listener.close()


def test_unregistered_ends_are_not_this_process(clean_registry: None) -> None:
    listener = _listener()  # never noted: as if another process listened
    client = _connect(listener.getsockname()[1], note=False)
    server, _ = listener.accept()
    try:
        assert not peer_is_this_process(client)
        assert not peer_is_this_process(server)
    finally:
        for sock in (client, server, listener):
            sock.close()


def test_a_tcp_server_in_another_process_is_not_this_process(clean_registry: None, tmp_path: Path) -> None:
    port_file = tmp_path / "port"
    code = (
        "import socket, sys, time\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
        f"open({str(port_file)!r}, 'w').write(str(s.getsockname()[1]))\n"
        "c, _ = s.accept(); time.sleep(30)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 20
        while not port_file.exists() or not port_file.read_text():
            assert time.monotonic() < deadline, "the child did not start listening"
            time.sleep(0.01)
        mine = _listener()  # this process also listens, on another port
        note_local_end(mine)
        client = _connect(int(port_file.read_text()))
        try:
            assert not peer_is_this_process(client)
        finally:
            client.close()
            mine.close()
    finally:
        child.kill()
        child.wait()


def test_entries_go_with_their_sockets(clean_registry: None) -> None:
    listener = _listener()
    note_local_end(listener)
    assert len(_same_process._local_ends) == 1
    listener.close()
    del listener
    gc.collect()
    assert _same_process._local_ends == {}


def test_unix_peers_use_their_credentials() -> None:
    left, right = socket.socketpair()
    try:
        assert peer_is_this_process(left) and peer_is_this_process(right)
    finally:
        left.close()
        right.close()


def test_other_sockets_are_ignored(clean_registry: None) -> None:
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        note_local_end(unix)  # not an IP socket: nothing to remember
        assert _same_process._local_ends == {}
        assert not peer_is_this_process(udp)  # unconnected: no peer at all
    finally:
        udp.close()
        unix.close()
