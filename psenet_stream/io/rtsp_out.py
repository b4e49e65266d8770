"""Publish enhanced frames as H.264 over RTSP (or RTMP/SRT/UDP) from a separate process.

Why a process: in PyAV 18 a network *output* holds the GIL inside ``avio_open`` /
``avformat_write_header`` / ``av_write_frame`` and ignores ``timeout``, so an unreachable or
silent server freezes every thread of the process that opened it.
:class:`RtspSink` therefore runs the encoder and muxer in a child process
(``python -m psenet_stream.io.rtsp_out``) and talks to it through pipes:

    write() ──► drop-oldest queue ──► sender thread ──► child stdin ──► drop-oldest deque ──► x264 ──► rtsp://
                                                          child stdout ──► status thread (connected / lost / errors)

- ``write()`` never blocks: if the child (or the network) falls behind, the oldest frames
  are dropped and counted (``sink.dropped``).
- The URL (with its credentials) goes to the child on stdin, never on its command line, and
  every status line and log message is masked (``rtsp://user:***@host``).
- If the first connection does not succeed within ``open_timeout`` seconds, ``write()``
  raises :class:`~psenet_stream.errors.OutputError` and ``close()`` kills the child, so the
  command exits with a clear error instead of hanging.
- After a successful connection, a server restart or network drop is survived: the child
  reconnects with exponential backoff (0.5 s ... 30 s), re-sending the session header, and
  gives up after ``max_retries`` consecutive failures (None = forever).
- While the input is away (camera reconnecting) the last frame is re-sent once a second,
  so readers of the published stream are not dropped.

Encoding: libx264, preset ultrafast, tune zerolatency, no B-frames, a keyframe every
second (g = keyint_min = fps, scene-cut off) so a new reader starts within a second;
timestamps are wall-clock (time base 1/90000).
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import math
import signal
import struct
import subprocess
import sys
import threading
import time
from fractions import Fraction
from typing import Any

import numpy as np

from psenet_stream.buffers import DropOldestQueue, QueueTimeout
from psenet_stream.errors import OutputError
from psenet_stream.io.frames import Frame, StreamInfo
from psenet_stream.io.redact import Redactor

log = logging.getLogger("psenet_stream.rtsp_out")

_MAGIC = b"PSF1"
_HEADER = struct.Struct("<4sIId")  # magic, width, height, capture time (s, sender clock)
OUTPUT_FORMATS = {"rtsp": "rtsp", "rtsps": "rtsp", "rtmp": "flv", "rtmps": "flv", "srt": "mpegts", "udp": "mpegts", "tcp": "mpegts"}


def output_format(url: str) -> str:
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in OUTPUT_FORMATS:
        raise OutputError(f"cannot publish to {Redactor(url)}", "use an rtsp://, rtmp://, srt://, udp:// or tcp:// URL, or a file name")
    return OUTPUT_FORMATS[scheme]


class RtspSink:
    """A Sink publishing H.264 to a network URL through a child process (see module docs).

    ``write`` takes (H, W, 3) uint8 RGB in [0, 255]; a new size starts a new session. It
    never blocks on the network: frames the child cannot send in time are dropped (counted)."""

    def __init__(
        self,
        url: str,
        info: StreamInfo | None = None,
        *,
        fps: float | None = None,
        codec: str = "libx264",
        preset: str = "ultrafast",
        crf: int | None = None,
        bitrate: str | None = None,
        transport: str = "tcp",
        open_timeout: float = 10.0,
        reconnect: bool = True,
        max_retries: int | None = None,
        queue_size: int = 2,
        keepalive: float = 1.0,
        **_ignored: Any,
    ):
        self.url = str(url)
        self._redact = Redactor(self.url)
        self.safe_url = self._redact.safe
        fmt = output_format(self.url)
        rate = fps or (float(info.fps) if info is not None and info.fps else 30.0)
        rate = max(1, round(rate))
        self.config = {
            "url": self.url,
            "format": fmt,
            "fps": rate,
            "codec": codec or "libx264",
            "preset": preset or "ultrafast",
            "crf": crf,
            "bitrate": bitrate,
            "transport": transport,
            "reconnect": bool(reconnect),
            "max_retries": max_retries,
            "queue_size": int(queue_size),
            "keepalive": float(keepalive),
            "open_timeout": float(open_timeout),
        }
        self.open_timeout = float(open_timeout)
        self.connected = False
        self.ever_connected = False
        self.sessions = 0
        self.frames_written = 0  # frames handed to the child
        self.reconnects = 0
        self.last_error: str | None = None
        self._fatal: str | None = None
        self._stderr_tail: collections.deque = collections.deque(maxlen=20)
        self._closed = False
        self._child_stats: dict = {}
        from psenet_stream.io.live import DropOldestQueue

        self._queue = DropOldestQueue(max(1, int(queue_size)))
        self._t_start = time.monotonic()
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "psenet_stream.io.rtsp_out"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                close_fds=True,
            )
        except OSError as e:
            raise OutputError(f"cannot start the publisher process: {e}", "check the Python installation") from None
        self._proc.stdin.write((json.dumps(self.config) + "\n").encode())
        self._proc.stdin.flush()
        self._threads = [
            threading.Thread(target=self._sender, name="psenet-rtsp-send", daemon=True),
            threading.Thread(target=self._status, name="psenet-rtsp-status", daemon=True),
            threading.Thread(target=self._stderr, name="psenet-rtsp-stderr", daemon=True),
        ]
        for t in self._threads:
            t.start()
        log.info("publishing to %s (H.264 %s, %d fps, via a publisher process)", self.safe_url, self.config["preset"], rate)

    # --- Sink ---------------------------------------------------------------------------------
    @property
    def dropped(self) -> int:
        return self._queue.dropped + int(self._child_stats.get("dropped", 0))

    def write(self, frame: Frame, enhanced: np.ndarray) -> None:
        if self._closed:
            raise OutputError(f"write to closed output {self.safe_url}", "this is a bug in psenet-stream")
        self._check()
        rgb = np.ascontiguousarray(enhanced, dtype=np.uint8)
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise OutputError(f"expected H x W x 3 frames, got {rgb.shape}", "this is a bug in psenet-stream")
        h, w = rgb.shape[:2]
        if w % 2 or h % 2:  # yuv420p needs even sizes
            rgb = np.ascontiguousarray(rgb[: h - h % 2, : w - w % 2])
        self._queue.put((rgb, frame.t_capture))
        self.frames_written += 1

    def _check(self) -> None:
        if self._fatal is not None:
            raise OutputError(self._fatal, self._hint())
        if not self.ever_connected and time.monotonic() - self._t_start > self.open_timeout:
            why = self.last_error or f"no answer within {self.open_timeout:g} s"
            self._fatal = f"cannot publish to {self.safe_url}: {why}"
            self._kill()
            raise OutputError(self._fatal, self._hint())
        if self._proc.poll() is not None and not self._closed:
            if self._proc.returncode == -signal.SIGALRM:
                why = f"the server accepted the connection but did not answer within {self.open_timeout + 5:g} s"
            else:
                why = f"the publisher process stopped (exit code {self._proc.returncode}){self._tail()}"
            self._fatal = self._fatal or f"cannot publish to {self.safe_url}: {why}"
            raise OutputError(self._fatal, self._hint())

    def _hint(self) -> str:
        return "check that the RTSP server is running and accepts publishing (RECORD) at that path; or write a file with -o out.mp4"

    def _tail(self) -> str:
        lines = [ln for ln in self._stderr_tail if ln.strip()]
        return f": {lines[-1]}" if lines else ""

    def close(self) -> None:
        """Finish the stream (flush the encoder) and stop the child; bounded in time. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)  # end marker for the sender
        deadline = time.monotonic() + (5.0 if self.connected else 1.0)
        self._threads[0].join(timeout=max(0.1, deadline - time.monotonic()))
        try:
            self._proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self._kill()
        for t in self._threads[1:]:
            t.join(timeout=2.0)
        for f in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
            with contextlib.suppress(Exception):
                f.close()
        if self._child_stats:
            log.info(
                "published %d frames to %s (%d sessions, %d dropped)",
                self._child_stats.get("frames", 0),
                self.safe_url,
                self._child_stats.get("sessions", 0),
                self.dropped,
            )

    @property
    def delivered(self) -> int | None:
        """Frames that reached the server, once closed: the child's own count; 0 when it never
        connected; None when unknown (connected, but the child left no count)."""
        if self._child_stats:
            return int(self._child_stats.get("frames", 0))
        return None if self.ever_connected else 0

    def _kill(self) -> None:
        p = self._proc
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                p.kill()
                try:
                    p.wait(timeout=2.0)
                except subprocess.TimeoutExpired:
                    pass

    def __enter__(self) -> RtspSink:  # noqa: PYI034
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- threads ------------------------------------------------------------------------------
    def _sender(self) -> None:
        out = self._proc.stdin
        try:
            while True:
                try:
                    item = self._queue.get(timeout=0.5)
                except TimeoutError:
                    if self._proc.poll() is not None:
                        return
                    continue
                if item is None:
                    out.write(_HEADER.pack(_MAGIC, 0, 0, 0.0))
                    out.flush()
                    return
                rgb, t = item
                h, w = rgb.shape[:2]
                out.write(_HEADER.pack(_MAGIC, w, h, t))
                out.write(memoryview(rgb).cast("B"))
                out.flush()
        except (BrokenPipeError, OSError, ValueError):
            return

    def _status(self) -> None:
        for raw in self._proc.stdout:
            try:
                ev = json.loads(raw.decode("utf-8", "replace"))
            except ValueError:
                continue
            kind = ev.get("event")
            msg = self._redact(ev.get("message", ""))
            if kind == "connected":
                self.connected = True
                self.sessions += 1
                if self.ever_connected:
                    self.reconnects += 1
                    log.warning("output %s: reconnected", self.safe_url)
                else:
                    log.info("output %s: connected", self.safe_url)
                self.ever_connected = True
            elif kind == "lost":
                self.connected = False
                self.last_error = msg
                log.warning("output %s: %s; reconnecting in %.1f s", self.safe_url, msg, ev.get("delay", 0.0))
            elif kind == "retry":
                self.last_error = msg
                log.info("output %s: %s; retrying in %.1f s", self.safe_url, msg, ev.get("delay", 0.0))
            elif kind == "fatal":
                self.connected = False
                self.last_error = msg
                self._fatal = f"cannot publish to {self.safe_url}: {msg}"
                log.error("output %s: %s", self.safe_url, msg)
            elif kind == "done":
                self._child_stats = ev

    def _stderr(self) -> None:
        for raw in self._proc.stderr:
            line = self._redact(raw.decode("utf-8", "replace").rstrip())
            self._stderr_tail.append(line)
            log.debug("publisher: %s", line)


# --- the child process ----------------------------------------------------------------------------


def _emit(event: str, **kw) -> None:
    sys.stdout.write(json.dumps({"event": event, **kw}) + "\n")
    sys.stdout.flush()


def _read_exact(f, n: int) -> bytes | None:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = f.readinto(view[got:])
        if not k:
            return None
        got += k
    return bytes(buf) if n < 64 else buf


def _read_frames(f, inbox: DropOldestQueue) -> None:
    """The child's stdin reader thread: frames from the parent into ``inbox`` (drop-oldest)."""
    try:
        while True:
            head = _read_exact(f, _HEADER.size)
            if head is None:
                break
            magic, w, h, _t = _HEADER.unpack(head)
            if magic != _MAGIC:
                _emit("fatal", message="corrupt frame stream from the parent process")
                break
            if w == 0:
                break
            data = _read_exact(f, w * h * 3)
            if data is None:
                break
            inbox.put(np.frombuffer(data, dtype=np.uint8).reshape(h, w, 3))
    finally:
        inbox.end()


class _Publisher:
    def __init__(self, cfg: dict):
        self.cfg = cfg
        self.container = None
        self.stream = None
        self.size: tuple[int, int] | None = None
        self.t0: float | None = None
        self.last_pts = -1
        self.frames = 0
        self.sessions = 0

    def open(self, w: int, h: int) -> None:
        import av

        cfg = self.cfg
        opts = {}
        if cfg["format"] == "rtsp":
            opts["rtsp_transport"] = cfg["transport"]
        c = av.open(cfg["url"], mode="w", format=cfg["format"], options=opts)
        try:
            fps = int(cfg["fps"])
            xopts = {"preset": cfg["preset"], "tune": "zerolatency", "bf": "0", "g": str(fps), "keyint_min": str(fps), "sc_threshold": "0"}
            if cfg.get("crf") is not None:
                xopts["crf"] = str(cfg["crf"])
            if cfg["codec"] != "libx264":
                xopts = {"g": str(fps), "bf": "0"}
            s = c.add_stream(cfg["codec"], rate=fps, options=xopts)
            s.width, s.height, s.pix_fmt = w, h, "yuv420p"
            s.codec_context.time_base = Fraction(1, 90000)
            s.time_base = Fraction(1, 90000)
            if cfg.get("bitrate"):
                s.codec_context.bit_rate = _parse_bitrate(cfg["bitrate"])
        except BaseException:
            with contextlib.suppress(Exception):
                c.close()
            raise
        self.container, self.stream, self.size = c, s, (w, h)

    def send(self, rgb: np.ndarray) -> None:
        import av

        now = time.monotonic()
        if self.t0 is None:
            self.t0 = now
        pts = max(int((now - self.t0) * 90000), self.last_pts + 1)
        self.last_pts = pts
        vf = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        vf.pts, vf.time_base = pts, Fraction(1, 90000)
        for pkt in self.stream.encode(vf):
            self.container.mux(pkt)
        self.frames += 1

    def close(self, flush: bool) -> None:
        c, s = self.container, self.stream
        self.container = self.stream = None
        self.t0, self.last_pts = None, -1
        if c is None:
            return
        if flush:
            with contextlib.suppress(Exception):
                for pkt in s.encode(None):
                    c.mux(pkt)
        with contextlib.suppress(Exception):
            c.close()


def _parse_bitrate(v) -> int:
    s = str(v).strip().lower()
    mult = {"k": 1_000, "m": 1_000_000}.get(s[-1:], 1)
    return int(float(s.rstrip("km")) * mult)


def _reason(e: BaseException) -> str:
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    msg = getattr(e, "strerror", None) or str(e) or type(e).__name__
    return msg


def child_main() -> int:
    """The publisher process: config JSON line, then frames, on stdin; events on stdout.

    A connect that hangs inside FFmpeg holds the GIL, so no Python timer could fire: the
    guard is SIGALRM with its default action (terminate), armed around each connect. It
    also bounds the life of a publisher whose parent died mid-connect; otherwise the
    child ends when its stdin closes.
    """
    import av  # noqa: F401

    cfg = json.loads(sys.stdin.buffer.readline().decode())
    connect_guard = max(1, math.ceil(float(cfg.get("open_timeout", 10.0)) + 5))
    red = Redactor(cfg["url"])
    inbox = DropOldestQueue(max(1, int(cfg.get("queue_size", 2))))
    threading.Thread(target=_read_frames, args=(sys.stdin.buffer, inbox), daemon=True).start()
    pub = _Publisher(cfg)
    keepalive = float(cfg.get("keepalive", 1.0))
    max_retries = cfg.get("max_retries")
    delay, attempt, failures = 0.5, 0, 0
    last: np.ndarray | None = None
    pending: np.ndarray | None = None
    rc = 0
    while True:
        try:
            rgb = pending if pending is not None else inbox.get(timeout=keepalive)
        except QueueTimeout:
            rgb = None
        except EOFError:
            break
        pending = None
        if rgb is None:
            if last is None or pub.container is None:
                continue
            rgb = last  # keep the session alive while the input is away
        h, w = rgb.shape[:2]
        try:
            if pub.container is not None and pub.size != (w, h):
                pub.close(flush=True)  # new size: a new session with a new SDP
            if pub.container is None:
                signal.alarm(connect_guard)
                try:
                    pub.open(w, h)
                    pub.send(rgb)  # the header goes out with the first packet: this connects
                finally:
                    signal.alarm(0)
                pub.sessions += 1
                _emit("connected")
                delay, attempt, failures = 0.5, 0, 0
            else:
                pub.send(rgb)
            last = rgb
        except Exception as e:  # noqa: BLE001 - any failure to connect or send (FFmpeg, OS, a dead server) means reconnect
            was_connected = pub.frames > 0 and pub.container is not None and pub.sessions > 0
            pub.close(flush=False)
            failures += 1
            reason = red(_reason(e))
            if not cfg.get("reconnect", True) or (max_retries is not None and failures > int(max_retries)):
                _emit("fatal", message=f"{reason} (gave up after {failures} attempts)" if failures > 1 else reason)
                rc = 1
                break
            wait = min(30.0, delay * 2**attempt)
            attempt += 1
            _emit("lost" if was_connected else "retry", message=reason, delay=wait)
            pending = rgb
            t_end = time.monotonic() + wait
            while time.monotonic() < t_end:  # keep draining so the newest frame goes out next
                newest = inbox.take_newest(timeout=max(0.0, min(0.2, t_end - time.monotonic())))
                if newest is not None:
                    pending = newest
                if inbox.ended:
                    break
            if inbox.ended and not len(inbox):
                break
    pub.close(flush=True)
    _emit("done", frames=pub.frames, sessions=pub.sessions, dropped=inbox.dropped)
    return rc


if __name__ == "__main__":
    try:
        sys.exit(child_main())
    except KeyboardInterrupt:
        sys.exit(130)
