"""Any path works, attacked as a class: random bytes in file names (not UTF-8 either) for
images, folders and videos; random special files (FIFOs, sockets, links to devices, dangling
links, unreadable files) named like images or videos anywhere in an input folder or given
directly. Everything is checked before a codec library sees it (io/sources.ImageSource.read:
bytes by Python from regular files only; io/video.check_input_file: no device or socket), so
nothing hangs or crashes: each run ends in time, with exit 0 and every real image written,
or one clear error.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from psenet_stream.errors import EXIT_INPUT
from tests.faults.conftest import FAST

N_CLI = int(os.environ.get("PSENET_ANYPATH_EXAMPLES", "5"))
SETTINGS = {"deadline": None, "derandomize": True, "database": None, "suppress_health_check": list(HealthCheck)}

# one name component: any bytes but '/' and NUL, not starting with '.', not too long
NAME = st.binary(min_size=1, max_size=30).map(lambda b: b.replace(b"/", b"_").replace(b"\x00", b"_")).filter(lambda b: not b.startswith(b"."))


def _png_bytes(value: int) -> bytes:
    import cv2
    import numpy as np

    _ok, buf = cv2.imencode(".png", np.full((10, 14, 3), value, np.uint8))
    return buf.tobytes()


def _listing(d: bytes) -> list[bytes]:
    out = []
    for root, _dirs, files in os.walk(d):
        out += [os.path.relpath(os.path.join(root, f), d) for f in files if not f.startswith(b".")]
    return sorted(out)


def test_random_bytes_in_image_and_folder_names(forkcli):
    @settings(max_examples=N_CLI, **SETTINGS)
    @given(names=st.lists(NAME, min_size=1, max_size=4, unique=True), sub=NAME)
    def run(names, sub):
        root = Path(tempfile.mkdtemp(prefix="anypath-img-"))
        try:
            src = os.fsencode(root) + b"/in-" + sub
            os.makedirs(src + b"/" + sub)
            want = []
            for i, n in enumerate(names):
                rel = (sub + b"/" if i % 2 else b"") + n + b".png"
                with open(src + b"/" + rel, "wb") as f:
                    f.write(_png_bytes(30 + 40 * i))
                want.append(rel)
            out = os.fsencode(root) + b"/out"
            r = forkcli.run([os.fsdecode(src), "-o", os.fsdecode(out), *FAST], timeout=120)
            assert not r["timed_out"], r["stderr"][-600:]
            assert r["rc"] == 0, r["stderr"]
            assert _listing(out) == sorted(want)
            assert not [n for n in os.listdir(out) if n.startswith(b".psenet-")]
        finally:
            shutil.rmtree(root, ignore_errors=True)

    run()


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> Path:
    from tests.media import make_video

    p = tmp_path_factory.mktemp("anypath-clip") / "c.mp4"
    make_video(p, width=64, height=48, frames=5, fps=10, audio="aac")
    return p


def test_random_bytes_in_video_names(forkcli, tiny_clip):
    @settings(max_examples=N_CLI, **SETTINGS)
    @given(name=NAME, folder=NAME, ext=st.sampled_from([b".mp4", b".mkv", b".mov"]))
    def run(name, folder, ext):
        root = Path(tempfile.mkdtemp(prefix="anypath-vid-"))
        try:
            d = os.fsencode(root) + b"/" + folder
            os.makedirs(d)
            inp = d + b"/" + name + b".mp4"
            shutil.copy(tiny_clip, inp)
            out = d + b"/" + name + b"-out" + ext
            r = forkcli.run([os.fsdecode(inp), "-o", os.fsdecode(out), *FAST], timeout=120)
            assert not r["timed_out"], r["stderr"][-600:]
            assert r["rc"] == 0, r["stderr"]
            assert os.path.getsize(out) > 0
            # the default output name next to it, too
            r = forkcli.run([os.fsdecode(inp), *FAST], timeout=120)
            assert r["rc"] == 0, r["stderr"]
            assert os.path.exists(d + b"/" + name + b"_enhanced.mp4")
            assert sorted(n for n in os.listdir(d) if n.startswith(b".")) == []
        finally:
            shutil.rmtree(root, ignore_errors=True)

    run()


SPECIALS = ("fifo", "socket", "dev_link", "dangling", "dir_named_like_image", "empty", "garbage")


def _make_special(kind: str, path: bytes, keep: list) -> None:
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.listen(1)
        keep.append(s)
    elif kind == "dev_link":
        os.symlink(b"/dev/zero", path)
    elif kind == "dangling":
        os.symlink(path + b".nowhere", path)
    elif kind == "dir_named_like_image":
        os.mkdir(path)
    elif kind == "empty":
        open(path, "wb").close()
    elif kind == "garbage":
        with open(path, "wb") as f:
            f.write(os.urandom(300))


def test_random_special_files_in_a_folder_never_hang(forkcli):
    @settings(max_examples=N_CLI, **SETTINGS)
    @given(specials=st.lists(st.tuples(st.sampled_from(SPECIALS), st.sampled_from([b".png", b".jpg", b".tif"]), st.booleans()), min_size=1, max_size=5))
    def run(specials):
        root = Path(tempfile.mkdtemp(prefix="anypath-special-"))
        keep: list = []
        try:
            src = os.fsencode(root) + b"/in"
            os.makedirs(src + b"/deep")
            good = [b"a.png", b"deep/b.png"]
            for i, g in enumerate(good):
                with open(src + b"/" + g, "wb") as f:
                    f.write(_png_bytes(60 + 90 * i))
            for i, (kind, ext, deep) in enumerate(specials):
                _make_special(kind, src + (b"/deep/" if deep else b"/") + b"s%d" % i + ext, keep)
            out = os.fsencode(root) + b"/out"
            r = forkcli.run([os.fsdecode(src), "-o", os.fsdecode(out), *FAST], timeout=90)
            assert not r["timed_out"], f"HANG on {specials}: {r['stderr'][-600:]}"
            assert r["rc"] == 0, r["stderr"]
            assert "Traceback" not in r["stderr"]
            assert _listing(out) == sorted(good), r["stderr"]
        finally:
            for s in keep:
                s.close()
            shutil.rmtree(root, ignore_errors=True)

    run()


@pytest.mark.parametrize("kind", ["socket", "dev_link", "fifo_image", "dir_named_like_video"])
def test_special_files_given_directly(forkcli, tmp_path, kind):
    """A device, socket or FIFO given as the input: one clear error, in time, nothing written."""
    keep: list = []
    if kind == "socket":
        p = tmp_path / "cam.mp4"
        _make_special("socket", os.fsencode(p), keep)
    elif kind == "dev_link":
        p = tmp_path / "zero.mp4"
        os.symlink("/dev/zero", p)
    elif kind == "fifo_image":
        p = tmp_path / "x.jpg"
        os.mkfifo(p)
    else:
        p = tmp_path / "v.mp4"
        p.mkdir()
        (p / "nothing.txt").write_text("x")
    out = tmp_path / ("o.jpg" if kind == "fifo_image" else "o.mp4")
    try:
        r = forkcli.run([p, "-o", out, *FAST], timeout=60)
    finally:
        for s in keep:
            s.close()
    assert not r["timed_out"], f"HANG: {r['stderr'][-600:]}"
    assert r["rc"] == EXIT_INPUT, r["stderr"]
    assert "Traceback" not in r["stderr"] and "error: " in r["stderr"] and "hint: " in r["stderr"]
    assert not out.exists()


@pytest.mark.parametrize("kind", ["fifo", "dev_link"])
def test_special_files_as_weights_or_eval_photos_never_hang(forkcli, tiny_clip, tmp_path, kind):
    """Found by this class: a FIFO given as --weights (torch.load) or inside eval --data
    (cv2.imread) blocked forever. Now read through guard.read_regular: exit 5 / 3 at once."""
    w = tmp_path / "w.pt"
    if kind == "fifo":
        os.mkfifo(w)
    else:
        os.symlink("/dev/zero", w)
    for args, code in (
        ([tiny_clip, "-o", tmp_path / "o.mp4", *FAST, "--weights", w], 5),
        (["import-weights", w, "-o", tmp_path / "x.pt"], 5),
    ):
        r = forkcli.run(args, timeout=60)
        assert not r["timed_out"], f"HANG: {args}"
        assert r["rc"] == code and "not a regular file" in r["stderr"], r["stderr"]
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "ok.png").write_bytes(_png_bytes(90))
    _make_special("fifo" if kind == "fifo" else "dev_link", os.fsencode(photos / "a.png"), [])
    r = forkcli.run(["eval", "--data", photos, "--limit", "2", "-q"], timeout=90)
    assert not r["timed_out"], "HANG: eval --data with a special file"
    assert r["rc"] == EXIT_INPUT and "not a regular file" in r["stderr"], r["stderr"]
