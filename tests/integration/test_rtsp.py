"""RTSP end to end against a real gst-rtsp-server (Debian python3-gi) on 127.0.0.1.

The camera (/in, PLAY) and the receiving server (/out, RECORD) are separate server
processes, so the camera can be killed and restarted while the recording continues.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.live_helpers import (
    PSENET,
    decode_all,
    free_port,
    gst_rtsp_available,
    make_h264_clip,
    start_rtsp_server,
    subprocess_env,
    weights_for_tests,
)

pytestmark = [pytest.mark.rtsp, pytest.mark.timeout(150)]


@pytest.fixture(scope="module")
def gst():
    why = gst_rtsp_available()
    if why:
        pytest.skip(why)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_h264_clip(tmp_path_factory.mktemp("rtsp") / "cam.mp4", seconds=20, size=(320, 240), fps=30)


class Lines:
    """Collects a pipe's lines in a thread; wait_for(pattern) polls them."""

    def __init__(self, pipe):
        self.lines: list[str] = []
        self._t = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._t.start()

    def _read(self, pipe):
        for raw in pipe:
            self.lines.append(raw.decode(errors="replace").rstrip("\r\n"))

    def wait_for(self, pattern: str, timeout: float, start: int = 0) -> int | None:
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while time.monotonic() < deadline:
            for i in range(start, len(self.lines)):
                if rx.search(self.lines[i]):
                    return i
            time.sleep(0.05)
        return None

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def test_rtsp_filter_survives_camera_restart(gst, clip, tmp_path):
    """psenet-stream rtsp://cam/in -o rtsp://server/out: frames are recorded; the camera is
    killed and restarted mid-stream, the filter reconnects and keeps publishing."""
    cam_port, out_port = free_port(), free_port()
    rec = tmp_path / "rec.mkv"
    cam = start_rtsp_server(cam_port, play=clip, log=tmp_path / "cam.log")
    server = start_rtsp_server(out_port, record=rec, log=tmp_path / "out.log")
    env = subprocess_env(PSENET_STREAM_WEIGHTS=weights_for_tests(tmp_path))
    cmd = [*PSENET, f"rtsp://viewer:S3cretPw@127.0.0.1:{cam_port}/in", "-o", f"rtsp://127.0.0.1:{out_port}/out",
           "--backend", "cpu", "--threads", "1", "--infer-size", "64", "--stats-json", str(tmp_path / "stats.json")]
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    err = Lines(p.stderr)
    try:
        assert err.wait_for(r"output rtsp://127\.0\.0\.1:\d+/out: connected", 60) is not None, err.text
        time.sleep(2.0)
        size_before = rec.stat().st_size if rec.exists() else 0
        cam.stop(signal.SIGKILL)
        t_kill = time.monotonic()
        i_lost = err.wait_for(r"lost rtsp://viewer:\*\*\*@127\.0\.0\.1", 15)
        assert i_lost is not None, err.text
        time.sleep(1.0)
        cam = start_rtsp_server(cam_port, play=clip, log=tmp_path / "cam2.log")
        i_back = err.wait_for(r"reconnected to rtsp://viewer:\*\*\*@127\.0\.0\.1", 30, start=i_lost)
        assert i_back is not None, err.text
        reconnect_s = time.monotonic() - t_kill
        time.sleep(2.5)
        os.killpg(p.pid, signal.SIGINT)  # Ctrl-C: finish cleanly
        rc = p.wait(timeout=30)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        cam.stop()
    server.stop()  # SIGTERM: the recording's buffered data reaches the file
    assert rc == 0, err.text
    assert "reconnecting in" in err.text
    assert "S3cretPw" not in err.text  # credentials never printed
    stats = json.loads((tmp_path / "stats.json").read_text())
    frames = decode_all(rec)
    print(f"reconnect {reconnect_s:.2f} s, recorded {len(frames)} frames, stats {stats}")
    assert rec.stat().st_size > size_before  # still recording after the camera came back
    assert len(frames) >= 60, len(frames)
    assert frames[0].shape == (240, 320, 3)
    assert stats["frames_out"] >= 60


def test_rtsp_sink_reconnects_when_the_server_restarts(gst, tmp_path):
    """The publisher survives a restart of the receiving server (a new RECORD session)."""
    from psenet_stream.io.live import open_live_source
    from psenet_stream.io.rtsp_out import RtspSink

    port = free_port()
    rec1, rec2 = tmp_path / "a.mkv", tmp_path / "b.mkv"
    server = start_rtsp_server(port, record=rec1, log=tmp_path / "s1.log")
    src = open_live_source("lavfi:testsrc2=size=160x120:rate=30,realtime")
    sink = RtspSink(f"rtsp://127.0.0.1:{port}/out", src.info, open_timeout=20)
    try:
        deadline = time.monotonic() + 60
        restarted = False
        for f in src:
            sink.write(f, f.rgb)
            if not restarted and sink.connected and sink.frames_written > 60:
                server.stop(signal.SIGKILL)
                time.sleep(0.5)
                server = start_rtsp_server(port, record=rec2, log=tmp_path / "s2.log")
                restarted = True
                t_restart = time.monotonic()
            if restarted and sink.reconnects >= 1 and time.monotonic() - t_restart > 2.5:
                break
            assert time.monotonic() < deadline, f"no reconnect; last error {sink.last_error}"
    finally:
        sink.close()
        src.close()
        server.stop()
    assert sink.reconnects >= 1 and sink.sessions >= 2
    assert len(decode_all(rec2)) >= 30
