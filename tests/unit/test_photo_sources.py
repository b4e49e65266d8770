"""The second photo set (photo_sources): the table's consistency, the train/test split, and the
Qt resource-bundle reader. No network: nothing is downloaded here."""

from __future__ import annotations

import collections
import re
import struct
import zlib

import pytest

from train import data_fetch as df
from train import photo_sources as ps
from psenet_stream.errors import UserError

HEX64 = re.compile(r"[0-9a-f]{64}")


def test_every_new_photo_has_a_known_source_tag_split_and_sha256():
    assert len(ps.PHOTOS) >= 40
    for name, p in ps.PHOTOS.items():
        assert p.source in ps.DEBS or p.source in df.DEBS, name
        assert p.tag in ps.TAGS, name
        assert p.split in ("train", "test"), name
        assert HEX64.fullmatch(p.sha256), name
        assert name.startswith(p.source.split("-")[0] + "-"), f"{name}: prefix the name with its package"
        suffix = name.rsplit(".", 1)[-1]
        assert suffix == p.member.rsplit(".", 1)[-1], f"{name}: keep the member's extension (the bytes are stored as is)"


def test_pinned_packages_are_well_formed():
    for pkg, (version, fname, sha) in ps.DEBS.items():
        assert HEX64.fullmatch(sha), pkg
        assert fname == f"{pkg}_{version.replace(':', '%3a')}_all.deb", pkg
        assert ps.LICENSES.get(pkg), pkg
    for pkg, extra in ps.EXTRA_LICENSES.items():
        assert pkg in ps.DEBS and all(member and out for member, out in extra)


def test_train_and_test_are_disjoint_and_every_photo_is_tagged():
    names = set(df.PHOTOS)
    assert set(ps.PHOTOS) <= names, "data_fetch takes in the second set"
    assert not set(ps.PHOTOS) & set(ps.FIRST_SET_TAGS), "a name in both sets would overwrite one photo"
    assert set(ps.FIRST_SET_TAGS) == names - set(ps.PHOTOS), "every photo of the first set has a tag"
    assert all(ps.tag_of(n) in ps.TAGS for n in names)
    for name, p in ps.PHOTOS.items():
        assert (name in df.TEST_SET) == (p.split == "test"), name
        assert df.MEMBER_SHA256[name] == p.sha256 and df.PHOTOS[name] == (p.source, p.member)
    # the same picture must not reach both splits under two names (or the same member twice)
    members = [df.PHOTOS[n] for n in names]
    assert len(set(members)) == len(members)
    hashes = [df.MEMBER_SHA256[n] for n in names]
    dupes = [h for h, c in collections.Counter(hashes).items() if c > 1]
    assert not dupes, f"the same file is selected twice: {dupes}"


def test_about_one_in_four_of_every_tag_is_held_out():
    by_tag = collections.defaultdict(lambda: [0, 0])
    for p in ps.PHOTOS.values():
        by_tag[p.tag][p.split == "test"] += 1
    assert set(by_tag) == set(ps.TAGS), "every tag has photos"
    for tag, (train, test) in by_tag.items():
        assert test >= 2 and train >= 2 * test - 1, (tag, train, test)
        assert 0.15 <= test / (train + test) <= 0.35, (tag, train, test)
    # a real share of the new photos are the hard scenes (night, indoor, backlit, low-key)
    hard = sum(1 for p in ps.PHOTOS.values() if p.tag != "day")
    assert hard >= 0.4 * len(ps.PHOTOS)


def test_licenses_cover_every_source():
    for p in ps.PHOTOS.values():
        assert p.source in df.LICENSES
    assert set(ps.DEBS) <= set(df.DEBS)


# --- the .rcc reader ------------------------------------------------------------------------


def _rcc(files: dict[str, tuple[bytes, bool]], folder: str = "res") -> bytes:
    """A minimal Qt resource bundle (format 2): a root, one folder, the files (zlib when flagged)."""
    names = b""
    name_off = {}
    for n in [folder, *files]:
        name_off[n] = len(names)
        enc = n.encode("utf-16-be")
        names += struct.pack(">HI", len(n), 0) + enc
    data = b""
    data_off = {}
    for n, (payload, compress) in files.items():
        blob = struct.pack(">I", len(payload)) + zlib.compress(payload) if compress else payload
        data_off[n] = len(data)
        data += struct.pack(">I", len(blob)) + blob
    node = 22
    tree = struct.pack(">IHII", 0, 2, 1, 1) + bytes(8)  # root: one child (node 1)
    tree += struct.pack(">IHII", name_off[folder], 2, len(files), 2) + bytes(8)  # folder: nodes 2..
    for n, (_, compress) in files.items():
        tree += struct.pack(">IHHHI", name_off[n], 1 if compress else 0, 0, 0, data_off[n]) + bytes(8)
    assert len(tree) == node * (2 + len(files))
    header = 20
    tree_at, data_at = header, header + len(tree)
    names_at = data_at + len(data)
    return b"qres" + struct.pack(">IIII", 2, tree_at, data_at, names_at) + tree + data + names


def test_parse_rcc_reads_plain_and_zlib_members():
    files = {"a.webp": (b"\x00plain bytes" * 3, False), "b.jpg": (b"squeezed " * 50, True)}
    got = ps.parse_rcc(_rcc(files))
    assert got == {"res/a.webp": files["a.webp"][0], "res/b.jpg": files["b.jpg"][0]}
    with pytest.raises(ValueError, match="qres"):
        ps.parse_rcc(b"PK\x03\x04 not a bundle")


def test_read_member_plain_and_inside_a_bundle(tmp_path):
    (tmp_path / "usr/share/x").mkdir(parents=True)
    (tmp_path / "usr/share/x/photo.jpg").write_bytes(b"jpeg bytes")
    (tmp_path / "usr/share/x/pack.rcc").write_bytes(_rcc({"p.webp": (b"webp bytes", True)}))
    assert ps.read_member(tmp_path, "usr/share/x/photo.jpg") == b"jpeg bytes"
    assert ps.read_member(tmp_path, "usr/share/x/pack.rcc" + ps.RCC_SEP + "res/p.webp") == b"webp bytes"
    with pytest.raises(UserError, match="missing from usr/share/x/pack.rcc"):
        ps.read_member(tmp_path, "usr/share/x/pack.rcc" + ps.RCC_SEP + "res/absent.webp")
    with pytest.raises(UserError, match="missing from the unpacked package"):
        ps.read_member(tmp_path, "usr/share/x/absent.rcc" + ps.RCC_SEP + "res/p.webp")
    (tmp_path / "usr/share/x/bad.rcc").write_bytes(b"garbage")
    with pytest.raises(UserError, match="cannot read the resource bundle"):
        ps.read_member(tmp_path, "usr/share/x/bad.rcc" + ps.RCC_SEP + "res/p.webp")


def test_bundle_members_name_their_bundle():
    for name, p in ps.PHOTOS.items():
        if ps.RCC_SEP in p.member:
            outer, inner = p.member.split(ps.RCC_SEP)
            assert outer.endswith(".rcc") and inner and not inner.startswith("/"), name
