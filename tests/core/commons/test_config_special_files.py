"""Config files and manifests are read only when they are regular files within the size limit."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from symphony.commons.config import load_config, set_user_value
from symphony.commons.errors import ConfigError, PluginError
from symphony.plugins.manifest import load_manifest

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs and /dev/zero")


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "/dev/urandom", "directory"])
def test_user_file_that_is_not_regular(tmp_path: Path, fifo: Path, kind: str) -> None:
    path = {"fifo": fifo, "directory": tmp_path}.get(kind, Path(kind))
    with pytest.raises(ConfigError) as info:
        load_config(environ={}, user_file=path)
    assert info.value.code == "config.unreadable"
    assert info.value.context["file"] == str(path)
    assert info.value.context["reason"] == "fs.not_regular"
    with pytest.raises(ConfigError):
        set_user_value("logging.level", "debug", user_file=path)


def test_config_dir_file_that_is_a_link_to_a_device(tmp_path: Path) -> None:
    (tmp_path / "default.toml").symlink_to("/dev/zero")
    with pytest.raises(ConfigError) as info:
        load_config(environ={}, config_dir=tmp_path, user_file=tmp_path / "missing.toml")
    assert "character device" in info.value.message


def test_size_limit_comes_from_the_layers_below(tmp_path: Path) -> None:
    user = tmp_path / "user.toml"
    user.write_text('[logging]\nlevel = "debug"\n' + "# pad\n" * 50)
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "default.toml").write_text("[fs]\nmax_file_size = 100\n")
    with pytest.raises(ConfigError) as info:
        load_config(environ={}, config_dir=conf, user_file=user)
    assert info.value.context["reason"] == "fs.too_large"
    assert info.value.context["file"] == str(user)
    (conf / "default.toml").write_text("[fs]\nmax_file_size = 100000\n")
    assert load_config(environ={}, config_dir=conf, user_file=user).get("logging.level") == "debug"


def test_manifest_that_is_a_fifo_or_device(tmp_path: Path, fifo: Path) -> None:
    for path in (fifo, Path("/dev/zero")):
        with pytest.raises(PluginError) as info:
            load_manifest(path)
        assert info.value.code == "plugin.bad_manifest"
        assert info.value.context["file"] == str(path)
        assert "not a regular file" in info.value.message
