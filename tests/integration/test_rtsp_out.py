"""Publishing to a server that is not there, or that never answers, never freezes the
process: PyAV 18 would hold the GIL in the network open, so the muxer lives in a child
process and the parent gives up after open_timeout with a clear, masked error."""

from __future__ import annotations

import socket
import subprocess
import threading
import time

import numpy as np
import pytest

from psenet_stream.errors import OutputError
from psenet_stream.io.frames import Frame, StreamInfo
from psenet_stream.io.rtsp_out import RtspSink, output_format
from tests.live_helpers import PSENET, free_port, subprocess_env, weights_for_tests

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def silent_server():
    """Accepts TCP connections and never says a word (the worst case for a client)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    conns = []
    stop = threading.Event()

    def accept():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])
            except OSError:
                pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join(timeout=2)
    for c in conns:
        c.close()
    srv.close()


def _frame(i: int) -> tuple[Frame, np.ndarray]:
    rgb = np.full((120, 160, 3), i % 255, np.uint8)
    return Frame(rgb=rgb, index=i), rgb


@pytest.mark.parametrize("kind", ["silent", "refused"])
def test_unreachable_server_errors_within_bound_and_never_freezes(kind, silent_server):
    port = silent_server if kind == "silent" else free_port()
    ticks = []
    done = threading.Event()

    def ticker():  # would stall if anything held the GIL
        while not done.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.05)

    threading.Thread(target=ticker, daemon=True).start()
    sink = RtspSink(f"rtsp://cam:Pa55word@127.0.0.1:{port}/out", StreamInfo(160, 120, live=True), open_timeout=2.0)
    t0 = time.monotonic()
    with pytest.raises(OutputError) as ei:
        i = 0
        while time.monotonic() - t0 < 20:
            sink.write(*_frame(i))
            i += 1
            time.sleep(1 / 30)
    elapsed = time.monotonic() - t0
    t1 = time.monotonic()
    sink.close()
    done.set()
    assert elapsed < 5.0, elapsed
    assert time.monotonic() - t1 < 6.0
    msg = str(ei.value)
    assert msg.startswith("cannot publish to rtsp://cam:***@127.0.0.1:") and "Pa55word" not in msg + ei.value.fix
    if kind == "refused":
        assert "refused" in msg
    gaps = np.diff(ticks)
    assert gaps.max() < 1.0, gaps.max()  # the main process kept running throughout
    assert sink._proc.poll() is not None  # the publisher is gone


def test_bad_output_scheme():
    with pytest.raises(OutputError, match="cannot publish"):
        output_format("ftp://host/x")
    assert output_format("rtmp://h/app/key") == "flv"


def test_cli_exits_with_clear_error_on_unreachable_output(silent_server, tmp_path):
    env = subprocess_env(PSENET_STREAM_WEIGHTS=weights_for_tests(tmp_path))
    t = time.monotonic()
    r = subprocess.run(
        [*PSENET, "webcam", "--device", "lavfi:testsrc2=size=160x120:rate=15,realtime", "--preview", "none",
         "-o", f"rtsp://u:Pa55word@127.0.0.1:{silent_server}/out", "--connect-timeout", "3",
         "--backend", "cpu", "--threads", "1", "--infer-size", "64"],
        env=env, capture_output=True, timeout=60, check=False,
    )
    err = r.stderr.decode()
    assert r.returncode == 4, err
    assert "error: cannot publish to rtsp://u:***@127.0.0.1" in err and "hint:" in err
    assert "Pa55word" not in err and "Traceback" not in err
    assert time.monotonic() - t < 45
