"""The browser preview, fetched by a real HTTP client (urllib) over loopback."""

from __future__ import annotations

import re
import threading
import time
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest

from psenet_stream.io.frames import Frame, StreamInfo
from psenet_stream.io.http_preview import HttpPreviewSink

pytestmark = pytest.mark.timeout(60)


def _frames(n: int, w: int = 160, h: int = 120):
    for i in range(n):
        orig = np.full((h, w, 3), 40, np.uint8)
        orig[:, : w // 4] = 10
        enh = np.full((h, w, 3), 200, np.uint8)
        yield Frame(rgb=orig, index=i, t_capture=time.perf_counter()), enh


def _read_parts(resp, count: int, timeout: float = 10.0) -> list[bytes]:
    """JPEG payloads of the first `count` parts of a multipart/x-mixed-replace response."""
    ctype = resp.headers["Content-Type"]
    m = re.search(r"boundary=([^;]+)", ctype)
    assert ctype.startswith("multipart/x-mixed-replace") and m
    boundary = m.group(1).encode()
    parts = []
    deadline = time.monotonic() + timeout
    while len(parts) < count and time.monotonic() < deadline:
        line = resp.readline()
        if not line:
            break
        if line.strip() != b"--" + boundary:
            continue
        headers = {}
        while True:
            h = resp.readline().strip()
            if not h:
                break
            k, v = h.decode().split(":", 1)
            headers[k.strip().lower()] = v.strip()
        assert headers["content-type"] == "image/jpeg"
        parts.append(resp.read(int(headers["content-length"])))
    return parts


def test_mjpeg_stream_index_and_snapshot():
    sink = HttpPreviewSink(StreamInfo(160, 120, live=True), port=0, announce=False)
    stop = threading.Event()

    def feed():
        for f, e in _frames(10_000):
            if stop.is_set():
                return
            sink.write(f, e)
            time.sleep(1 / 30)

    t = threading.Thread(target=feed, daemon=True)
    t.start()
    try:
        assert sink.url.startswith("http://127.0.0.1:")
        html = urllib.request.urlopen(sink.url, timeout=5).read().decode()
        assert "/stream.mjpg" in html
        with urllib.request.urlopen(sink.url + "stream.mjpg", timeout=5) as resp:
            parts = _read_parts(resp, 3)
        assert len(parts) == 3
        img = cv2.imdecode(np.frombuffer(parts[-1], np.uint8), cv2.IMREAD_COLOR)
        assert img.shape == (120, 320, 3)  # original | enhanced side by side
        left, right = img[:, 40:160].mean(), img[:, 160 + 40 :].mean()
        assert right > left + 100, (left, right)
        snap = urllib.request.urlopen(sink.url + "snapshot.jpg", timeout=5)
        assert snap.headers["Content-Type"] == "image/jpeg"
        assert cv2.imdecode(np.frombuffer(snap.read(), np.uint8), cv2.IMREAD_COLOR).shape == (120, 320, 3)
        import json

        stats = json.loads(urllib.request.urlopen(sink.url + "stats.json", timeout=5).read())
        assert stats["frames"] > 0
        with pytest.raises(urllib.error.HTTPError) as ei:
            urllib.request.urlopen(sink.url + "nope", timeout=5)
        assert ei.value.code == 404
    finally:
        stop.set()
        t.join(timeout=5)
        t0 = time.monotonic()
        sink.close()
        sink.close()  # idempotent
        assert time.monotonic() - t0 < 5


def test_slow_client_skips_frames_and_does_not_slow_the_writer():
    sink = HttpPreviewSink(None, port=0, announce=False)
    try:
        resp = urllib.request.urlopen(sink.url + "stream.mjpg", timeout=10)
        frames = list(_frames(301))
        t0 = time.perf_counter()
        for f, e in frames[:300]:
            sink.write(f, e)
        elapsed = time.perf_counter() - t0
        # the client has not read anything yet: it gets the latest frame, not a backlog
        first = _read_parts(resp, 1, timeout=10)
        sink.write(*frames[300])  # a newer frame: the client is sent that one next
        second = _read_parts(resp, 1, timeout=10)
        resp.close()
        assert elapsed < 15.0  # 300 writes never waited for the client (a blocked writer would hang here)
        assert len(first) == 1 and len(second) == 1
        assert sink.latest.seq == 301  # the client saw 2 of 301 frames
    finally:
        sink.close()


def test_port_in_use_is_a_clear_error():
    from psenet_stream.errors import OutputError

    a = HttpPreviewSink(None, port=0, announce=False)
    try:
        with pytest.raises(OutputError, match="cannot serve the preview") as ei:
            HttpPreviewSink(None, port=a.port, announce=False)
        assert "--port" in ei.value.fix
    finally:
        a.close()


def test_webcam_command_serves_http_preview(tmp_path):
    """The `webcam` command end to end with a lavfi camera, --preview http and -o file.mp4."""
    import os
    import subprocess

    from tests.live_helpers import PSENET, subprocess_env, weights_for_tests

    env = subprocess_env(PSENET_STREAM_WEIGHTS=weights_for_tests(tmp_path))
    p = subprocess.Popen(
        [*PSENET, "webcam", "--device", "lavfi:testsrc2=size=160x120:rate=15,realtime", "--preview", "http", "--port", "0",
         "--backend", "cpu", "--threads", "1", "--infer-size", "64", "--duration", "30", "--stats-json", str(tmp_path / "s.json"), "-o", str(tmp_path / "rec.mp4")],
        env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        url = None
        deadline = time.monotonic() + 40
        while url is None and time.monotonic() < deadline:
            line = p.stderr.readline().decode()
            if not line and p.poll() is not None:
                break
            m = re.search(r"preview: (http://127\.0\.0\.1:\d+/)", line)
            url = m.group(1) if m else None
        assert url, "no preview URL printed"
        with urllib.request.urlopen(url + "stream.mjpg", timeout=20) as resp:
            parts = _read_parts(resp, 2, timeout=20)
        img = cv2.imdecode(np.frombuffer(parts[-1], np.uint8), cv2.IMREAD_COLOR)
        assert img.shape == (120, 320, 3)
        os.killpg(p.pid, 2)  # Ctrl-C: a clean stop
        rc = p.wait(timeout=20)
        assert rc == 0, p.stderr.read().decode()
        assert (tmp_path / "s.json").is_file()
        # Ctrl-C is how a live recording ends: the file is kept, complete and playable
        import av

        with av.open(str(tmp_path / "rec.mp4")) as c:
            n = sum(1 for _ in c.decode(video=0))
        assert n >= 2 and not list(tmp_path.glob(".rec.mp4*"))
    finally:
        if p.poll() is None:
            os.killpg(p.pid, 9)
            p.wait()
