"""The browser preview: MJPEG over HTTP with the standard library.

    GET /              an HTML page showing the stream, with fps / latency text
    GET /stream.mjpg   multipart/x-mixed-replace MJPEG (any browser, VLC, ffplay)
    GET /snapshot.jpg  the latest frame as one JPEG
    GET /stats.json    frames, fps, latency of the latest frame

Binds 127.0.0.1 unless told otherwise (``bind="0.0.0.0"`` exposes it on the network);
``port=0`` picks a free port. The URL is printed on stderr. Only the *latest* frame is
kept: each client is sent the newest frame whenever it is ready for one, so a slow client
skips frames and never slows the pipeline or other clients. JPEG encoding happens in the
client threads, once per frame however many clients watch, and not at all when nobody does.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

from psenet_stream.errors import OutputError
from psenet_stream.io.frames import Frame, StreamInfo
from psenet_stream.io.preview import MODES, RateMeter, compose

log = logging.getLogger("psenet_stream.preview")

BOUNDARY = "psenetframe"
INDEX_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>psenet-stream preview</title>
<style>body{{background:#111;color:#ddd;font:14px sans-serif;margin:0;text-align:center}}
img{{max-width:100vw;max-height:92vh;display:block;margin:0 auto}}#s{{padding:6px}}</style></head>
<body><img src="/stream.mjpg" alt="live preview"><div id="s">{title}: original | enhanced</div>
<script>
setInterval(async()=>{{try{{const r=await fetch('/stats.json');const j=await r.json();
document.getElementById('s').textContent=`{title}: original | enhanced - ${{j.fps.toFixed(1)}} fps, latency ${{j.latency_ms.toFixed(0)}} ms, ${{j.frames}} frames`;}}catch(e){{}}}},1000);
</script></body></html>
"""


class _Latest:
    """The newest composed frame, its sequence number, and a per-frame JPEG cache."""

    def __init__(self, quality: int, mode: str, max_size: tuple[int, int]):
        self.mode, self.max_size = mode, max_size
        self.cond = threading.Condition()
        self.seq = 0
        self.img: np.ndarray | None = None
        self.jpeg: bytes | None = None
        self.jpeg_seq = -1
        self.quality = quality
        self.closed = False
        self.fps = 0.0
        self.latency_ms = 0.0

    def publish(self, parts: tuple, fps: float, latency_ms: float) -> None:
        """parts: (original, enhanced, rotation); composed and encoded only when asked for."""
        with self.cond:
            self.img, self.fps, self.latency_ms = parts, fps, latency_ms
            self.seq += 1
            self.cond.notify_all()

    def wait_newer(self, seq: int, timeout: float) -> int:
        with self.cond:
            self.cond.wait_for(lambda: self.seq > seq or self.closed, timeout)
            return self.seq

    def encode(self) -> tuple[int, bytes | None]:
        import cv2

        with self.cond:
            seq, img = self.seq, self.img
            if self.jpeg_seq == seq:
                return seq, self.jpeg
        if img is None:
            return seq, None
        img = compose(img[0], img[1], self.mode, img[2], self.max_size)
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        data = buf.tobytes() if ok else None
        with self.cond:
            if seq >= self.jpeg_seq:
                self.jpeg, self.jpeg_seq = data, seq
        return seq, data


class _Handler(BaseHTTPRequestHandler):
    server_version = "psenet-stream"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: requests are logged at debug level only
        log.debug("http preview: " + fmt, *args)

    @property
    def latest(self) -> _Latest:
        return self.server.latest  # type: ignore[attr-defined]

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path in ("/", "/index.html"):
            body = INDEX_HTML.format(title=self.server.title).encode()  # type: ignore[attr-defined]
            self._send(HTTPStatus.OK, "text/html; charset=utf-8", body)
        elif path == "/snapshot.jpg":
            self.latest.wait_newer(0, timeout=5.0)
            _, data = self.latest.encode()
            if data is None:
                self._send(HTTPStatus.SERVICE_UNAVAILABLE, "text/plain", b"no frame yet\n")
            else:
                self._send(HTTPStatus.OK, "image/jpeg", data)
        elif path == "/stats.json":
            import json

            la = self.latest
            body = json.dumps({"frames": la.seq, "fps": la.fps, "latency_ms": la.latency_ms}).encode()
            self._send(HTTPStatus.OK, "application/json", body)
        elif path == "/stream.mjpg":
            self._stream()
        else:
            self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found: try / or /stream.mjpg\n")

    def _send(self, status, ctype: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _stream(self) -> None:
        self.close_connection = True
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        seen = 0
        la = self.latest
        try:
            while not la.closed:
                seq = la.wait_newer(seen, timeout=1.0)
                if la.closed:
                    break
                if seq <= seen:
                    continue
                seen, data = la.encode()
                if data is None:
                    continue
                self.wfile.write(
                    f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data + b"\r\n"
                )
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, TimeoutError, OSError):
            pass  # the client went away


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False


class HttpPreviewSink:
    """A Sink serving the preview over HTTP (see module docstring).

    ``write(frame, enhanced)``: ``frame.rgb`` and ``enhanced`` (H, W, 3) uint8 RGB; only the
    newest composed frame is kept and JPEG-encoded on demand, so a slow browser never slows
    the pipeline."""

    def __init__(
        self,
        info: StreamInfo | None = None,
        *,
        bind: str = "127.0.0.1",
        port: int = 8090,
        quality: int = 80,
        max_size: tuple[int, int] = (1920, 1080),
        mode: str = "side-by-side",
        title: str = "psenet-stream",
        announce: bool = True,
        **_ignored: Any,
    ):
        if mode not in MODES:
            raise OutputError(f"Invalid preview mode ({mode!r}). Supported values are {', '.join(MODES)}.", "")
        self.mode = mode
        self.max_size = tuple(int(v) for v in max_size)
        self.latest = _Latest(int(quality), mode, self.max_size)
        self._rate = RateMeter()
        try:
            self.server = _Server((bind or "127.0.0.1", int(port or 0)), _Handler)
        except OSError as e:
            raise OutputError(f"cannot serve the preview on {bind}:{port}: {e.strerror or e}", "choose another --port, or --port 0 for a free one") from None
        self.server.latest = self.latest  # type: ignore[attr-defined]
        self.server.title = title  # type: ignore[attr-defined]
        self.server.timeout = 0.5
        host, self.port = self.server.server_address[:2]
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else ("localhost" if host == "::" else host)
        self.url = f"http://{shown}:{self.port}/"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.25}, name="psenet-http-preview", daemon=True)
        self._thread.start()
        self._closed = False
        if announce:
            note = " (listening on all interfaces)" if host in ("0.0.0.0", "::") else ""
            print(f"preview: {self.url}{note}", file=sys.stderr, flush=True)

    def write(self, frame: Frame, enhanced: np.ndarray) -> None:
        if self._closed:
            return
        now = time.perf_counter()
        fps = self._rate.tick(now)
        self.latest.publish((frame.rgb, enhanced, frame.rotation), fps, (now - frame.t_capture) * 1000.0)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self.latest.cond:
            self.latest.closed = True
            self.latest.cond.notify_all()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=2.0)

    def __enter__(self) -> HttpPreviewSink:  # noqa: PYI034
        return self

    def __exit__(self, *exc) -> None:
        self.close()
