"""Prometheus metrics and ``/healthz`` of a serve process, on 127.0.0.1 only.

    GET /metrics   the Prometheus text format (prometheus_client), one registry per Server:
                   psenet_stream_frames_total{stream}            frames enhanced and written
                   psenet_stream_dropped_frames_total{stream}    frames dropped to bound latency
                   psenet_stream_reconnects_total{stream}        input reconnects
                   psenet_stream_output_errors_total{stream}     output failures (each retried)
                   psenet_stream_fps{stream}                     frames written per second (last second)
                   psenet_stream_latency_seconds{stream}         capture -> written (histogram)
                   psenet_stream_state{stream,psenet_stream_state}  1 for the current state
                   psenet_batch_frames                          frames per backend call (histogram)
                   psenet_backend_seconds                       backend time per call (histogram)
                   psenet_streams                               streams configured
    GET /healthz   200 and JSON {"status": "ok"|"degraded", "streams": {name: state}} while
                   the batcher runs ("degraded": some stream is not running); 503 while
                   draining or stopped.

prometheus_client is the ``[serve]`` extra (``make install`` includes it).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from psenet_stream.errors import OutputError, UsageError

log = logging.getLogger("psenet_stream.serve")

STATES = ("starting", "running", "reconnecting", "ended", "failed", "stopping", "stopped")
LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1, 0.125, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0)
BATCH_BUCKETS = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 24, 32, 48, 64)
BACKEND_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0)


def _prometheus():
    try:
        import prometheus_client
    except ImportError:
        raise UsageError(
            "psenet-stream serve needs prometheus_client for its metrics",
            'install the serve extra: pip install "psenet-stream[serve]" (make install includes it)',
        ) from None
    return prometheus_client


class ServeMetrics:
    """The metrics of one server (its own registry, so several servers can live in one process)."""

    def __init__(self):
        pc = _prometheus()
        self.registry = r = pc.CollectorRegistry()
        s = ["stream"]
        self.frames = pc.Counter("psenet_stream_frames", "Frames enhanced and written", s, registry=r)
        self.dropped = pc.Counter("psenet_stream_dropped_frames", "Frames dropped to keep latency bounded", s, registry=r)
        self.reconnects = pc.Counter("psenet_stream_reconnects", "Input reconnects", s, registry=r)
        self.output_errors = pc.Counter("psenet_stream_output_errors", "Output failures (each output is retried)", s, registry=r)
        self.fps = pc.Gauge("psenet_stream_fps", "Frames written per second over the last second", s, registry=r)
        self.latency = pc.Histogram("psenet_stream_latency_seconds", "Capture to written, per frame", s, buckets=LATENCY_BUCKETS, registry=r)
        self.state = pc.Enum("psenet_stream_state", "Stream state", s, states=list(STATES), registry=r)
        self.batch = pc.Histogram("psenet_batch_frames", "Frames per backend call", buckets=BATCH_BUCKETS, registry=r)
        self.backend = pc.Histogram("psenet_backend_seconds", "Backend time per call", buckets=BACKEND_BUCKETS, registry=r)
        self.streams = pc.Gauge("psenet_streams", "Streams configured", registry=r)
        self._per_stream = (self.frames, self.dropped, self.reconnects, self.output_errors, self.fps, self.latency, self.state)
        self._generate = pc.generate_latest
        self.content_type = pc.CONTENT_TYPE_LATEST

    def add(self, name: str) -> None:
        """Create the stream's series at zero, so they show before its first frame."""
        for m in self._per_stream:
            if m is self.state:
                m.labels(name).state("starting")
            elif m is self.fps:
                m.labels(name).set(0)
            else:
                m.labels(name)

    def remove(self, name: str) -> None:
        for m in self._per_stream:
            try:
                m.remove(name)
            except KeyError:
                pass

    def render(self) -> bytes:
        return self._generate(self.registry)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        from psenet_stream.io.http_preview import host_allowed

        if not host_allowed(self.headers.get("Host") or "", _LOOPBACK_NAMES):
            # DNS rebinding: a web page that resolves its own name to 127.0.0.1 must not read
            # the stream names and states (only the names the loopback server goes by pass)
            body, ctype, code = b"forbidden: unexpected Host header\n", "text/plain", 403
        elif path == "/metrics":
            body, ctype, code = self.server.metrics.render(), self.server.metrics.content_type, 200
        elif path == "/healthz":
            ok, doc = self.server.health()
            body, ctype, code = json.dumps(doc).encode(), "application/json", 200 if ok else 503
        else:
            body, ctype, code = b"not found: try /metrics or /healthz\n", "text/plain", 404
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args) -> None:  # no access log on stderr
        pass


_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1"})  # the names this 127.0.0.1 server goes by


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    metrics: ServeMetrics
    health: Callable[[], tuple[bool, dict]]


class MetricsServer:
    """Serves ``metrics`` and ``health()`` on 127.0.0.1:port (0: a free port) in a thread."""

    def __init__(self, metrics: ServeMetrics, health: Callable[[], tuple[bool, dict]], port: int):
        try:
            self.httpd = _Server(("127.0.0.1", int(port)), _Handler)
        except OSError as e:
            raise OutputError(f"cannot serve metrics on 127.0.0.1:{port}: {e.strerror or e}", "choose another metrics_port ([serve] in the TOML, or --metrics-port; 0 for a free one)") from None
        self.httpd.metrics = metrics
        self.httpd.health = health
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.25}, name="psenet-serve-metrics", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=2.0)
