"""The multi-stream server on real sources (lavfi, RTSP from tests/rtsp_server.py), real
outputs (files) and its real HTTP endpoints on 127.0.0.1."""

from __future__ import annotations

import json
import re
import signal
import threading
import time
import urllib.request

import pytest

from psenet_stream.enhancer import Enhancer
from psenet_stream.serve import config
from psenet_stream.serve.server import Server
from tests.live_helpers import decode_all, free_port, gst_rtsp_available, make_h264_clip, start_rtsp_server

pytestmark = pytest.mark.timeout(240)

LAVFI = "lavfi:testsrc2=size={w}x{h}:rate=25,realtime"


@pytest.fixture(scope="module")
def enhancer():
    return Enhancer.from_pretrained(backend="cpu", threads=1, infer_size=64, stabilize=0.9, gamma_every=1)


class Running:
    """A Server.run in a thread; ``stop()`` ends it and returns its final status."""

    def __init__(self, srv: Server):
        self.srv = srv
        self.stop_event = threading.Event()
        self.result: dict | None = None
        self.error: BaseException | None = None
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        try:
            self.result = self.srv.run(self.stop_event)
        except BaseException as e:  # noqa: BLE001 - re-raised by stop()
            self.error = e

    def stop(self) -> dict:
        self.stop_event.set()
        self.t.join(60)
        assert not self.t.is_alive(), "run() did not return after stop"
        if self.error:
            raise self.error
        return self.result


def wait_for(cond, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def metric(text: str, name: str, stream: str | None = None) -> float:
    lab = "" if stream is None else f'{{stream="{stream}"}}'
    m = re.search(rf"^{re.escape(name + lab)} ([0-9.e+-]+)$", text, re.MULTILINE)
    assert m, f"{name}{lab} not in metrics"
    return float(m.group(1))


def test_two_streams_share_batches_serve_metrics_and_health_and_write_complete_files(enhancer, tmp_path):
    out = tmp_path / "s1.mp4"
    cfg = config.load({
        "serve": {"metrics_port": 0, "deadline_ms": 30, "status_interval": 0},
        "stream": [
            {"name": "s1", "input": LAVFI.format(w=192, h=108), "outputs": [str(out)]},
            {"name": "s2", "input": LAVFI.format(w=160, h=120), "outputs": ["null"], "strength": 0.5},
        ],
    })
    run = Running(Server(cfg, enhancer=enhancer, status=False))
    try:
        wait_for(lambda: run.srv.metrics_url and all(w.frames_out > 20 for w in run.srv.workers.values()), 60, "frames on both streams")
        code, body = get(run.srv.metrics_url + "/healthz")
        assert code == 200 and json.loads(body) == {"status": "ok", "streams": {"s1": "running", "s2": "running"}}
        code, text = get(run.srv.metrics_url + "/metrics")
        assert code == 200
        for s in ("s1", "s2"):
            assert metric(text, "psenet_stream_frames_total", s) > 20
            assert metric(text, "psenet_stream_latency_seconds_count", s) > 20
            assert metric(text, "psenet_stream_reconnects_total", s) == 0
            assert f'psenet_stream_state{{psenet_stream_state="running",stream="{s}"}} 1.0' in text
            assert f'psenet_stream_fps{{stream="{s}"}}' in text
        # frames of both streams went through the backend together
        assert metric(text, "psenet_batch_frames_sum") / metric(text, "psenet_batch_frames_count") > 1.5
        assert metric(text, "psenet_backend_seconds_count") > 0
        code, _ = get(run.srv.metrics_url + "/nothing")
        assert code == 404
    finally:
        final = run.stop()
    assert final["s1"]["state"] == "stopped"
    frames = decode_all(out)
    assert len(frames) == final["s1"]["frames_out"] > 20  # every written frame is in the committed file
    assert frames[0].shape == (108, 192, 3)
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left


def test_reload_adds_and_removes_streams_without_touching_the_others(enhancer, tmp_path):
    toml = tmp_path / "streams.toml"
    src = LAVFI.format(w=160, h=90)
    toml.write_text(
        f'[serve]\nmetrics_port = -1\nstatus_interval = 0\n'
        f'[[stream]]\nname = "keep"\ninput = "{src}"\n'
        f'[[stream]]\nname = "old"\ninput = "{src}"\noutputs = ["{tmp_path / "old.mp4"}"]\n'
    )
    run = Running(Server(config.load(toml), enhancer=enhancer, status=False))
    try:
        wait_for(lambda: len(run.srv.workers) == 2 and all(w.frames_out > 10 for w in run.srv.workers.values()), 60, "both streams")
        keep = run.srv.workers["keep"]
        toml.write_text(
            f'[serve]\nmetrics_port = -1\nstatus_interval = 0\n'
            f'[[stream]]\nname = "keep"\ninput = "{src}"\n'
            f'[[stream]]\nname = "new"\ninput = "{src}"\nstrength = 0.5\n'
        )
        run.srv.request_reload()  # what SIGHUP does (the CLI test sends the signal itself)
        wait_for(lambda: "new" in run.srv.workers and run.srv.workers["new"].frames_out > 5, 60, "the new stream")
        assert "old" not in run.srv.workers
        assert run.srv.workers["keep"] is keep and keep.state == "running"  # untouched
        n = keep.frames_out
        wait_for(lambda: keep.frames_out > n + 10, 20, "the kept stream to go on")
        assert (tmp_path / "old.mp4").exists() and len(decode_all(tmp_path / "old.mp4")) > 10  # closed cleanly on removal
    finally:
        final = run.stop()
    assert set(final) == {"keep", "new"}


def test_a_failing_output_is_reported_and_retried_while_the_others_go_on(enhancer, tmp_path):
    later = tmp_path / "later"  # does not exist yet: opening the output fails
    good = tmp_path / "good.mp4"
    cfg = config.load({
        "serve": {"metrics_port": 0, "status_interval": 0},
        "stream": [{"name": "s1", "input": LAVFI.format(w=160, h=90), "outputs": [str(later / "rec.mp4"), str(good)]}],
    })
    run = Running(Server(cfg, enhancer=enhancer, status=False))
    try:
        w = wait_for(lambda: run.srv.workers.get("s1"), 60, "the stream")
        wait_for(lambda: w.outputs[0].errors >= 1 and w.frames_out > 10, 60, "the output error")
        assert "output directory does not exist" in w.outputs[0].last_error
        _, text = get(run.srv.metrics_url + "/metrics")
        assert metric(text, "psenet_stream_output_errors_total", "s1") >= 1
        later.mkdir()
        wait_for(lambda: w.outputs[0].sink is not None and w.outputs[0].frames > 10, 30, "the retried output")
    finally:
        run.stop()
    assert len(decode_all(later / "rec.mp4")) > 10
    assert len(decode_all(good)) == w.frames_out  # the other output never missed a frame


@pytest.mark.rtsp
def test_a_dropping_camera_reconnects_while_the_other_stream_keeps_its_rate_and_publishes(enhancer, tmp_path):
    why = gst_rtsp_available()
    if why:
        pytest.skip(why)
    clip = make_h264_clip(tmp_path / "cam.mp4", seconds=40, size=(320, 240), fps=25)
    port, rec_port = free_port(), free_port()
    rec = tmp_path / "published.mkv"
    cam = start_rtsp_server(port, play=clip, log=tmp_path / "cam.log")
    receiver = start_rtsp_server(rec_port, record=rec, log=tmp_path / "rec.log")
    cfg = config.load({
        "serve": {"metrics_port": 0, "status_interval": 0},
        "stream": [
            {"name": "cam", "input": f"rtsp://viewer:S3cretPw@127.0.0.1:{port}/in", "read_timeout": 2.0},
            {"name": "lav", "input": LAVFI.format(w=160, h=90), "outputs": [f"rtsp://127.0.0.1:{rec_port}/out"]},
        ],
    })
    run = Running(Server(cfg, enhancer=enhancer, status=False))
    try:
        wait_for(lambda: len(run.srv.workers) == 2 and all(w.frames_out > 20 for w in run.srv.workers.values()), 60, "both streams")
        camw, lav = run.srv.workers["cam"], run.srv.workers["lav"]
        cam.stop(signal.SIGKILL)
        wait_for(lambda: camw.state == "reconnecting", 20, "the camera to be lost")
        n0, t0 = lav.frames_out, time.monotonic()
        time.sleep(3.0)
        rate = (lav.frames_out - n0) / (time.monotonic() - t0)
        assert rate > 12, f"the other stream slowed to {rate:.1f} fps while the camera was down"
        code, body = get(run.srv.metrics_url + "/healthz")
        assert code == 200 and json.loads(body) == {"status": "degraded", "streams": {"cam": "reconnecting", "lav": "running"}}
        cam = start_rtsp_server(port, play=clip, log=tmp_path / "cam2.log")
        wait_for(lambda: camw.reconnects >= 1, 60, "the camera to reconnect")
        n1 = camw.frames_out
        wait_for(lambda: camw.frames_out > n1 + 10, 30, "frames after the reconnect")
        _, text = get(run.srv.metrics_url + "/metrics")
        assert metric(text, "psenet_stream_reconnects_total", "cam") >= 1
        assert "S3cretPw" not in text and "S3cretPw" not in json.dumps(run.srv.status())
    finally:
        run.stop()
        cam.stop()
        receiver.stop()  # SIGTERM: the recording's buffered data reaches the file
    assert len(decode_all(rec)) > 50  # the other stream was published over RTSP all along



def test_a_file_input_plays_at_its_own_pace_to_a_file_and_an_http_preview(enhancer, tmp_path):
    from tests.live_helpers import make_h264_clip

    clip = make_h264_clip(tmp_path / "in.mp4", seconds=2.0, size=(160, 120), fps=25)
    out = tmp_path / "out.mp4"
    cfg = config.load({"serve": {"metrics_port": -1, "status_interval": 0}, "stream": [{"name": "f", "input": str(clip), "outputs": ["preview:http", str(out)]}]})
    t0 = time.monotonic()
    run = Running(Server(cfg, enhancer=enhancer, status=False))
    try:
        w = wait_for(lambda: run.srv.workers.get("f"), 60, "the stream")
        wait_for(lambda: w.outputs[0].sink is not None, 30, "the preview")
        code, page = get(w.outputs[0].sink.url)
        assert code == 200 and "<html" in page.lower()
        wait_for(lambda: w.state == "ended", 60, "the end of the file")
        took = time.monotonic() - t0
    finally:
        final = run.stop()
    assert took >= 1.8  # 50 frames at 25 fps: played in real time, not as fast as it decodes
    assert final["f"]["frames_in"] == 50
    assert len(decode_all(out)) == final["f"]["frames_out"] == 50 - final["f"]["dropped"]


def test_metrics_answer_only_to_loopback_host_names():
    """DNS rebinding: a page served from evil.example that re-resolves to 127.0.0.1 sends its
    own name as Host; the metrics port answers 403 then, and to localhost / 127.0.0.1 as usual."""
    import http.client

    from psenet_stream.serve.metrics import MetricsServer, ServeMetrics

    metrics = ServeMetrics()
    metrics.add("front-door")
    srv = MetricsServer(metrics, lambda: (True, {"ok": True}), 0)
    try:

        def fetch(path: str, host: str) -> tuple[int, bytes]:
            c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
            c.putrequest("GET", path, skip_host=True)
            c.putheader("Host", host)
            c.endheaders()
            r = c.getresponse()
            body = r.read()
            c.close()
            return r.status, body

        for host in (f"127.0.0.1:{srv.port}", f"localhost:{srv.port}", "LOCALHOST"):
            code, body = fetch("/metrics", host)
            assert code == 200 and b'stream="front-door"' in body, (host, code)
        for host in (f"evil.example:{srv.port}", "evil.example", "127.0.0.1.evil.example", ""):
            for path in ("/metrics", "/healthz"):
                code, body = fetch(path, host)
                assert code == 403 and b"front-door" not in body, (host, path, code)
    finally:
        srv.close()


def test_reload_while_the_server_starts_serves_the_new_streams_once(enhancer):
    """A SIGHUP that lands while run() is still starting (the backend warming up, no stream
    started yet), as when Ray restarts a fleet actor and the driver hands it its current
    share at once: the streams that start are the new config's, each exactly once."""

    class SlowStart(Server):
        def _warm_up(self):
            in_warm_up.set()
            reloaded.wait(30)
            super()._warm_up()

    in_warm_up, reloaded = threading.Event(), threading.Event()
    first = config.from_dict({"serve": {"metrics_port": -1, "status_interval": 0}, "stream": [{"name": "cam-b", "input": LAVFI.format(w=160, h=90)}]})
    new = config.from_dict({"serve": {"metrics_port": -1, "status_interval": 0}, "stream": [{"name": "cam-c", "input": LAVFI.format(w=160, h=90)}]})
    before = set(threading.enumerate())
    run = Running(SlowStart(first, enhancer=enhancer, status=False))
    try:
        assert in_warm_up.wait(30)
        assert run.srv.reload(new) == (["cam-c"], ["cam-b"], [])
        reloaded.set()
        wait_for(lambda: run.srv.status().get("cam-c", {}).get("frames_out", 0) > 5, 60, "frames on cam-c")
        assert set(run.srv.status()) == {"cam-c"} and set(run.srv.workers) == {"cam-c"}
    finally:
        reloaded.set()
        final = run.stop()
    assert set(final) == {"cam-c"}
    time.sleep(1.0)
    left = [t.name for t in set(threading.enumerate()) - before if t.is_alive()]
    assert not left, left  # no second, orphaned worker for cam-c
