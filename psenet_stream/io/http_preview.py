"""The browser preview: MJPEG over HTTP with the standard library.

    GET /              an HTML page showing the stream, with fps / latency text
    GET /stream.mjpg   multipart/x-mixed-replace MJPEG (any browser, VLC, ffplay)
    GET /snapshot.jpg  the latest frame as one JPEG
    GET /stats.json    frames, fps, latency of the latest frame

Binds 127.0.0.1 unless told otherwise (``bind="0.0.0.0"`` or ``"::"`` exposes it on the
network; IPv6 addresses such as ``::1`` work); ``port=0`` picks a free port. The URL is
printed on stderr.

Who may look (the camera is private):

- the Host header must name the server as bound: on loopback only ``localhost``,
  ``127.0.0.1`` or ``[::1]`` are answered, so a web page whose DNS name rebinds to
  127.0.0.1 cannot read the stream (403);
- a token (``token=``, or one generated and printed once) is required by every path, as
  ``?token=`` or ``Authorization: Bearer``, whenever the server binds beyond loopback
  (401 without it); on loopback it is required only when given;
- at most ``max_clients`` streams at once (503 beyond), and a client that does not read
  for ``send_timeout`` seconds, or does not send its request within that time, is dropped. Only the *latest* frame is
kept: each client is sent the newest frame whenever it is ready for one, so a slow client
skips frames and never slows the pipeline or other clients. JPEG encoding happens in the
client threads, once per frame however many clients watch, and not at all when nobody does.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import logging
import secrets
import socket
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
<body><img src="/stream.mjpg{q}" alt="live preview"><div id="s">{title}: original | enhanced</div>
<script>
setInterval(async()=>{{try{{const r=await fetch('/stats.json{q}');const j=await r.json();
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

    def setup(self):
        super().setup()
        self.connection.settimeout(self.server.send_timeout)  # type: ignore[attr-defined]  # slow clients are dropped

    def _allowed(self, query: str) -> bool:
        """The Host check (DNS rebinding) and the token; answers 403 / 401 itself when not."""
        srv = self.server
        host = (self.headers.get("Host") or "").strip().lower()
        if not srv.host_ok(host):  # type: ignore[attr-defined]
            self._send(HTTPStatus.FORBIDDEN, "text/plain", b"forbidden: unexpected Host header\n")
            return False
        token = srv.token  # type: ignore[attr-defined]
        if token:
            from urllib.parse import parse_qs

            given = (parse_qs(query).get("token") or [""])[0]
            auth = self.headers.get("Authorization") or ""
            if auth.lower().startswith("bearer "):
                given = given or auth[7:].strip()
            if not hmac.compare_digest(given.encode(), token.encode()):
                self._send(HTTPStatus.UNAUTHORIZED, "text/plain", b"unauthorized: add ?token=<the token printed when the preview started>\n")
                return False
        return True

    def do_GET(self):
        path, _, query = self.path.partition("?")
        if not self._allowed(query):
            return
        if path in ("/", "/index.html"):
            q = f"?token={self.server.token}" if self.server.token else ""  # type: ignore[attr-defined]
            body = INDEX_HTML.format(title=self.server.title, q=q).encode()  # type: ignore[attr-defined]
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
            if not self.server.enter_stream():  # type: ignore[attr-defined]
                self._send(HTTPStatus.SERVICE_UNAVAILABLE, "text/plain", b"too many viewers; try again later\n")
                return
            try:
                self._stream()
            finally:
                self.server.leave_stream()  # type: ignore[attr-defined]
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
    token: str | None = None
    send_timeout = 5.0
    max_clients = 8
    allowed_hosts: frozenset[str] = frozenset()

    def server_bind(self):
        if self.address_family == socket.AF_INET6:
            with contextlib.suppress(OSError):  # "::" serves IPv4 too where the system allows it
                self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()

    def setup_limits(self, max_clients: int) -> None:
        self.max_clients = max_clients
        self._streams = threading.BoundedSemaphore(max_clients)
        # requests that are not streams are short; the connection count is bounded too
        self._conns = threading.BoundedSemaphore(max_clients * 4)

    def enter_stream(self) -> bool:
        return self._streams.acquire(blocking=False)

    def leave_stream(self) -> None:
        self._streams.release()

    def process_request(self, request, client_address):
        if not self._conns.acquire(blocking=False):  # too many connections: drop the newest
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._conns.release()

    def host_ok(self, host: str) -> bool:
        """An empty set allows any Host (a token protects a server beyond loopback)."""
        return not self.allowed_hosts or host_allowed(host, self.allowed_hosts)


def host_allowed(host: str, allowed: frozenset[str]) -> bool:
    """Whether a Host header (``name``, ``name:port``, ``[v6]:port``; any case) names one of
    ``allowed``: the DNS-rebinding check of the preview and of serve's metrics port."""
    host = host.strip().lower()
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return name.strip("[]") in allowed


def is_loopback(bind: str) -> bool:
    """Whether ``bind`` (an address or a name) serves only this machine."""
    b = (bind or "127.0.0.1").strip("[]")
    if b == "localhost":
        return True
    try:
        return ipaddress.ip_address(b).is_loopback
    except ValueError:
        return False


def _family(bind: str) -> socket.AddressFamily:
    try:
        return socket.AF_INET6 if ipaddress.ip_address(bind.strip("[]")).version == 6 else socket.AF_INET
    except ValueError:
        return socket.AF_INET


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
        token: str | None = None,
        max_clients: int = 8,
        send_timeout: float = 5.0,
        **_ignored: Any,
    ):
        if mode not in MODES:
            raise OutputError(f"Invalid preview mode ({mode!r}). Supported values are {', '.join(MODES)}.", "")
        self.mode = mode
        self.max_size = tuple(int(v) for v in max_size)
        self.latest = _Latest(int(quality), mode, self.max_size)
        self._rate = RateMeter()
        bind = (bind or "127.0.0.1").strip("[]")
        loopback = is_loopback(bind)
        generated = not token and not loopback
        self.token = token or (secrets.token_urlsafe(16) if generated else None)
        server_cls = type("_Server", (_Server,), {"address_family": _family(bind)})
        try:
            self.server = server_cls((bind, int(port or 0)), _Handler)
        except (OSError, OverflowError) as e:
            why = getattr(e, "strerror", None) or e
            raise OutputError(f"cannot serve the preview on {bind}:{port}: {why}", "choose another --port, or --port 0 for a free one, and an address of this machine for --bind") from None
        self.server.latest = self.latest  # type: ignore[attr-defined]
        self.server.title = title  # type: ignore[attr-defined]
        self.server.timeout = 0.5
        self.server.token = self.token
        self.server.send_timeout = float(send_timeout)
        self.server.setup_limits(int(max_clients))
        if loopback:  # DNS rebinding: a loopback server answers only loopback names
            self.server.allowed_hosts = frozenset({"localhost", "127.0.0.1", "::1", bind})
        host, self.port = self.server.server_address[:2]
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else ("localhost" if host == "::" else host)
        self.url = f"http://{f'[{shown}]' if ':' in shown else shown}:{self.port}/"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.25}, name="psenet-http-preview", daemon=True)
        self._thread.start()
        self._closed = False
        if announce:
            note = " (listening on all interfaces)" if host in ("0.0.0.0", "::") else ""
            if generated:  # printed once, here: the only place it is ever shown
                print(f"preview: {self.url}?token={self.token}{note} (the token is required from other machines)", file=sys.stderr, flush=True)
            else:
                print(f"preview: {self.url}{' (token required)' if self.token else ''}{note}", file=sys.stderr, flush=True)

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
