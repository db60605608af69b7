"""symphony.commons.fs: confinement, size limits, atomic writes, platform dirs."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from symphony.commons import fs
from symphony.commons.errors import (
    ConflictError,
    FilesystemError,
    NotFoundError,
    PermissionDeniedError,
    SerializationError,
    SymphonyError,
    ValidationError,
)

# --------------------------------------------------------------------------- resolve_within


def test_resolve_within_relative_and_absolute(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    assert fs.resolve_within(root, "sub/f.txt") == (root / "sub" / "f.txt").resolve()
    assert fs.resolve_within(root, root / "sub") == (root / "sub").resolve()
    assert fs.resolve_within(root, root) == root.resolve()
    # ``..`` that stays inside the root is fine after resolution.
    assert fs.resolve_within(root, "sub/../g.txt") == (root / "g.txt").resolve()


def test_resolve_within_rejects_escape_by_dotdot(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(PermissionDeniedError) as info:
        fs.resolve_within(root, "../outside.txt")
    assert info.value.code == "fs.outside_root"
    assert info.value.context["root"] == str(root.resolve())
    assert info.value.context["path"] == str((tmp_path / "outside.txt").resolve())


def test_resolve_within_rejects_absolute_path_elsewhere(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(PermissionDeniedError):
        fs.resolve_within(root, tmp_path / "elsewhere")
    # A sibling whose name starts with the root's name is still outside.
    with pytest.raises(PermissionDeniedError):
        fs.resolve_within(root, tmp_path / "root2" / "x")


def test_resolve_within_rejects_symlink_escaping_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cret")
    (root / "link").symlink_to(secret)
    (root / "dirlink").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(PermissionDeniedError) as info:
        fs.resolve_within(root, "link")
    assert info.value.context["path"] == str(secret.resolve())
    with pytest.raises(PermissionDeniedError):
        fs.resolve_within(root, "dirlink/secret.txt")
    with pytest.raises(PermissionDeniedError):
        fs.read_text("link", root=root)


def test_resolve_within_allows_symlink_inside_root_and_symlinked_root(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "data.txt").write_text("x")
    (real / "alias").symlink_to(real / "data.txt")
    link_root = tmp_path / "linked-root"
    link_root.symlink_to(real, target_is_directory=True)
    assert fs.resolve_within(link_root, "alias") == (real / "data.txt").resolve()


def test_resolve_within_symlink_loop_is_a_symphony_error(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(SymphonyError):
        fs.resolve_within(tmp_path, "a")


# --------------------------------------------------------------------------- reading


def test_read_bytes_and_text(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    target.write_bytes("héllo\n".encode())
    assert fs.read_bytes(target) == "héllo\n".encode()
    assert fs.read_text(target) == "héllo\n"
    assert fs.read_text("f.txt", root=tmp_path) == "héllo\n"


def test_read_size_limit(tmp_path: Path) -> None:
    target = tmp_path / "big.bin"
    target.write_bytes(b"x" * 100)
    assert fs.read_bytes(target, max_size=100) == b"x" * 100
    with pytest.raises(ValidationError) as info:
        fs.read_bytes(target, max_size=99)
    assert info.value.code == "fs.too_large"
    assert info.value.context["size"] == 100
    assert info.value.context["max_size"] == 99
    assert info.value.context["path"] == str(target)
    with pytest.raises(ValidationError):
        fs.read_text(target, max_size=10)


def test_read_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError) as info:
        fs.read_bytes(tmp_path / "missing")
    assert info.value.code == "io.not_found"
    assert info.value.context["path"] == str(tmp_path / "missing")
    assert isinstance(info.value.__cause__, FileNotFoundError)


def test_read_directory_is_filesystem_error(tmp_path: Path) -> None:
    with pytest.raises(FilesystemError):
        fs.read_bytes(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else True, reason="root reads anything")
def test_read_unreadable_is_permission_denied(tmp_path: Path) -> None:
    target = tmp_path / "private"
    target.write_text("x")
    target.chmod(0)
    try:
        with pytest.raises(PermissionDeniedError) as info:
            fs.read_text(target)
        assert info.value.code == "io.permission_denied"
    finally:
        target.chmod(0o600)


def test_read_text_bad_bytes(tmp_path: Path) -> None:
    target = tmp_path / "bad.txt"
    target.write_bytes(b"ok\xff\xfe")
    with pytest.raises(SerializationError) as info:
        fs.read_text(target)
    assert info.value.code == "fs.decode"
    assert info.value.context["position"] == 2


# --------------------------------------------------------------------------- ensure_dir


def test_ensure_dir_creates_parents_and_is_idempotent(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "c"
    assert fs.ensure_dir(target) == target
    assert target.is_dir()
    assert fs.ensure_dir(str(target)) == target


def test_ensure_dir_mode(tmp_path: Path) -> None:
    target = tmp_path / "private"
    fs.ensure_dir(target, mode=0o700)
    assert stat.S_IMODE(target.stat().st_mode) & 0o077 == 0


def test_ensure_dir_over_a_file_is_conflict(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ConflictError) as info:
        fs.ensure_dir(tmp_path / "file")
    assert info.value.code == "io.exists"


# --------------------------------------------------------------------------- atomic_write


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_atomic_write_creates_parents_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "er" / "out.txt"
    assert fs.atomic_write(target, "first") == target
    assert target.read_text() == "first"
    fs.atomic_write(target, b"second")
    assert target.read_bytes() == b"second"
    assert _leftovers(target.parent) == []


def test_atomic_write_without_fsync(tmp_path: Path) -> None:
    target = fs.atomic_write(tmp_path / "cache.json", "{}", fsync=False)
    assert target.read_text() == "{}"


def test_atomic_write_failure_keeps_old_file_and_removes_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "state.json"
    target.write_text("old contents")

    def broken_replace(src: object, dst: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(FilesystemError) as info:
        fs.atomic_write(target, "new contents")
    assert info.value.context["path"] == str(target)
    assert info.value.context["action"] == "write"
    monkeypatch.undo()
    assert target.read_text() == "old contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_atomic_write_failure_during_write_removes_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "x.bin"
    target.write_bytes(b"keep")

    def broken_fsync(fd: int, *args: object) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(FilesystemError):
        fs.atomic_write(target, b"new")
    monkeypatch.undo()
    assert target.read_bytes() == b"keep"
    assert _leftovers(tmp_path) == []


def test_atomic_write_keyboard_interrupt_removes_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "y.txt"

    def interrupted(src: object, dst: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fs.atomic_write(target, "data")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_root_confinement(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    assert fs.atomic_write("inside/a.txt", "ok", root=root) == (root / "inside" / "a.txt").resolve()
    with pytest.raises(PermissionDeniedError):
        fs.atomic_write("../escape.txt", "no", root=root)
    assert not (tmp_path / "escape.txt").exists()


def test_atomic_write_modes(tmp_path: Path) -> None:
    target = tmp_path / "secret"
    fs.atomic_write(target, "a", mode=0o600)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    fs.atomic_write(target, "b")  # keeps the existing mode
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    fresh = fs.atomic_write(tmp_path / "fresh", "c")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~umask


def test_atomic_write_onto_directory_fails_cleanly(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    with pytest.raises(SymphonyError):
        fs.atomic_write(tmp_path / "dir", "x")
    assert _leftovers(tmp_path) == []


# --------------------------------------------------------------------------- platform dirs


def test_platform_dirs_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMPHONY_CACHE_DIR", str(tmp_path / "c"))
    monkeypatch.setenv("SYMPHONY_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("SYMPHONY_USER_CONFIG", str(tmp_path / "u.toml"))
    assert fs.cache_dir() == tmp_path / "c"
    assert fs.data_dir() == tmp_path / "d"
    assert fs.user_config_file() == tmp_path / "u.toml"
    assert not (tmp_path / "c").exists()
    assert not (tmp_path / "d").exists()


def test_platform_dirs_explicit_environ_and_fallback(tmp_path: Path) -> None:
    env = {"SYMPHONY_CACHE_DIR": "~/cachedir"}
    assert fs.cache_dir(environ=env) == Path(os.path.expanduser("~/cachedir"))
    import platformdirs

    assert fs.cache_dir(environ={}) == Path(platformdirs.user_cache_dir("symphony", appauthor=False))
    assert fs.data_dir(environ={}) == Path(platformdirs.user_data_dir("symphony", appauthor=False))
    assert fs.user_config_file(environ={}) == (
        Path(platformdirs.user_config_dir("symphony", appauthor=False)) / "config.toml"
    )
