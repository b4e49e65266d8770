"""psenet-stream batch on the local process pool: layout, atomic outputs, resume, failures.
(The same command on a real Ray cluster, with a node killed mid-run: tests/ray/.)"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from psenet_stream.errors import UsageError
from tests.e2e.conftest import FAST, run_module
from tests.media import make_video, read_video


@pytest.fixture
def library(tmp_path) -> Path:
    lib = tmp_path / "lib"
    (lib / "cam1").mkdir(parents=True)
    make_video(lib / "a.mp4", frames=12)
    make_video(lib / "cam1" / "b.mov", frames=9, audio="aac")
    make_video(lib / "cam1" / "c.mkv", frames=7)
    (lib / "stills").mkdir()
    import cv2

    from tests.media import pattern

    cv2.imwrite(str(lib / "stills" / "p.png"), pattern(0, 64, 48))
    (lib / "notes.txt").write_text("not media\n")  # ignored: folders contribute media only
    return lib


def _outputs(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file())


def test_batch_folder_keeps_layout_every_frame_and_resumes(library, tmp_path):
    out = tmp_path / "out"
    stats = tmp_path / "stats.json"
    r = run_module(["batch", library, "-o", out, "--jobs", "2", "--stats-json", stats, *FAST], timeout=240)
    assert r.returncode == 0, r.stderr.decode()
    assert _outputs(out) == ["a.mp4", "cam1/b.mov", "cam1/c.mkv", "stills/p.png"]  # no staging or temporary file left
    import cv2

    assert cv2.imread(str(out / "stills" / "p.png")).shape == (48, 64, 3)
    for rel, n in (("a.mp4", 12), ("cam1/b.mov", 9), ("cam1/c.mkv", 7)):
        assert read_video(out / rel)["frames"] == n
    assert read_video(out / "cam1/b.mov")["audio_packets"]  # audio copied, as the single-file path does
    s = json.loads(stats.read_text())
    assert (s["done"], s["skipped"], s["failed"], s["frames"]) == (4, 0, 0, 29)
    assert "4 done, 0 skipped, 0 failed" in r.stderr.decode()
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}

    again = run_module(["batch", library, "-o", out, *FAST], timeout=240)
    assert again.returncode == 0, again.stderr.decode()
    assert "0 done, 4 skipped, 0 failed" in again.stderr.decode()
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == mtimes  # nothing rewritten

    redo = run_module(["batch", library / "a.mp4", "-o", out, "-y", *FAST], timeout=240)  # -y: redo it, replaced atomically
    assert redo.returncode == 0, redo.stderr.decode()
    assert "1 done, 0 skipped, 0 failed" in redo.stderr.decode()
    assert (out / "a.mp4").stat().st_mtime_ns != mtimes[out / "a.mp4"]
    assert read_video(out / "a.mp4")["frames"] == 12
    assert _outputs(out) == ["a.mp4", "cam1/b.mov", "cam1/c.mkv", "stills/p.png"]


def test_batch_reports_each_failure_with_its_reason_and_finishes_the_rest(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    make_video(lib / "good.mp4", frames=6)
    (lib / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    listing = tmp_path / "files.txt"
    listing.write_text(f"# my list\n{lib / 'good.mp4'}\nlib/broken.mp4\n")
    out = tmp_path / "out"
    r = run_module(["batch", listing, "-o", out, *FAST], timeout=240)
    err = r.stderr.decode()
    assert r.returncode == 3, err  # every failure was an unreadable input: exit 3, as for one file
    assert "1 done, 0 skipped, 1 failed" in err
    assert "failed:" in err and "broken.mp4" in err and "cannot read" in err  # the reason, in one line
    assert "Traceback" not in err
    assert _outputs(out) == ["good.mp4"]


def test_batch_glob_and_name_clash(tmp_path):
    for d in ("x", "y"):
        (tmp_path / d).mkdir()
        make_video(tmp_path / d / "same.mp4", frames=3)
    out = tmp_path / "out"
    r = run_module(["batch", str(tmp_path / "*" / "same.mp4"), "-o", out, *FAST], timeout=120)
    assert r.returncode == UsageError.exit_code
    assert "would both be written to" in r.stderr.decode()
    assert not out.exists()  # refused before anything was made
    r = run_module(["batch", str(tmp_path / "x" / "*.mp4"), "-o", out, *FAST], timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    assert _outputs(out) == ["same.mp4"]


def test_batch_refuses_output_folder_that_is_the_input(library):
    r = run_module(["batch", library, "-o", library, *FAST], timeout=60)
    assert r.returncode == UsageError.exit_code
    assert "is the output folder" in r.stderr.decode()


def test_commit_never_replaces_a_finished_output(tmp_path):
    from psenet_stream.batch import commit

    a, b, final = tmp_path / "a", tmp_path / "b", tmp_path / "sub" / "final.mp4"
    a.write_bytes(b"first")
    b.write_bytes(b"second")
    assert commit(a, final) is True
    assert commit(b, final) is False  # a second attempt of the same file is discarded
    assert final.read_bytes() == b"first"
    assert not a.exists()


def test_ray_without_the_extra_says_how_to_get_it(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    make_video(lib / "a.mp4", frames=3)
    code = (
        "import sys; sys.modules['ray'] = None\n"  # as if Ray were not installed
        "from psenet_stream.cli import main\n"
        f"main(['batch', {str(lib)!r}, '-o', {str(tmp_path / 'out')!r}, '--ray', 'auto'])\n"
    )
    import subprocess

    r = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60, check=False)
    err = r.stderr.decode()
    assert r.returncode == UsageError.exit_code, err
    assert "--ray needs Ray, which is not installed" in err and "psenet-stream[ray]" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()  # checked before anything was made


def test_ray_address_without_a_cluster_fails_at_once(tmp_path):
    pytest.importorskip("ray")
    import socket

    with socket.socket() as s:  # a loopback port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    lib = tmp_path / "lib"
    lib.mkdir()
    make_video(lib / "a.mp4", frames=3)
    r = run_module(["batch", lib, "-o", tmp_path / "out", "--ray", f"127.0.0.1:{port}"], timeout=60)
    err = r.stderr.decode()
    assert r.returncode == UsageError.exit_code, err
    assert f"no Ray cluster at 127.0.0.1:{port}" in err and "ray start --head" in err
    assert not (tmp_path / "out").exists()
