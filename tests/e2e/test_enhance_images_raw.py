"""Images, folders of images, and raw frames through stdin/stdout."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from tests.e2e.conftest import FAST, ROOT, run_module
from tests.media import pattern, sha256

pytestmark = pytest.mark.timeout(120)


def _img(path, w=96, h=64, i=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(pattern(i, w, h), cv2.COLOR_RGB2BGR))
    return path


@pytest.mark.parametrize("ext", [".jpg", ".png", ".bmp", ".tiff", ".webp"])
def test_single_image_keeps_format_and_size(tmp_path, cli_main, ext):
    inp = _img(tmp_path / f"photo{ext}", 97, 61)
    before = sha256(inp)
    code, err = cli_main([inp, *FAST])
    assert code == 0, err
    out = tmp_path / f"photo_enhanced{ext}"
    img = cv2.imread(str(out))
    assert img is not None and img.shape == (61, 97, 3)
    assert sha256(inp) == before
    code, err = cli_main([inp, *FAST])  # second time: refuses
    assert code == 4 and "already exists" in err


def test_folder_preserves_relative_paths(tmp_path, cli_main):
    src = tmp_path / "shots"
    files = [_img(src / "a.jpg", 80, 60, 1), _img(src / "sub" / "b.png", 64, 48, 2), _img(src / "sub" / "deeper" / "c.bmp", 50, 40, 3)]
    (src / "notes.txt").write_text("not an image")
    code, err = cli_main([src, *FAST])
    assert code == 0, err
    out = tmp_path / "shots_enhanced"
    for f in files:
        o = out / f.relative_to(src)
        assert o.is_file(), o
        assert cv2.imread(str(o)).shape == cv2.imread(str(f)).shape
    assert not (out / "notes.txt").exists()
    assert "3 images" in err


def test_output_folder_inside_the_input_is_not_read_back(tmp_path, cli_main):
    src = tmp_path / "pics"
    _img(src / "a.png")
    for _ in range(2):  # the second run must not pick up pics/enh/a.png as an input
        code, err = cli_main([src, "-o", src / "enh", *FAST, "--overwrite"])
        assert code == 0, err
        assert "1 image in" in err
    assert not (src / "enh" / "enh").exists()


def test_unreadable_image_in_folder_is_skipped(tmp_path, cli_main):
    src = tmp_path / "mixed"
    _img(src / "ok.png")
    (src / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    code, err = cli_main([src, "-o", tmp_path / "out", *FAST])
    assert code == 0, err
    assert (tmp_path / "out" / "ok.png").is_file()
    assert "broken.jpg" in err


@pytest.mark.parametrize("pix_fmt, bpp", [("rgb24", 3.0), ("bgr24", 3.0), ("yuv420p", 1.5)])
def test_raw_stdin_to_stdout(pix_fmt, bpp):
    w, h, n = 64, 48, 5
    size = int(w * h * bpp)
    data = np.random.default_rng(0).integers(0, 120, size * n, dtype=np.uint8).tobytes()
    r = run_module(["-", "--size", f"{w}x{h}", "--pix-fmt", pix_fmt, *FAST, "-q"], input=data)
    assert r.returncode == 0, r.stderr.decode()
    assert len(r.stdout) == size * n
    assert r.stdout != data


def test_raw_broken_pipe_is_quiet(tmp_path):
    w, h, n = 64, 48, 200
    raw = tmp_path / "in.rgb"
    raw.write_bytes(np.full(w * h * 3 * n, 40, np.uint8).tobytes())
    import os

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = f"{sys.executable} -m psenet_stream - --size {w}x{h} {' '.join(FAST)} -q < {raw} | head -c 100 > /dev/null"
    r = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, timeout=60, env=env, check=False)
    assert "Traceback" not in r.stderr.decode() and "Error" not in r.stderr.decode(), r.stderr.decode()
    assert r.returncode == 0


def test_raw_needs_size(cli_main):
    code, err = cli_main(["-", *FAST])
    assert code != 0 and "--size" in err and "Traceback" not in err


def test_raw_stdin_to_video_file(tmp_path):
    from tests.media import read_video

    w, h, n = 64, 48, 8
    data = np.full(w * h * 3 * n, 30, np.uint8).tobytes()
    r = run_module(["-", "--size", f"{w}x{h}", "--fps", "25", "-o", "out.mp4", *FAST, "-q"], input=data, cwd=tmp_path)
    assert r.returncode == 0, r.stderr.decode()
    v = read_video(tmp_path / "out.mp4")
    assert v["frames"] == n and v["size"] == (w, h)
    assert v["pts_s"][1] - v["pts_s"][0] == pytest.approx(1 / 25)
