"""Every transport URL parser, fuzzed: any string gives a parsed value or a ConfigError naming
the URL -- never another exception -- and what parses round-trips through a URL built back
from it."""

from __future__ import annotations

import urllib.parse
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from symphony.bus._transport import _memory_options, scheme_of
from symphony.commons.errors import ConfigError
from symphony_transport_stdio import parse_stdio_url
from symphony_transport_tcp import parse_tcp_url
from symphony_transport_unix import parse_unix_url

_SCHEMES = st.sampled_from(
    ["tcp://", "unix:", "unix://", "stdio:", "stdio://", "memory://", "", "TCP://", "x:"]
)
_URLS = st.one_of(
    st.text(max_size=60),
    st.builds(lambda a, b: a + b, _SCHEMES, st.text(max_size=60)),
    st.builds(
        lambda host, port: f"tcp://{host}:{port}",
        st.one_of(
            st.from_regex(r"[a-z0-9.\-]{0,20}", fullmatch=True), st.just("[::1]"), st.text(max_size=10)
        ),
        st.one_of(st.integers(-5, 70_000), st.text(max_size=6)),
    ),
    st.builds(
        lambda pairs: "stdio:?" + "&".join(f"{k}={v}" for k, v in pairs),
        st.lists(
            st.tuples(st.sampled_from(["cmd", "arg", "cwd", "env", "x", ""]), st.text(max_size=8)), max_size=5
        ),
    ),
)


def _parsed_or_config_error(
    fn: Any, url: Any, *, codes: tuple[str, ...] = ("transport.bad_url",), **kw: Any
) -> Any:
    try:
        return fn(url, **kw)
    except ConfigError as exc:
        assert exc.code in codes
        assert exc.message
        return None


@settings(max_examples=400, deadline=None)
@given(url=_URLS)
def test_tcp_urls(url: str) -> None:
    parsed = _parsed_or_config_error(parse_tcp_url, url, allow_port_zero=True)
    if parsed is not None:
        host, port = parsed
        assert host and 0 <= port <= 65535
        shown = f"[{host}]" if ":" in host else host
        assert parse_tcp_url(f"tcp://{shown}:{port}", allow_port_zero=True) == (host, port)


@settings(max_examples=400, deadline=None)
@given(url=_URLS)
def test_unix_urls(url: str) -> None:
    # a well-formed path over the 107-byte socket limit is refused with its own clear code
    path = _parsed_or_config_error(
        parse_unix_url, url, codes=("transport.bad_url", "transport.unix.path_too_long")
    )
    if path is not None:
        assert isinstance(path, str) and path and "\0" not in path
        assert (
            parse_unix_url("unix:" + ("//" if path.startswith("/") else "") + urllib.parse.quote(path))
            == path
        )


@settings(max_examples=400, deadline=None)
@given(url=_URLS)
def test_stdio_urls(url: str) -> None:
    parsed = _parsed_or_config_error(parse_stdio_url, url)
    if parsed is not None:
        assert set(parsed) == {"command", "cwd", "env"}
        assert not parsed["command"] or parsed["command"][0]
        query = [("cmd", parsed["command"][0])] if parsed["command"] else []
        query += [("arg", arg) for arg in parsed["command"][1:]]
        if parsed["cwd"] is not None:
            query.append(("cwd", parsed["cwd"]))
        query += [("env", f"{k}={v}") for k, v in parsed["env"].items()]
        assert parse_stdio_url("stdio:?" + urllib.parse.urlencode(query)) == parsed


@settings(max_examples=400, deadline=None)
@given(url=st.one_of(_URLS, st.integers(), st.none()))
def test_scheme_of(url: Any) -> None:
    scheme = _parsed_or_config_error(scheme_of, url)
    if scheme is not None:
        assert isinstance(scheme, str) and scheme == scheme.lower()


@settings(max_examples=400, deadline=None)
@given(url=_URLS)
def test_memory_urls(url: str) -> None:
    name = _parsed_or_config_error(lambda u: _memory_options(u, None)[0], url)
    if name is not None:
        assert name and name == name.strip("/")
