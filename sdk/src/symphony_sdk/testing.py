"""A pytest plugin for testing Symphony plugins against the real kernel.

Installed with ``symphony-sdk`` (entry point ``pytest11``), so the fixtures are just there::

    def test_my_service(symphony_kernel_factory):
        kernel = symphony_kernel_factory(plugins=["my_plugin.plugin"])
        assert kernel.service("my-service").ping() == "pong"

Kernels made here are isolated: installed plugins are **not** loaded unless you pass
``autoload=True``, and config, cache and user files live in a temporary directory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from symphony.kernel import Kernel, PluginSpec

if TYPE_CHECKING:
    from click.testing import Result

    from symphony.bus import Bus
    from symphony_bus_remote import BusClient

__all__ = [
    "KernelFactory",
    "connect_test_client",
    "invoke_command",
    "open_test_kernel",
    "write_plugin_distribution",
]

KernelFactory = Callable[..., Kernel]


def _isolate(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    monkeypatch.setenv("SYMPHONY_USER_CONFIG", str(root / "user.toml"))
    monkeypatch.setenv("SYMPHONY_CACHE_DIR", str(root / "cache"))
    monkeypatch.setenv("SYMPHONY_DATA_DIR", str(root / "data"))
    monkeypatch.delenv("SYMPHONY_CONFIG_DIR", raising=False)
    monkeypatch.delenv("SYMPHONY_STRICT_PLUGINS", raising=False)


@pytest.fixture
def symphony_kernel_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[KernelFactory]:
    """A factory of isolated kernels: ``factory(plugins=[...], autoload=False, overrides=None, **kw)``."""
    _isolate(monkeypatch, tmp_path / "symphony")
    made: list[Kernel] = []

    def factory(
        plugins: Sequence[PluginSpec] = (),
        *,
        autoload: bool = False,
        overrides: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Kernel:
        kwargs.setdefault("env", "test")
        kernel = Kernel.create(plugins=plugins, autoload=autoload, overrides=overrides, **kwargs)
        made.append(kernel)
        return kernel

    yield factory
    for kernel in made:
        kernel.close()


@pytest.fixture
def symphony_kernel(symphony_kernel_factory: KernelFactory, request: pytest.FixtureRequest) -> Kernel:
    """An isolated kernel; add plugins with ``@pytest.mark.symphony_plugins("pkg.plugin", ...)``."""
    marker = request.node.get_closest_marker("symphony_plugins")
    plugins = tuple(marker.args) if marker else ()
    return symphony_kernel_factory(plugins=plugins)


@asynccontextmanager
async def open_test_kernel(
    plugins: Sequence[PluginSpec] = (), *, autoload: bool = False, **kwargs: Any
) -> AsyncIterator[Kernel]:
    """``async with open_test_kernel([...]) as kernel:`` — a running kernel (startup hooks awaited).

    Use it inside a test that already isolates the environment (e.g. one that also requests
    ``symphony_kernel_factory`` or sets the SYMPHONY_* variables itself).
    """
    kwargs.setdefault("env", "test")
    async with Kernel.open(plugins=plugins, autoload=autoload, **kwargs) as kernel:
        yield kernel


@asynccontextmanager
async def connect_test_client(
    target: Kernel | Bus, url: str | None = None, **client_options: Any
) -> AsyncIterator[BusClient]:
    """``async with connect_test_client(kernel) as client:`` -- serve the kernel's (or a bare
    bus's) message bus and yield a ``symphony_bus_remote.BusClient`` connected to it, to
    test a plugin's handlers the way another process reaches them: requests, events,
    subscriptions, and errors crossing with their class, code and context.

    ``url`` defaults to a fresh ``memory://`` name (the link protocol and codecs, no socket);
    pass ``unix:///...`` (with ``symphony-transport-unix`` installed) for a real socket.
    ``client_options`` go to ``BusClient.connect`` (``codec="json"``, ``name=...``).

    Needs ``symphony-bus-remote`` (``pip install symphony-sdk[remote]``); without it this raises
    :class:`~symphony.commons.errors.NotFoundError` (code ``sdk.bus_remote_missing``).
    """
    import secrets

    try:
        from symphony_bus_remote import BusClient, BusServer
    except ImportError as exc:
        from symphony.commons.errors import NotFoundError

        raise NotFoundError(
            "connect_test_client needs the symphony-bus-remote distribution, which is not installed",
            code="sdk.bus_remote_missing",
            context={"error": repr(exc)},
            hint="pip install symphony-sdk[remote]  (or symphony-bus-remote)",
        ) from exc

    kernel = target if isinstance(target, Kernel) else None
    bus = target.bus if isinstance(target, Kernel) else target
    url = url or f"memory://sdk-test-{secrets.token_hex(6)}"
    async with BusServer(bus, url, kernel=kernel) as server:
        assert server.url is not None  # set once it serves
        async with BusClient.connect(server.url, **client_options) as client:
            yield client


def invoke_command(
    kernel: Kernel,
    args: Sequence[str],
    *,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
    catch_exceptions: bool = False,
) -> Result:
    """Run ``symphony <args>`` in-process against ``kernel``; return click's ``Result``.

    The command line sees ``kernel``: a plugin's command (``current_kernel()`` inside it) gets
    this kernel, and plugin commands come from its plugins (activated on use), so a plugin given
    to ``symphony_kernel_factory(plugins=[...])`` is testable without installing it::

        result = invoke_command(kernel, ["hello", "ada"])
        assert result.exit_code == 0 and result.output == "hello ada\n"

    Exceptions a command raises propagate to the test unless ``catch_exceptions=True``
    (``result.exception`` then holds them); ``SystemExit`` becomes ``result.exit_code``.
    """
    from click.testing import CliRunner

    from symphony.cli import CliState
    from symphony.cli.main import cli

    runner = CliRunner()
    return runner.invoke(
        cli,
        list(args),
        obj=CliState(kernel=kernel),
        input=input,
        env=dict(env) if env is not None else None,
        catch_exceptions=catch_exceptions,
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``symphony_plugins`` marker."""
    config.addinivalue_line("markers", "symphony_plugins(*specs): plugins the symphony_kernel fixture loads")


def write_plugin_distribution(
    root: str | Path,
    plugin_id: str,
    *,
    manifest: Mapping[str, Any] | str | None = None,
    module_source: str = "",
    version: str = "0.1.0",
    entry_point_name: str | None = None,
) -> Path:
    """Write an installed-looking plugin distribution under ``root`` (a ``sys.path`` entry).

    Creates the package ``<plugin_id as identifier>`` with ``plugin.py`` (``module_source``)
    and ``symphony.toml`` (``manifest``: a mapping merged into a valid default ``[plugin]``
    table, or raw TOML text), plus a ``.dist-info`` with the ``symphony.plugins`` entry point.
    Returns the package directory. Handy for testing discovery, conflicts and broken plugins.
    """
    import tomlkit

    root = Path(root)
    package = plugin_id.replace("-", "_").replace(".", "_")
    pkg_dir = root / package
    pkg_dir.mkdir(parents=True, exist_ok=True)
    (pkg_dir / "__init__.py").write_text("")
    (pkg_dir / "plugin.py").write_text(module_source)
    if isinstance(manifest, str):
        text = manifest
    else:
        table: dict[str, Any] = {
            "id": plugin_id,
            "version": version,
            "kind": "service",
            "api": ">=0.1,<0.2",
            "summary": f"test plugin {plugin_id}",
        }
        extra = dict(manifest or {})
        config_schema = extra.pop("config_schema", None)
        table.update(extra)
        doc: dict[str, Any] = {"plugin": table}
        if config_schema is not None:
            doc["config_schema"] = config_schema
        text = tomlkit.dumps(doc)
    (pkg_dir / "symphony.toml").write_text(text)
    dist_name = plugin_id.replace("-", "_")
    dist_info = root / f"{dist_name}-{version}.dist-info"
    dist_info.mkdir(exist_ok=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {plugin_id}\nVersion: {version}\n")
    (dist_info / "entry_points.txt").write_text(
        f"[symphony.plugins]\n{entry_point_name or plugin_id} = {package}.plugin\n"
    )
    return pkg_dir
