"""symphony.commons.fs confined access: the race-free walk, its helpers, fuzzing, a real symlink race."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symphony.commons import fs
from symphony.commons.errors import (
    FilesystemError,
    NotFoundError,
    PermissionDeniedError,
    SymphonyError,
    ValidationError,
)

SECRET = b"SECRET-OUTSIDE"


def _tree(base: Path) -> tuple[Path, Path]:
    """root/{a/f, a/b/, in -> a, out -> outside, rel_out -> ../outside, loop1 <-> loop2}."""
    root = base / "root"
    outside = base / "outside"
    (root / "a" / "b").mkdir(parents=True, exist_ok=True)
    outside.mkdir(exist_ok=True)
    (root / "a" / "f").write_bytes(b"inside")
    (outside / "f").write_bytes(SECRET)
    for name, target in (
        ("in", "a"),
        ("out", str(outside)),
        ("rel_out", "../outside"),
        ("loop1", "loop2"),
        ("loop2", "loop1"),
    ):
        if not (root / name).is_symlink():
            (root / name).symlink_to(target)
    return root, outside


# --------------------------------------------------------------------------- helpers


def test_open_within_reads_inside_and_follows_inner_links(tmp_path: Path) -> None:
    root, _ = _tree(tmp_path)
    fd = fs.open_within(root, "in/f")
    with os.fdopen(fd, "rb") as fh:
        assert fh.read() == b"inside"
    assert fs.read_bytes("a/b/../f", root=root) == b"inside"
    assert fs.read_bytes(root / "a" / "f", root=root) == b"inside"


@pytest.mark.parametrize("path", ["out/f", "rel_out/f", "../outside/f", "a/../../outside/f", "/etc/passwd"])
def test_open_within_refuses_every_way_out(tmp_path: Path, path: str) -> None:
    root, _ = _tree(tmp_path)
    with pytest.raises(PermissionDeniedError) as info:
        fs.read_bytes(path, root=root)
    assert info.value.code == "fs.outside_root"
    with pytest.raises(PermissionDeniedError):
        fs.atomic_write(path, b"x", root=root)
    assert sorted(p.name for p in (tmp_path / "outside").iterdir()) == ["f"]


def test_link_loop_is_a_filesystem_error(tmp_path: Path) -> None:
    root, _ = _tree(tmp_path)
    with pytest.raises(FilesystemError) as info:
        fs.read_bytes("loop1", root=root)
    assert info.value.code == "fs.link_loop"


def test_directories_within(tmp_path: Path) -> None:
    root, outside = _tree(tmp_path)
    made = fs.atomic_write("new/deeper/still/f", b"x", root=root)
    assert made == (root / "new" / "deeper" / "still" / "f").resolve()
    with pytest.raises(FilesystemError):
        fs.atomic_write("a/f/sub", b"x", root=root)  # a file where a directory should be
    with pytest.raises(PermissionDeniedError):
        fs.atomic_write("out/evil/f", b"x", root=root)
    assert not (outside / "evil").exists()
    fd = fs.open_within(root, "in", os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert sorted(os.listdir(fd)) == ["b", "f"]
    finally:
        os.close(fd)
    with pytest.raises(NotFoundError):
        fs.open_within(root, "missing")


def test_open_within_for_writing_creates_inside(tmp_path: Path) -> None:
    root, _ = _tree(tmp_path)
    fd = fs.open_within(root, "in/new.txt", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(b"hello")
    assert (root / "a" / "new.txt").read_bytes() == b"hello"


@pytest.mark.parametrize("bad", [b"a/f", 42, None, ["a"], "a\x00b", "\ud800"])
def test_wrong_path_types_are_validation_errors(tmp_path: Path, bad: Any) -> None:
    root, _ = _tree(tmp_path)
    for call in (
        lambda: fs.resolve_within(root, bad),
        lambda: fs.read_bytes(bad, root=root),
        lambda: fs.atomic_write(bad, b"x", root=root),
        lambda: fs.resolve_within(bad, "a"),
    ):
        with pytest.raises(ValidationError) as info:
            call()
        assert info.value.code == "fs.bad_path"


def test_remove_temporaries(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("x")
    left = [tmp_path / ".config.toml.0123456789ab.tmp", tmp_path / ".other.toml.ba9876543210.tmp"]
    for path in left:
        path.write_text("partial")
    (tmp_path / ".config.toml.nothex.tmp").write_text("keep")
    assert fs.remove_temporaries(tmp_path, name="config.toml") == 1
    assert fs.remove_temporaries(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [".config.toml.nothex.tmp", "config.toml"]
    assert fs.remove_temporaries(tmp_path / "missing") == 0


# --------------------------------------------------------------------------- regular files only


def test_read_refuses_special_files_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(FilesystemError) as info:
        fs.read_bytes(fifo)  # would block forever if opened for a plain read
    assert info.value.code == "fs.not_regular"
    assert "FIFO" in info.value.message and str(fifo) in info.value.message
    link = tmp_path / "zero"
    link.symlink_to("/dev/zero")
    with pytest.raises(FilesystemError) as info:
        fs.read_text(link)
    assert "character device" in info.value.message
    with pytest.raises(FilesystemError):
        fs.read_bytes(tmp_path)


def test_default_read_limit(tmp_path: Path) -> None:
    sparse = tmp_path / "sparse"
    with open(sparse, "wb") as fh:
        fh.truncate(fs.DEFAULT_MAX_FILE_SIZE + 1)
    with pytest.raises(ValidationError) as info:
        fs.read_bytes(sparse)
    assert info.value.code == "fs.too_large"


# --------------------------------------------------------------------------- fuzzing

_PARTS = st.sampled_from(["a", "b", "f", "in", "out", "rel_out", "loop1", "..", ".", "", "missing", "a/f"])
_PATHS = st.one_of(
    st.lists(_PARTS, max_size=8).map("/".join),
    st.lists(_PARTS, max_size=8).map(lambda parts: "/" + "/".join(parts)),
    st.text(max_size=40),
    st.binary(max_size=20),
    st.integers(),
    st.none(),
)


@pytest.fixture(scope="module")
def fuzz_tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return _tree(tmp_path_factory.mktemp("fuzz"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=_PATHS)
def test_fuzz_resolve_and_read_stay_inside(fuzz_tree: tuple[Path, Path], path: Any) -> None:
    root, _ = fuzz_tree
    real_root = root.resolve()
    try:
        resolved = fs.resolve_within(root, path)
    except SymphonyError:
        pass
    else:
        assert resolved == real_root or resolved.is_relative_to(real_root)
    try:
        data = fs.read_bytes(path, root=root)
    except SymphonyError:
        pass
    else:
        assert data != SECRET
    try:
        os.close(fs.open_within(root, path))
    except SymphonyError:
        pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=_PATHS)
def test_fuzz_writes_stay_inside(fuzz_tree: tuple[Path, Path], path: Any) -> None:
    root, outside = fuzz_tree
    try:
        fs.atomic_write(path, b"w", root=root, fsync=False)
    except SymphonyError:
        pass
    if isinstance(path, str):  # directories created on the way stay inside too
        try:
            fs.atomic_write(os.path.join(path, "sub", "w"), b"w", root=root, fsync=False)
        except SymphonyError:
            pass
    assert sorted(p.name for p in outside.iterdir()) == ["f"]
    assert not [p for p in root.rglob("*.tmp")]


# --------------------------------------------------------------------------- a real race


def _renameat2() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    func = getattr(libc, "renameat2", None)
    if func is None:
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    func.restype = ctypes.c_int
    return func


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


@pytest.mark.skipif(_renameat2() is None, reason="needs Linux renameat2(RENAME_EXCHANGE)")
def test_symlink_swap_race_never_escapes(tmp_path: Path) -> None:
    """A thread keeps exchanging root/d (a real directory) with root/x (a link to outside)."""
    renameat2 = _renameat2()
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    (root / "d").mkdir(parents=True)
    outside.mkdir()
    (root / "d" / "f").write_bytes(b"inside")
    (outside / "f").write_bytes(SECRET)
    (root / "x").symlink_to(outside, target_is_directory=True)
    a, b = os.fsencode(root / "d"), os.fsencode(root / "x")
    if renameat2(_AT_FDCWD, a, _AT_FDCWD, b, _RENAME_EXCHANGE) != 0:
        pytest.skip(f"RENAME_EXCHANGE unsupported here (errno {ctypes.get_errno()})")
    stop = threading.Event()
    swaps = [1]

    def swapper() -> None:
        while not stop.is_set():
            if renameat2(_AT_FDCWD, a, _AT_FDCWD, b, _RENAME_EXCHANGE) == 0:
                swaps[0] += 1

    thread = threading.Thread(target=swapper, daemon=True)
    thread.start()
    reads = writes = refused = 0
    try:
        for i in range(3000):
            try:
                data = fs.read_bytes("d/f", root=root)
            except SymphonyError:
                refused += 1
            else:
                assert data == b"inside"
                reads += 1
            try:
                fs.atomic_write(f"d/w{i % 20}", b"data", root=root, fsync=False)
            except SymphonyError:
                refused += 1
            else:
                writes += 1
            try:
                fs.atomic_write(f"d/m{i}/w", b"data", root=root, fsync=False)  # creates d/m<i>
            except SymphonyError:
                refused += 1
    finally:
        stop.set()
        thread.join()
    assert swaps[0] > 100, "the race did not run"
    assert reads > 0 and writes > 0 and refused > 0
    assert sorted(p.name for p in outside.iterdir()) == ["f"], "something was created outside the root"
    assert (outside / "f").read_bytes() == SECRET
    assert not [p for p in tmp_path.rglob("*.tmp")], "temporaries were left behind"
