"""Bad input gives one clear SymphonyError naming what was wrong, and the store stays usable:
malformed and unknown digests, bad ref names, tags and media types, a root that is a file or
read-only, and a full disk (RLIMIT_FSIZE in a child process)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from symphony.commons.errors import (
    ConflictError,
    NotFoundError,
    SymphonyError,
    ValidationError,
)
from symphony_artifact_store import ArtifactStore, Digest

GOOD_HEX = "ab" * 32


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("md5:" + GOOD_HEX + ":1", "artifact.digest.unknown_algorithm"),
        ("blake3:" + GOOD_HEX, "artifact.digest.malformed"),
        ("blake3:" + GOOD_HEX.upper() + ":1", "artifact.digest.malformed"),
        ("blake3:" + GOOD_HEX[:-1] + ":1", "artifact.digest.malformed"),
        ("blake3:" + GOOD_HEX + ":-1", "artifact.digest.malformed"),
        ("blake3:" + GOOD_HEX + ":01", "artifact.digest.malformed"),
        ("blake3:" + GOOD_HEX + ":99999999999999999999", "artifact.digest.malformed"),
        ("", "artifact.digest.malformed"),
    ],
)
def test_bad_digests(store: ArtifactStore, text: str, code: str) -> None:
    with pytest.raises(ValidationError) as info:
        Digest.parse(text)
    assert info.value.code == code and repr(text) in str(info.value)
    with pytest.raises(ValidationError) as info:
        store.find_missing([text])
    assert info.value.code == code
    with pytest.raises(SymphonyError):  # a digest without size is looked up as a prefix: not found
        store.get(text if ":" in text else text + ":")
    assert store.get(store.put(b"still fine")) == b"still fine"


def test_unknown_digest_is_not_found(store: ArtifactStore) -> None:
    with pytest.raises(NotFoundError) as info:
        store.get("blake3:" + GOOD_HEX + ":5")
    assert info.value.context["digest"] == "blake3:" + GOOD_HEX + ":5"


@pytest.mark.parametrize(
    "name",
    [
        "a/../b",
        "..",
        "a..b",
        "x\x00y",
        "x\ny",
        "tab\there",
        "/abs",
        "trail/",
        "a//b",
        ".hidden",
        "-x",
        "",
        "x" * 300,
        "a.lock",
        "sp ace",
    ],
)
def test_bad_ref_names(store: ArtifactStore, name: str) -> None:
    digest = store.put(b"content")
    with pytest.raises(ValidationError) as info:
        store.set_ref(name, digest)
    assert info.value.code == "artifact.ref.invalid"
    assert info.value.context["field"] == "ref"
    assert store.set_ref("good/name-1.0_x", digest).version == 1


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"tags": [""]}, "artifact.tag.invalid"),
        ({"tags": ["a\x07"]}, "artifact.tag.invalid"),
        ({"media_type": "not a type"}, "artifact.media_type.invalid"),
        ({"parents": ["nope"]}, "artifact.digest.malformed"),
        ({"producer": {"user": "x"}}, "artifact.producer.invalid"),
        ({"meta": {"x": object()}}, "artifact.meta.invalid"),
        ({"link": "symlink"}, "artifact.link.invalid"),
    ],
)
def test_bad_metadata(store: ArtifactStore, kwargs: dict[str, object], code: str) -> None:
    with pytest.raises(ValidationError) as info:
        store.put(b"data", **kwargs)  # type: ignore[arg-type]
    assert info.value.code == code
    assert store.list() == []


def test_bad_sources(store: ArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        store.put(12345)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        store.put(iter(["text, not bytes"]))  # type: ignore[list-item]
    with pytest.raises(NotFoundError):
        store.put(tmp_path / "no-such-file")
    assert store.verify().ok and list((store.root / "tmp").iterdir()) == []


def test_root_that_is_a_file(tmp_path: Path) -> None:
    root = tmp_path / "file"
    root.write_text("not a directory")
    with pytest.raises(ConflictError) as info:
        ArtifactStore(root)
    assert info.value.code == "artifact.root.not_a_directory" and info.value.context["root"] == str(root)
    with pytest.raises(SymphonyError) as info2:
        ArtifactStore(root / "below")
    assert str(root) in str(info2.value)
    with ArtifactStore(tmp_path / "good") as store:
        assert store.get(store.put(b"ok")) == b"ok"


def test_read_only_root(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(ro)], capture_output=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        with pytest.raises(SymphonyError) as info:
            ArtifactStore(ro / "store")
        assert str(ro / "store") in str(info.value)
        assert info.value.hint is not None and "root" in info.value.hint
    finally:
        subprocess.run(["umount", str(ro)], check=False)


FULL_DISK_CHILD = textwrap.dedent(
    """
    import json, os, resource, signal, sys
    from symphony.commons.errors import SymphonyError
    from symphony_artifact_store import ArtifactStore

    store = ArtifactStore(sys.argv[1])
    small = store.put(b"small before")
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
    result = {}
    try:
        store.put(os.urandom(4 << 20))
    except SymphonyError as err:
        result = {"type": type(err).__name__, "code": err.code, "message": err.message, "hint": err.hint}
    result["tmp_left"] = os.listdir(os.path.join(sys.argv[1], "tmp"))
    result["small_after"] = store.get(store.put(b"small after")).decode()
    result["verify_ok"] = store.verify().ok
    print(json.dumps(result))
    """
)


def test_full_disk(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", FULL_DISK_CHILD, str(tmp_path / "store")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["type"] == "FilesystemError", result
    assert "File too large" in result["message"] and "disk space" in result["hint"]
    assert result["tmp_left"] == [] and result["small_after"] == "small after" and result["verify_ok"]
    with ArtifactStore(tmp_path / "store") as store:
        assert store.verify().ok and len(store.list()) == 2
