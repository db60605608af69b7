"""Suite-wide fixtures: every async test runs on asyncio and on trio."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run each ``@pytest.mark.anyio`` test once per anyio backend."""
    return str(request.param)


@pytest.fixture(autouse=True)
def _isolated_symphony_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep tests away from the user's real config and cache directories."""
    home = tmp_path_factory.mktemp("symphony-home")
    monkeypatch.setenv("SYMPHONY_CONFIG_DIR", str(home / "config"))
    monkeypatch.setenv("SYMPHONY_USER_CONFIG", str(home / "user.toml"))
    monkeypatch.setenv("SYMPHONY_CACHE_DIR", str(home / "cache"))
    for name in ("SYMPHONY_ENV", "SYMPHONY_STRICT_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
