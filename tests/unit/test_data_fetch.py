"""``psenet-stream data``: checksum verification and the idempotent cache (no downloads here)."""

from __future__ import annotations

import hashlib
import json

import pytest

from psenet_stream.errors import PsenetError
from train import data_fetch as df


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def test_verify_file_accepts_the_pinned_bytes_and_names_the_corrupted_file(tmp_path):
    f = tmp_path / "x.deb"
    f.write_bytes(b"hello")
    df.verify_file(f, _sha(b"hello"))
    f.write_bytes(b"hellO")
    with pytest.raises(df.ChecksumError) as e:
        df.verify_file(f, _sha(b"hello"))
    assert isinstance(e.value, PsenetError)
    assert "checksum mismatch" in e.value.problem and str(f) in e.value.problem
    assert "delete" in e.value.fix and "psenet-stream data" in e.value.fix
    with pytest.raises(df.ChecksumError, match="missing"):
        df.verify_file(tmp_path / "absent", _sha(b""))


def test_corrupted_cached_deb_fails_before_anything_is_extracted(tmp_path):
    downloads = tmp_path / "_downloads"
    downloads.mkdir()
    _, fname, _ = df.DEBS["mate-backgrounds"]
    (downloads / fname).write_bytes(b"not the package")  # present, so nothing is downloaded
    with pytest.raises(df.ChecksumError, match="checksum mismatch for mate-backgrounds"):
        df._apt_download("mate-backgrounds", downloads)


def _fake_cache(tmp_path):
    dest = tmp_path / "data"
    files = []
    for rel, data in {"train/a.png": b"aaaa", "test/b.png": b"bbbb", "clips/c.avi": b"cccc"}.items():
        p = dest / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        files.append({"path": rel, "kind": rel.split("/")[0], "sha256": _sha(data), "size": len(data)})
    m = {"recipe": df.RECIPE, "files": files, "counts": {"train": 1, "test": 1, "clip": 1, "license": 0}}
    (dest / "MANIFEST.json").write_text(json.dumps(m))
    return dest


def test_second_run_only_verifies(tmp_path, monkeypatch):
    dest = _fake_cache(tmp_path)

    def no_network(*a, **k):
        raise AssertionError("a verified cache must not download anything")

    monkeypatch.setattr(df, "_apt_download", no_network)
    monkeypatch.setattr(df, "_scipy_face", no_network)
    m = df.fetch(dest)
    assert m["counts"]["train"] == 1


def test_corrupted_cache_file_fails_clearly(tmp_path, monkeypatch):
    dest = _fake_cache(tmp_path)
    (dest / "train" / "a.png").write_bytes(b"aaaX")  # same size, different bytes
    monkeypatch.setattr(df, "_apt_download", lambda *a, **k: pytest.fail("must not download"))
    with pytest.raises(df.ChecksumError) as e:
        df.fetch(dest)
    assert "a.png" in e.value.problem and "delete" in e.value.fix


def test_data_command_prints_two_lines_on_a_bad_cache(tmp_path, capsys):
    from psenet_stream.cli import main

    dest = _fake_cache(tmp_path)
    (dest / "clips" / "c.avi").write_bytes(b"cccX")
    with pytest.raises(SystemExit) as e:
        main(["data", "--dest", str(dest)])
    assert e.value.code == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("error: checksum mismatch") and err[1].startswith("hint: ") and len(err) == 2


def test_selection_is_consistent():
    assert df.TEST_SET <= set(df.PHOTOS), "every held-out photo is in the selection"
    assert len(df.TEST_SET) >= 10 and len(set(df.PHOTOS) - df.TEST_SET) >= 20
    assert set(df.MEMBER_SHA256) == set(df.PHOTOS) | set(df.CLIPS), "every file taken from a package is pinned"
    assert {s for s, _ in (df.PHOTOS[n] for n in df.TEST_SET)} >= {"mate-backgrounds", "opencv-doc", "scikit-image"}
    assert all(len(v[2]) == 64 for v in df.DEBS.values())


def test_missing_apt_get_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(df.shutil, "which", lambda name: None)
    with pytest.raises(PsenetError) as e:
        df._apt_download("opencv-doc", tmp_path)
    assert "apt-get is not available" in e.value.problem and "sha256" in e.value.fix
