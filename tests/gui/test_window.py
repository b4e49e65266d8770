"""The preview window under a real X server (Xvfb), read back from Xvfb's framebuffer.

The `webcam` command runs in a subprocess on a dark lavfi camera with SDL's x11 driver.
Key presses go through the window's own pygame event queue (PSENET_PREVIEW_KEYS, a test
hook); what is on screen is read from the X server itself (Xvfb -fbdir, an XWD file).
"""

from __future__ import annotations

import subprocess
import time

import numpy as np
import pytest

from tests.live_helpers import PSENET, read_xwd, start_xvfb, subprocess_env, weights_for_tests, xvfb_available

pytestmark = [pytest.mark.gui, pytest.mark.timeout(120)]

DARK_CAM = "lavfi:testsrc2=size=320x240:rate=15,lutrgb=r=val*0.3:g=val*0.3:b=val*0.3,realtime"


@pytest.fixture
def xvfb(tmp_path):
    why = xvfb_available()
    if why:
        pytest.skip(why)
    pytest.importorskip("pygame")
    fb = tmp_path / "fb"
    fb.mkdir()
    proc, display = start_xvfb(fb)
    yield display, fb / "Xvfb_screen0"
    proc.stop()


def _window_region(img: np.ndarray) -> tuple[slice, slice]:
    """The bounding box of everything that is not the black root window."""
    mask = img.max(axis=2) > 0
    ys, xs = np.nonzero(mask)
    assert len(xs), "nothing on screen"
    return slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1)


def test_window_shows_original_and_enhanced_side_by_side(xvfb, tmp_path):
    display, fbfile = xvfb
    snaps = tmp_path / "snaps"
    env = subprocess_env(
        DISPLAY=display,
        SDL_VIDEODRIVER="x11",
        SDL_AUDIODRIVER="dummy",
        PSENET_STREAM_WEIGHTS=weights_for_tests(tmp_path, brighten=True),
        PSENET_PREVIEW_KEYS="8:s,45:q",  # snapshot after 8 frames, quit after 45 (~3 s at 15 fps)
    )
    env.pop("WAYLAND_DISPLAY", None)
    t0 = time.monotonic()
    p = subprocess.Popen(
        [*PSENET, "webcam", "--device", DARK_CAM, "--backend", "cpu", "--threads", "1", "--infer-size", "64",
         "--smoothing", "0", "--snapshot-dir", str(snaps), "--duration", "60"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not list(snaps.glob("*.png")) and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.1)
        assert list(snaps.glob("*.png")), "no snapshot: the window never showed frames"
        time.sleep(0.3)
        screen = read_xwd(fbfile)  # the X server's own framebuffer while the window is up
        rc = p.wait(timeout=45)  # the scripted 'q' ends the run
        err = p.stderr.read().decode()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert rc == 0, err
    assert "preview closed" in err
    assert time.monotonic() - t0 < 90

    ys, xs = _window_region(screen)
    win = screen[ys, xs]
    h, w = win.shape[:2]
    assert (w, h) == (640, 240), (w, h)  # 320x240 | 320x240
    # Compare the middle of each pane (away from the text overlays)
    left = win[40 : h - 40, 20 : w // 2 - 20].astype(float).mean()
    right = win[40 : h - 40, w // 2 + 20 : w - 20].astype(float).mean()
    assert left < 90, left  # the dark camera as it is
    assert right > left + 15, (left, right)  # the enhanced pane is visibly brighter

    # The 's' key wrote one full-resolution PNG atomically (no temporary left behind)
    import cv2

    pngs = list(snaps.iterdir())
    assert len(pngs) == 1 and pngs[0].suffix == ".png", pngs
    snap = cv2.imread(str(pngs[0]))
    assert snap.shape == (240, 640, 3)
    assert snap[:, 320:].mean() > snap[:, :320].mean() + 15


def test_no_display_is_a_clear_error(tmp_path):
    env = subprocess_env(PSENET_STREAM_WEIGHTS=weights_for_tests(tmp_path))
    for k in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER"):
        env.pop(k, None)
    r = subprocess.run([*PSENET, "webcam", "--device", DARK_CAM], env=env, capture_output=True, timeout=60, check=False)
    err = r.stderr.decode()
    assert r.returncode == 4, err
    assert "no display" in err and "--preview http" in err
    assert "Traceback" not in err
