"""Preview helpers without a display: composition, rotation, fitting, atomic snapshots, and
the no-display error (the window itself is tested under Xvfb in tests/gui)."""

from __future__ import annotations

import numpy as np
import pytest

from psenet_stream.errors import OutputError
from psenet_stream.io.preview import WindowSink, compose, fit_size, rotate_for_display, write_png_atomic


def _pair(h=40, w=60):
    orig = np.zeros((h, w, 3), np.uint8)
    orig[0, 0] = 255  # a marker in the top-left corner (coded orientation)
    return orig, np.full((h, w, 3), 200, np.uint8)


def test_side_by_side_and_single_views():
    o, e = _pair()
    assert compose(o, e, "side-by-side").shape == (40, 120, 3)
    assert compose(o, e, "enhanced").mean() == 200
    assert compose(o, e, "original").shape == (40, 60, 3)


def test_rotation_is_applied_for_display():
    o, e = _pair()
    r = compose(o, e, "original", rotation=90)  # 90 degrees counter-clockwise
    assert r.shape == (60, 40, 3)
    assert r[-1, 0, 0] == 255  # the top-left marker moved to the bottom-left
    assert rotate_for_display(o, 180)[-1, -1, 0] == 255
    assert rotate_for_display(o, 0) is o


def test_fit_keeps_aspect_and_never_upscales():
    assert fit_size(2560, 720, 1600, 900) == (1600, 450)
    assert fit_size(320, 240, 1600, 900) == (320, 240)
    o, e = _pair(720, 1280)
    assert compose(o, e, "side-by-side", max_size=(1600, 900)).shape == (450, 1600, 3)


def test_snapshot_is_written_atomically(tmp_path):
    import cv2

    o, _ = _pair()
    p = write_png_atomic(tmp_path / "snaps" / "a.png", o)
    assert [x.name for x in (tmp_path / "snaps").iterdir()] == ["a.png"]  # no temporary left
    back = cv2.imread(str(p))[..., ::-1]
    assert np.array_equal(back, o)


def test_window_without_display_suggests_http(monkeypatch):
    for k in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER"):
        monkeypatch.delenv(k, raising=False)
    with pytest.raises(OutputError, match="no display") as ei:
        WindowSink(None)
    assert "--preview http" in ei.value.fix
    with pytest.raises(OutputError, match="Invalid preview mode"):
        WindowSink(None, mode="upside-down")
