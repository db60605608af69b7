"""Property tests: the digest, ref, tag and media-type parsers raise ValidationError on bad
input and nothing else; valid digests round-trip; content round-trips through the store."""

from __future__ import annotations

import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symphony.commons.errors import SymphonyError, ValidationError
from symphony_artifact_store import ArtifactStore, Digest, check_ref_name, hash_bytes
from symphony_artifact_store._digest import check_media_type, check_tag

HEX = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
NEAR_DIGEST = st.one_of(
    st.text(max_size=100),
    st.builds(
        lambda a, h, s: f"{a}:{h}:{s}",
        st.sampled_from(["blake3", "sha256", "md5", "BLAKE3", ""]),
        st.text(alphabet="0123456789abcdefABCDEF:g", max_size=70),
        st.one_of(st.integers(), st.text(max_size=25)),
    ),
)


@given(NEAR_DIGEST)
def test_digest_parser_raises_only_validation_errors(text: str) -> None:
    try:
        digest = Digest.parse(text)
    except ValidationError:
        return
    assert str(digest) == text and Digest.parse(str(digest)) == digest


@given(st.sampled_from(["blake3", "sha256"]), HEX, st.integers(min_value=0, max_value=(1 << 63) - 1))
def test_valid_digests_round_trip(algorithm: str, hex: str, size: int) -> None:
    digest = Digest(algorithm, hex, size)
    assert Digest.parse(str(digest)) == digest
    assert Digest.check(str(digest)) == str(digest)
    assert hash(Digest.parse(str(digest))) == hash(digest)


@given(st.one_of(st.text(max_size=300), st.binary(max_size=20), st.integers(), st.none()))
def test_ref_parser_raises_only_validation_errors(name: object) -> None:
    try:
        checked = check_ref_name(name)
    except ValidationError:
        return
    assert isinstance(checked, str) and ".." not in checked
    assert not any(ord(c) < 32 or ord(c) == 127 for c in checked)
    assert not checked.startswith("/") and "//" not in checked


@given(st.one_of(st.text(max_size=300), st.integers(), st.none()))
def test_tag_and_media_type_parsers_raise_only_validation_errors(value: object) -> None:
    for check in (check_tag, check_media_type):
        try:
            check(value)
        except ValidationError:
            pass


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=120))
def test_resolve_raises_only_symphony_errors(text: str) -> None:
    with tempfile.TemporaryDirectory() as root, ArtifactStore(root) as store:
        store.put(b"x", ref="known")
        try:
            store.resolve(text)
        except SymphonyError:
            pass


@settings(max_examples=25, deadline=None)
@given(st.binary(max_size=20000), st.booleans())
def test_content_round_trips(data: bytes, compress: bool) -> None:
    with tempfile.TemporaryDirectory() as root, ArtifactStore(root, inline_max=1000) as store:
        digest = store.put(data, compress=compress)
        assert digest == hash_bytes("blake3", data)
        assert store.get(digest) == data
        with store.open(digest) as reader:
            assert reader.read() == data
