"""Live faults with real parts: a paced TCP MPEG-TS camera (tests/faults/ts_camera.py), a lavfi
realtime camera, gst-rtsp-server (tests/rtsp_server.py), and the real CLI.

- the camera stops sending: the read timeout notices, the source reconnects when it is back
- the server refuses: backoff, then gives up after the configured retries with a clear error
- the resolution changes mid-stream: frames carry their size; a file output scales to the
  first size (enhance._FirstSize) instead of dying
- the network output is unreachable or silent: the process neither freezes nor hangs; it
  exits 4 with a clear error within a bound
- a slow consumer: the oldest frames are dropped, counted, and latency stays bounded
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from tests.faults.conftest import FAST, ROOT, cli_env
from tests.faults.test_bad_inputs import probe
from tests.live_helpers import Proc, free_port, gst_rtsp_available, make_h264_clip, start_rtsp_server

REALTIME = "lavfi:testsrc2=size=160x120:rate=25,realtime"


def camera(port: int, *, size="320x240", seconds=2.0, then="close", stall=30.0) -> Proc:
    p = Proc([sys.executable, "-m", "tests.faults.ts_camera", "--port", str(port), "--size", size, "--seconds", str(seconds),
              "--then", then, "--stall", str(stall)], cwd=str(ROOT), env=cli_env())
    assert p.wait_line("listening", 20) is not None
    time.sleep(0.3)  # the listen socket opens right after the line
    return p


def test_camera_stalls_then_returns_in_another_resolution(tmp_path):
    from psenet_stream.io.live import open_live_source

    port = free_port()
    cams = [camera(port, seconds=2, then="stall", stall=20)]

    def swap():
        time.sleep(3.5)  # 2 s of frames, a 1 s read timeout, a few refused reconnects
        cams[0].stop()
        cams.append(camera(port, size="480x360", seconds=2, then="close"))

    t0 = time.monotonic()
    src = open_live_source(f"tcp://127.0.0.1:{port}", format="mpegts", read_timeout=1.0, open_timeout=5.0, backoff_initial=0.2,
                           backoff_max=1.0, max_retries=4)
    threading.Thread(target=swap, daemon=True).start()
    sizes: dict = {}
    err = None
    try:
        for f in src:
            sizes[f.rgb.shape[:2]] = sizes.get(f.rgb.shape[:2], 0) + 1
    except Exception as e:  # after the second camera ends: gives up after 5 refused attempts
        err = e
    finally:
        src.close()
        for c in cams:
            c.stop()
    took = time.monotonic() - t0
    assert set(sizes) == {(240, 320), (360, 480)}, sizes
    assert src.reconnects == 1 and 0.5 < src.outages[0] < 6.0, (src.reconnects, src.outages)
    from psenet_stream.errors import InputError

    assert isinstance(err, InputError) and "gave up" in str(err) and "connection refused" in str(err), err
    assert took < 25, took


def test_refused_backoff_then_gives_up_within_bound():
    from psenet_stream.errors import InputError
    from psenet_stream.io.live import open_live_source

    port = free_port()  # nothing listens there
    t0 = time.monotonic()
    with pytest.raises(InputError, match=r"gave up .* after 4 failed attempts: connection refused"):
        open_live_source(f"tcp://127.0.0.1:{port}", format="mpegts", wait_first=True, max_retries=3, backoff_initial=0.1, open_timeout=2.0)
    took = time.monotonic() - t0
    assert 0.6 <= took < 6.0, took  # 0.1 + 0.2 + 0.4 s of backoff, then the fourth refusal


def test_cli_live_refused_is_one_clear_error(tmp_path, forkcli):
    port = free_port()
    r = forkcli.run([f"tcp://127.0.0.1:{port}", "-o", tmp_path / "o.mp4", *FAST], timeout=40)
    assert not r["timed_out"], r["stderr"]
    assert r["rc"] == 3 and "Traceback" not in r["stderr"], r["stderr"]
    assert "connection refused" in r["stderr"] and "hint:" in r["stderr"]
    assert not list(tmp_path.iterdir())


def _run_until(args, cwd, stop_when, timeout=60.0, sig=signal.SIGINT):
    p = subprocess.Popen([sys.executable, "-m", "psenet_stream", *map(str, args)], cwd=cwd, stderr=subprocess.PIPE,
                         stdout=subprocess.DEVNULL, env=cli_env())
    try:
        stop_when(p)
        if p.poll() is None:
            p.send_signal(sig)
        err = p.communicate(timeout=timeout)[1].decode(errors="replace")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return p.returncode, err


def test_cli_live_resolution_change_to_file(tmp_path):
    """A camera that reconnects in another resolution: the recording goes on, scaled."""
    port = free_port()
    out = tmp_path / "rec.mp4"
    cams = [camera(port, seconds=3, then="close")]

    def scenario(p):
        cams[0].p.wait(timeout=30)
        cams.append(camera(port, size="480x360", seconds=3, then="close"))
        cams[1].p.wait(timeout=30)
        time.sleep(1.0)

    try:
        rc, err = _run_until([f"tcp://127.0.0.1:{port}", "-o", out, *FAST], tmp_path, scenario)
    finally:
        for c in cams:
            c.stop()
    assert rc == 0, err  # Ctrl-C ends a live recording; the file is kept under its name
    assert "Traceback" not in err and "resolution changed 320x240 -> 480x360" in err and "recording keeps 320x240" in err, err
    info = probe(out)
    assert info["errors"] == 0 and info["size"] == (320, 240) and info["frames"] > 40, info


def _blackhole() -> tuple[socket.socket, int]:
    """A TCP port that accepts connections and never answers (a hung server)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    return s, s.getsockname()[1]


@pytest.mark.parametrize("kind", ["silent", pytest.param("refused", marks=pytest.mark.slow)])
def test_cli_network_output_unreachable_exits_cleanly(tmp_path, kind):
    if kind == "silent":
        sock, port = _blackhole()
    else:
        sock, port = None, free_port()
    t0 = time.monotonic()
    try:
        p = subprocess.run([sys.executable, "-m", "psenet_stream", REALTIME, "-o", f"rtsp://user:hunter22@127.0.0.1:{port}/out", *FAST],
                           cwd=tmp_path, capture_output=True, timeout=60, env=cli_env())
    finally:
        if sock is not None:
            sock.close()
    took = time.monotonic() - t0
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 4, err
    assert "Traceback" not in err and "hunter22" not in err, err
    assert "cannot publish to rtsp://user:***@127.0.0.1" in err and "hint:" in err, err
    assert took < 40, took  # open_timeout (10 s) + start-up, never a freeze


def test_slow_consumer_drops_oldest_and_counts(tmp_path):
    from psenet_stream import pipeline
    from psenet_stream.io.live import open_live_source

    class SlowSink:
        def __init__(self):
            self.n = 0

        def write(self, frame, enhanced):
            time.sleep(0.12)  # ~8 fps against a 25 fps camera
            self.n += 1

        def close(self):
            pass

    src = open_live_source(REALTIME)
    sink = SlowSink()
    stop = threading.Event()
    threading.Timer(3.0, stop.set).start()
    try:
        stats = pipeline.run(src, None, [sink], stop=stop)
    finally:
        src.close()
    assert stats.dropped >= 20, stats.summary()
    assert stats.frames_out == sink.n and sink.n <= 35
    assert f"{stats.dropped} dropped" in stats.summary()
    assert np.percentile(stats.latencies, 95) < 0.6, stats.summary()  # bounded, not growing with the backlog


@pytest.mark.rtsp
def test_rtsp_camera_server_restart_reconnects(tmp_path):
    reason = gst_rtsp_available()
    if reason:
        pytest.skip(reason)
    from psenet_stream.io.live import open_live_source

    clip = make_h264_clip(tmp_path / "cam.mp4", seconds=20, size=(320, 240), fps=25)
    port = free_port()
    srv = [start_rtsp_server(port, play=clip, log=tmp_path / "gst1.log")]
    url = f"rtsp://cam:s3cret-pw@127.0.0.1:{port}/in"
    src = open_live_source(url, read_timeout=1.5, open_timeout=8.0, backoff_initial=0.2, backoff_max=1.0, max_retries=20)
    n_before = n_after = 0
    t0 = time.monotonic()
    try:
        for f in src:
            if src.reconnects == 0:
                n_before += 1
                if n_before == 25:
                    srv[0].stop()  # the camera's server dies mid-stream
                    time.sleep(1.0)
                    srv.append(start_rtsp_server(port, play=clip, log=tmp_path / "gst2.log"))
            else:
                n_after += 1
                if n_after >= 25:
                    break
            if time.monotonic() - t0 > 60:
                break
    finally:
        src.close()
        for s in srv:
            s.stop()
    assert n_before >= 25 and n_after >= 25 and src.reconnects >= 1, (n_before, n_after, src.reconnects)
    assert "s3cret-pw" not in repr(src) and "s3cret-pw" not in src.info.description


def test_latency_samples_stay_bounded(monkeypatch):
    """A live run never ends: the latency samples behind the p50/p95 summary must not grow forever."""
    from psenet_stream import pipeline

    monkeypatch.setattr(pipeline, "LATENCY_WINDOW", 50)
    from psenet_stream.io.frames import Frame

    frames = (Frame(rgb=np.zeros((4, 4, 3), np.uint8), index=i) for i in range(1000))

    class Null:
        def write(self, frame, enhanced):
            pass

        def close(self):
            pass

    stats = pipeline.run(frames, None, [Null()], live=True)
    assert stats.frames_out + stats.dropped == 1000
    assert len(stats.latencies) < 100 and stats.latency_p95_ms is not None


@pytest.mark.rtsp
@pytest.mark.slow
def test_cli_publish_server_dies_mid_stream_then_ctrl_c(tmp_path):
    """The RTSP server we publish to dies mid-stream: the publisher child keeps retrying, the
    CLI stays responsive, and Ctrl-C ends it within a bound."""
    reason = gst_rtsp_available()
    if reason:
        pytest.skip(reason)
    import selectors

    port = free_port()
    srv = start_rtsp_server(port, record=tmp_path / "rec.mkv", log=tmp_path / "gst.log")
    p = subprocess.Popen([sys.executable, "-m", "psenet_stream", REALTIME, "-o", f"rtsp://127.0.0.1:{port}/out", *FAST], cwd=tmp_path,
                         stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=cli_env())
    buf = b""

    def read_until(token: bytes, timeout: float) -> bool:
        nonlocal buf
        sel = selectors.DefaultSelector()
        sel.register(p.stderr, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while token not in buf and time.monotonic() < deadline:
            if sel.select(timeout=0.2):
                chunk = p.stderr.read1(4096)
                if not chunk:
                    break
                buf += chunk
        return token in buf

    try:
        assert read_until(b"connected", 40), buf.decode(errors="replace")
        time.sleep(1.0)
        srv.stop()  # the server dies
        assert read_until(b"reconnecting", 20), buf.decode(errors="replace")
        assert p.poll() is None  # still running, not frozen
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        rest = p.communicate(timeout=30)[1]
        took = time.monotonic() - t0
    finally:
        srv.stop()
        if p.poll() is None:
            p.kill()
            p.wait()
    err = (buf + rest).decode(errors="replace")
    assert "Traceback" not in err, err
    assert p.returncode == 0, err
    assert took < 15, took
