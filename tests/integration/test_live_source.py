"""Live sources with real parts: a paced lavfi camera, a TCP MPEG-TS "camera" served by a
real FFmpeg listener in another process (killed and restarted), a silent server."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from psenet_stream.buffers import DropOldestQueue
from psenet_stream.errors import InputError
from psenet_stream.io.live import Backoff, LiveOptions, build_open_args, open_live_source
from psenet_stream.io.specs import parse_size
from tests.live_helpers import free_port

pytestmark = pytest.mark.timeout(60)

CAM = "lavfi:testsrc2=size=320x240:rate=30,realtime"


# --- pure parts -----------------------------------------------------------------------------


def test_backoff_doubles_caps_and_resets():
    b = Backoff(0.5, 30.0)
    assert [b.next_delay() for _ in range(9)] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    b.reset()
    assert b.next_delay() == 0.5


def test_drop_oldest_queue_counts_and_never_blocks():
    q = DropOldestQueue(2)
    for i in range(5):
        q.put(i)
    assert q.dropped == 3 and len(q) == 2
    assert [q.get(0), q.get(0)] == [3, 4]
    t = time.monotonic()
    with pytest.raises(TimeoutError):
        q.get(timeout=0.1)
    assert time.monotonic() - t < 1.0


def test_open_args_per_kind():
    o = LiveOptions(size=(1280, 720), fps=30, input_format="mjpeg", read_timeout=3)
    assert build_open_args("/dev/video0", o) == ("/dev/video0", "v4l2", {"video_size": "1280x720", "framerate": "30", "input_format": "mjpeg"})
    _target, fmt, opts = build_open_args("rtsp://u:p@cam/s", o)
    assert fmt is None and opts["rtsp_transport"] == "tcp" and opts["timeout"] == "3000000" and opts["fflags"] == "nobuffer"
    assert build_open_args("lavfi:testsrc2", o)[:2] == ("testsrc2", "lavfi")
    assert build_open_args("/dev/video0", LiveOptions(fps=29.97))[2]["framerate"] == "2997/100"
    assert parse_size("640x480") == (640, 480)
    with pytest.raises(Exception, match="bad frame size"):
        parse_size("640by480")


def test_webcam_without_a_camera_fails_before_loading_the_model():
    import subprocess

    from tests.live_helpers import PSENET, subprocess_env

    t = time.monotonic()
    r = subprocess.run([*PSENET, "webcam", "--device", "/dev/video97", "--preview", "http"], env=subprocess_env(), capture_output=True, timeout=60, check=False)
    err = r.stderr.decode()
    assert r.returncode == 3 and "error: no camera at /dev/video97" in err and "hint:" in err, err
    assert time.monotonic() - t < 15


def test_missing_camera_and_bad_graph_fail_fast_with_a_hint():
    t = time.monotonic()
    with pytest.raises(InputError, match="no camera at /dev/video97") as ei:
        open_live_source("/dev/video97")
    assert "--device" in ei.value.fix
    with pytest.raises(InputError, match="cannot open lavfi"):
        open_live_source("lavfi:nosuchfilter=1")
    with pytest.raises(TypeError, match="unexpected option"):
        open_live_source(CAM, frobnicate=1)
    assert time.monotonic() - t < 10


# --- (a) a paced virtual camera ---------------------------------------------------------------


def test_lavfi_realtime_paces_and_latency_stays_bounded():
    with open_live_source(CAM) as src:
        assert src.info.live and (src.info.width, src.info.height) == (320, 240) and float(src.info.fps) == 30
        frames, lat = [], []
        t0 = time.perf_counter()
        for f in src:
            lat.append(time.perf_counter() - f.t_capture)
            frames.append(f)
            if len(frames) == 45:
                break
        dt = time.perf_counter() - t0
    rate = (len(frames) - 1) / dt
    assert 20 <= rate <= 40, f"{rate:.1f} fps from a 30 fps paced source"
    assert src.dropped <= 5  # a fast consumer drops (almost) nothing
    assert np.percentile(lat, 50) < 0.05
    pts = [f.pts for f in frames]
    assert all(b > a for a, b in zip(pts[:-1], pts[1:])) and frames[0].time_base.denominator == 90000  # noqa: RUF007
    assert frames[0].rgb.shape == (240, 320, 3) and frames[0].rgb.dtype == np.uint8


def test_slow_consumer_drops_oldest_and_latency_does_not_grow():
    """Consumer at ~10 fps from a 30 fps camera: 2 of 3 frames dropped, each frame it gets
    is fresh (latency bounded by one frame interval + queue), never growing."""
    with open_live_source(CAM, queue_size=1) as src:
        lat, idx = [], []
        for f in src:
            lat.append(time.perf_counter() - f.t_capture)
            idx.append(f.index)
            time.sleep(0.1)  # a slow model
            if len(lat) == 20:
                break
        dropped = src.dropped
    assert dropped >= 20, dropped
    assert max(lat[5:]) < 0.25, lat
    assert np.mean(lat[-5:]) < np.mean(lat[5:10]) + 0.1  # not creeping up
    assert np.diff(idx).mean() > 2  # skipped frames: the index is the capture position


def test_finite_lavfi_graph_ends_cleanly():
    with open_live_source("lavfi:testsrc2=size=64x48:rate=30:duration=0.5") as src:
        n = sum(1 for _ in src)
    assert 10 <= n <= 16


def test_close_from_another_thread_ends_iteration():
    src = open_live_source(CAM)
    got = []

    def consume():
        for f in src:
            got.append(f.index)

    t = threading.Thread(target=consume)
    t.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    src.close()
    t.join(timeout=5)
    assert not t.is_alive() and time.monotonic() - t0 < 3
    assert got


# --- network camera: a real FFmpeg TCP listener in another process ------------------------------

SERVER = textwrap.dedent(
    """
    import sys, time, av
    port, size, seconds = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    src = av.open(f"testsrc2=size={size}:rate=25", format="lavfi")
    out = av.open(f"tcp://127.0.0.1:{port}?listen=1&listen_timeout=20000", "w", format="mpegts")
    s = out.add_stream("mpeg2video", rate=25)
    w, h = (int(v) for v in size.split("x"))
    s.width, s.height, s.pix_fmt = w, h, "yuv420p"
    s.codec_context.gop_size = 5
    t0 = time.monotonic()
    for i, f in enumerate(src.decode(video=0)):
        if i / 25 > seconds:
            break
        while time.monotonic() - t0 < i / 25:
            time.sleep(0.002)
        f.pts = None
        for p in s.encode(f):
            out.mux(p)
    out.close()
    """
)


def _camera(port: int, size: str = "160x120", seconds: float = 30.0) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", SERVER, str(port), size, str(seconds)], stderr=subprocess.DEVNULL)


def _stop(p: subprocess.Popen) -> None:
    if p.poll() is None:
        p.kill()
    p.wait(timeout=10)


def _wait_listening(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # a connect would consume the one-shot listener, so look at the socket table instead
        with open("/proc/net/tcp") as f:
            if any(f":{port:04X} " in line and line.split()[3] == "0A" for line in f):
                return
        time.sleep(0.05)
    raise AssertionError(f"camera server did not listen on {port}")


def test_tcp_camera_killed_and_restarted_reconnects_with_backoff(caplog):
    """Kill the camera mid-stream, restart it at another resolution: frames resume, the
    outage is logged with the backoff delay, and the new size comes through."""
    import logging

    port = free_port()
    cam = _camera(port)
    try:
        _wait_listening(port)
        src = open_live_source(f"tcp://127.0.0.1:{port}", read_timeout=1.5, open_timeout=5, backoff_initial=0.25)
        sizes, t_kill = [], None
        with caplog.at_level(logging.INFO, logger="psenet_stream.live"):
            deadline = time.monotonic() + 40
            for f in src:
                sizes.append(f.rgb.shape[:2])
                if len(sizes) == 20:
                    _stop(cam)
                    t_kill = time.monotonic()
                    time.sleep(1.0)
                    cam = _camera(port, size="192x144")
                if f.rgb.shape[:2] == (144, 192) and sizes.count((144, 192)) >= 10:
                    break
                assert time.monotonic() < deadline, "no frames after the restart"
        src.close()
    finally:
        _stop(cam)
    assert src.reconnects >= 1 and src.outages
    assert (120, 160) in sizes and (144, 192) in sizes
    assert "reconnecting in" in caplog.text and "reconnected to tcp://127.0.0.1" in caplog.text
    assert time.monotonic() - t_kill < 30


def test_gives_up_after_max_retries():
    port = free_port()
    cam = _camera(port, seconds=1.0)
    try:
        _wait_listening(port)
        src = open_live_source(f"tcp://127.0.0.1:{port}", read_timeout=1, open_timeout=2, max_retries=2, backoff_initial=0.1)
        t = time.monotonic()
        with pytest.raises(InputError, match="gave up on tcp://127.0.0.1:.* after 3 failed attempts"):
            for _ in src:
                pass
        assert time.monotonic() - t < 20
        src.close()
    finally:
        _stop(cam)


def test_silent_server_times_out_instead_of_hanging():
    """A server that accepts the connection and then sends nothing: open gives up after
    open_timeout with a clear error (no hang)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    port = srv.getsockname()[1]
    try:
        t = time.monotonic()
        with pytest.raises(InputError, match="cannot open rtsp://u:\\*\\*\\*@127.0.0.1"):
            open_live_source(f"rtsp://u:pw@127.0.0.1:{port}/x", open_timeout=2, read_timeout=2)
        assert time.monotonic() - t < 10
    finally:
        srv.close()


def test_lock_size_keeps_a_recording_going_when_the_camera_changes_size(tmp_path):
    """A real file encoder behind LockSize: frames of a new size are scaled, not fatal."""
    import av

    from psenet_stream.io.frames import Frame, StreamInfo
    from psenet_stream.io.live import LIVE_TIME_BASE
    from psenet_stream.io.sinks import LockSize
    from psenet_stream.io.video import VideoFileSink

    out = tmp_path / "rec.mp4"
    sink = LockSize(VideoFileSink(out, StreamInfo(64, 48, fps=30, time_base=LIVE_TIME_BASE, live=True)))
    for i in range(10):
        h, w = (48, 64) if i < 5 else (60, 80)
        rgb = np.full((h, w, 3), 20 * i, np.uint8)
        sink.write(Frame(rgb=rgb, index=i, pts=i * 3000, time_base=LIVE_TIME_BASE), rgb)
    sink.close()
    assert sink.resized == 5
    with av.open(str(out)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 10 and all(f.shape == (48, 64, 3) for f in frames)
