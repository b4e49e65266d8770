"""Live sources: webcams (v4l2), lavfi virtual cameras and network streams.

    >>> src = open_live_source("lavfi:testsrc2=size=1280x720:rate=30,realtime")
    >>> for frame in src:          # Frame objects, newest first-come; never more than
    ...     ...                    # queue_size frames old (older ones are dropped and counted)
    >>> src.close()

Specs (``psenet_stream.io.sources.open_source`` dispatches these here):

- ``/dev/videoN``: V4L2 capture; ``size="1280x720"``, ``fps=30``, ``input_format="mjpeg"``.
- ``lavfi:GRAPH``: an FFmpeg lavfi graph, e.g. ``lavfi:testsrc2=size=640x480:rate=30``; it is
  read at its own frame rate (``pace``, ffmpeg's ``-re``), so it behaves like a camera
  (a ``,realtime`` filter does the same inside the graph).
- ``rtsp://`` / ``rtsps://`` (TCP by default), ``rtmp://``, ``tcp://``, ``udp://``,
  ``srt://``, ``http(s)://`` (MJPEG/HLS/TS over HTTP).

How it behaves:

- A reader thread decodes into a bounded queue (``queue_size`` 1-2). When the consumer is
  slower than the camera the *oldest* frame is dropped (``source.dropped`` counts them), so
  latency never grows. ``Frame.t_capture`` is stamped (``time.perf_counter``) when the frame
  leaves the decoder, so ``perf_counter() - frame.t_capture`` is the latency since capture.
- Every read has a timeout (``av.open(..., timeout=(open, read))``): a camera that stops
  sending raises in the reader after ``read_timeout`` seconds instead of hanging.
- When the camera drops, refuses, or the stream ends (network kinds), the reader reconnects
  with exponential backoff (0.5 s, 1 s, 2 s, ... capped at 30 s, reset after a successful
  reconnect), up to ``max_retries`` consecutive failures (None = forever); then iteration
  raises :class:`~psenet_stream.errors.InputError`.
- Frames carry wall-clock timestamps: ``time_base = 1/90000`` and ``pts`` counted from the
  first frame, strictly increasing across drops and reconnects (a new RTSP session restarts
  its own timestamps, so the camera's pts cannot be kept).
- The resolution may change mid-stream (after a reconnect, or a camera switching mode):
  each Frame carries its own size; ``info`` keeps the first size.
- Credentials never appear in logs or errors: ``rtsp://user:***@host/...``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from psenet_stream.buffers import DropOldestQueue
from psenet_stream.errors import InputError, PsenetError, UsageError
from psenet_stream.io.frames import Frame, StreamInfo
from psenet_stream.io.redact import Redactor
from psenet_stream.io.specs import parse_size

log = logging.getLogger("psenet_stream.live")

LIVE_TIME_BASE = Fraction(1, 90000)
def spec_kind(spec: str) -> str:
    """'v4l2', 'lavfi', or the URL scheme ('rtsp', 'tcp', ...)."""
    s = str(spec)
    if s.startswith("lavfi:"):
        return "lavfi"
    if s.startswith("/dev/video"):
        return "v4l2"
    if "://" in s:
        return s.split("://", 1)[0].lower()
    raise InputError(f"not a live source: {s!r}", "use /dev/videoN, lavfi:GRAPH, or an rtsp://, rtmp://, tcp://, udp://, http(s):// URL")


def preflight(spec: str) -> None:
    """Cheap checks before anything slow (loading the model): a missing or unreadable camera
    device fails at once with the same error open_live_source would give."""
    import os

    if spec_kind(spec) == "v4l2":
        if not os.path.exists(spec):
            raise InputError(f"no camera at {spec}", "list cameras with `ls /dev/video*`; pass --device /dev/videoN")
        if not os.access(spec, os.R_OK | os.W_OK):
            raise InputError(f"no permission to open {spec}", "add yourself to the 'video' group")


class Backoff:
    """Exponential backoff: initial, 2x, 4x, ... capped; ``reset()`` after a success."""

    def __init__(self, initial: float = 0.5, maximum: float = 30.0, factor: float = 2.0):
        self.initial, self.maximum, self.factor = initial, maximum, factor
        self.attempt = 0

    def next_delay(self) -> float:
        d = min(self.maximum, self.initial * self.factor**self.attempt)
        self.attempt += 1
        return d

    def reset(self) -> None:
        self.attempt = 0


@dataclass
class LiveOptions:
    """Options of :func:`open_live_source`; None means 'the default'."""

    size: tuple[int, int] | None = None  # v4l2 video_size
    fps: float | None = None  # v4l2 framerate
    input_format: str | None = None  # v4l2 input_format, e.g. mjpeg / yuyv422
    format: str | None = None  # force the demuxer (e.g. mpegts for tcp://)
    rtsp_transport: str = "tcp"
    open_timeout: float = 10.0  # seconds to connect and read the stream header
    read_timeout: float = 5.0  # seconds without data before the stream counts as lost
    reconnect: bool = True
    max_retries: int | None = None  # consecutive failed reconnects before giving up; None = forever
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    queue_size: int = 1
    low_delay: bool = True
    wait_first: bool = False  # retry a failing first connection too (cameras that boot later)
    pace: bool | None = None  # read at the stream's own rate (ffmpeg's -re); None: for lavfi graphs, which have no clock of their own
    options: dict[str, str] = field(default_factory=dict)  # extra FFmpeg options


_ALIASES = {
    "timeout": "open_timeout",
    "video_size": "size",
    "framerate": "fps",
    "frame_rate": "fps",
    "retries": "max_retries",
    "transport": "rtsp_transport",
    "ffmpeg_options": "options",
}


def _live_options(opts: dict[str, Any]) -> LiveOptions:
    o = LiveOptions()
    for k, v in opts.items():
        k = _ALIASES.get(k, k)
        if v is None:
            continue
        if not hasattr(o, k):
            raise TypeError(f"open_live_source() got an unexpected option {k!r}")
        setattr(o, k, v)
    o.size = parse_size(o.size) if o.size not in (None, "") else None
    if o.fps is not None:
        o.fps = float(o.fps)
        if o.fps <= 0:
            raise UsageError(f"bad frame rate {o.fps}", "use a positive --fps, e.g. 30")
    if not 1 <= int(o.queue_size) <= 8:
        raise UsageError(f"bad live queue size {o.queue_size}", "use 1 or 2 (frames held between camera and model)")
    o.queue_size = int(o.queue_size)
    if o.rtsp_transport not in ("tcp", "udp", "http", "https", "udp_multicast"):
        raise UsageError(f"bad RTSP transport {o.rtsp_transport!r}", "use tcp (default) or udp")
    if o.max_retries is not None and int(o.max_retries) < 0:
        raise UsageError(f"bad retry count {o.max_retries}", "use 0 (give up at once) or more; omit for forever")
    return o


def _fmt_rate(fps: float) -> str:
    f = Fraction(fps).limit_denominator(1001)
    return str(f.numerator) if f.denominator == 1 else f"{f.numerator}/{f.denominator}"


def build_open_args(spec: str, o: LiveOptions) -> tuple[str, str | None, dict[str, str]]:
    """(file, format, FFmpeg options) for av.open. Pure: unit-testable without a device."""
    kind = spec_kind(spec)
    opts: dict[str, str] = {}
    fmt = o.format
    target = spec
    us = str(int(max(o.read_timeout, 0.1) * 1_000_000))
    if kind == "lavfi":
        target, fmt = spec[len("lavfi:") :], "lavfi"
        if not target:
            raise InputError("empty lavfi graph", "e.g. lavfi:testsrc2=size=640x480:rate=30,realtime")
    elif kind == "v4l2":
        fmt = fmt or "v4l2"
        if o.size:
            opts["video_size"] = f"{o.size[0]}x{o.size[1]}"
        if o.fps:
            opts["framerate"] = _fmt_rate(o.fps)
        if o.input_format:
            opts["input_format"] = o.input_format
    elif kind in ("rtsp", "rtsps"):
        opts["rtsp_transport"] = o.rtsp_transport
        opts["timeout"] = us  # socket I/O timeout, microseconds (was 'stimeout' before FFmpeg 5)
    elif kind in ("rtmp", "rtmps"):
        opts["rw_timeout"] = us
    elif kind in ("tcp", "http", "https", "srt"):
        opts["rw_timeout"] = us
        if kind == "tcp":
            opts["timeout"] = us
    elif kind in ("udp", "rtp"):
        opts["timeout"] = us  # udp: receive timeout in microseconds
        opts.setdefault("overrun_nonfatal", "1")
        opts.setdefault("fifo_size", "278876")
    if o.low_delay and kind not in ("lavfi", "v4l2"):
        opts["fflags"] = "nobuffer"
    opts.update({str(k): str(v) for k, v in o.options.items()})
    return target, fmt, opts


class LiveSource:
    """A live source behind the Source contract (see module docstring).

    Yields ``Frame.rgb`` (H, W, 3) uint8 RGB in [0, 255] with ``pts`` in 1/90000 s from the
    first frame and ``t_capture`` when it left the decoder; H, W may change after a
    reconnect. ``dropped`` counts frames discarded to keep latency bounded."""

    def __init__(self, spec: str, options: LiveOptions):
        import av  # noqa: F401  (fail here, not in the thread, if PyAV is missing)

        self.spec = spec
        self.kind = spec_kind(spec)
        self.options = options
        self._redact = Redactor(spec)
        self.safe_spec = self._redact.safe
        self._queue = DropOldestQueue(options.queue_size)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._ended = False
        self._container = None
        self._lock = threading.Lock()
        self._index = 0
        self._t0: float | None = None
        self._last_pts = -1
        self._size: tuple[int, int] | None = None
        self._pace = options.pace if options.pace is not None else self.kind == "lavfi"
        self._pace_origin: tuple[float, float] | None = None  # (wall clock, stream seconds) of the first frame
        self.reconnects = 0  # successful reconnects
        self.outages: list[float] = []  # seconds from losing the stream to the next frame
        self.decoded = 0  # frames decoded (delivered + dropped)

        container, first = self._connect(first=True)
        h, w = first.rgb.shape[:2]
        self._size = (w, h)
        vs = container.streams.video[0]
        fps = options.fps
        rate = vs.average_rate or vs.guessed_rate or vs.base_rate
        if rate:
            fps = Fraction(rate)
        elif fps:
            fps = Fraction(fps).limit_denominator(1001)
        cc = vs.codec_context
        self.info = StreamInfo(
            width=w,
            height=h,
            fps=fps,
            time_base=LIVE_TIME_BASE,
            frames=None,
            live=True,
            rotation=first.rotation,
            codec=cc.name if cc else None,
            pix_fmt=cc.pix_fmt if cc else None,
            description=f"{self.safe_spec} ({self.kind}, {w}x{h}" + (f" @ {float(fps):.4g} fps" if fps else "") + ")",
        )
        self._queue.put(first)
        self._thread = threading.Thread(target=self._run, args=(container,), name="psenet-live-reader", daemon=True)
        self._thread.start()

    # --- the Source contract ------------------------------------------------------------------
    @property
    def dropped(self) -> int:
        return self._queue.dropped

    def __iter__(self) -> Iterator[Frame]:
        while True:
            try:
                frame = self._queue.get(timeout=0.25)
            except TimeoutError:
                if self._error is not None:
                    err, self._error = self._error, None
                    raise err
                if self._ended or self._stop.is_set():
                    return
                continue
            yield frame

    def close(self) -> None:
        """Stop the reader and close the camera; idempotent, bounded in time."""
        self._stop.set()
        self._queue.wake()
        c = self._container
        t = getattr(self, "_thread", None)
        if t is not None and t is not threading.current_thread():
            t.join(timeout=max(2.0, self.options.read_timeout + 1.0))
            if t.is_alive():
                log.debug("live reader for %s still blocked after close; leaving it (daemon)", self.safe_spec)
        if c is not None and (t is None or not t.is_alive()):
            self._close_container(c)
        self._queue.clear()

    def __enter__(self) -> LiveSource:  # noqa: PYI034
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LiveSource({self.safe_spec!r}, dropped={self.dropped})"

    # --- internals ----------------------------------------------------------------------------
    def _open(self):
        import av

        target, fmt, opts = build_open_args(self.spec, self.options)
        o = self.options
        c = av.open(target, mode="r", format=fmt, options=opts, timeout=(o.open_timeout, o.read_timeout))
        try:
            if not c.streams.video:
                raise InputError(f"{self.safe_spec} has no video stream", "check the URL / device")
            vs = c.streams.video[0]
            vs.thread_type = "SLICE"  # frame threading adds a frame of delay per thread
        except BaseException:
            self._close_container(c)
            raise
        return c

    def _connect(self, first: bool):
        """Open and decode one frame; retry with backoff. Returns (container, first Frame)."""
        o = self.options
        backoff = Backoff(o.backoff_initial, o.backoff_max)
        failures = 0
        t_lost = time.perf_counter()
        while True:
            if self._stop.is_set():
                raise _Stopped
            c = None
            try:
                c = self._open()
                with self._lock:
                    self._container = c
                frame = self._next_frame(c, fresh=True)
                if frame is None:
                    raise EOFError("the stream ended before its first frame")
                if not first:
                    self.reconnects += 1
                    self.outages.append(frame.t_capture - t_lost)
                    log.warning("reconnected to %s after %.1f s", self.safe_spec, frame.t_capture - t_lost)
                return c, frame
            except _Stopped:
                if c is not None:
                    self._close_container(c)
                raise
            except Exception as e:  # FFmpegError, OSError, EOFError, InputError, ...: any failed connect is retried with backoff
                if c is not None:
                    self._close_container(c)
                with self._lock:
                    self._container = None
                reason = self._reason(e, opening=c is None)
                if first and isinstance(e, FileNotFoundError) and self.kind == "v4l2":  # later: unplugged, retry
                    raise InputError(f"no camera at {self.spec}", "list cameras with `ls /dev/video*`; pass --device /dev/videoN") from None
                if first and isinstance(e, PermissionError) and self.kind == "v4l2":
                    raise InputError(f"no permission to open {self.spec}", "add yourself to the 'video' group") from None
                if isinstance(e, InputError) or self.kind == "lavfi" or not o.reconnect:
                    if isinstance(e, InputError):
                        raise
                    raise InputError(f"cannot open {self.safe_spec}: {reason}", self._hint()) from None
                if first and not self._retry_first():
                    raise InputError(f"cannot open {self.safe_spec}: {reason}", self._hint()) from None
                failures += 1
                if o.max_retries is not None and failures > int(o.max_retries):
                    raise InputError(
                        f"gave up on {self.safe_spec} after {failures} failed attempts: {reason}",
                        "check that the camera/server is up; raise --max-retries or omit it to retry forever",
                    ) from None
                delay = backoff.next_delay()
                log.warning("%s: %s; reconnecting in %.1f s (attempt %d)", self.safe_spec, reason, delay, failures)
                if self._stop.wait(delay):
                    raise _Stopped from None

    def _retry_first(self) -> bool:
        """Whether a failing first connection is retried (by default not: a typo fails at once)."""
        return bool(self.options.wait_first)

    def _hint(self) -> str:
        if self.kind in ("rtsp", "rtsps"):
            return "check the URL, the credentials and that the camera is reachable (RTSP over TCP)"
        if self.kind == "lavfi":
            return "check the lavfi graph, e.g. lavfi:testsrc2=size=640x480:rate=30,realtime"
        if self.kind == "v4l2":
            return "check --size/--fps/--input-format against `v4l2-ctl --list-formats-ext`"
        return "check the URL and that the server is reachable"

    def _reason(self, e: BaseException, opening: bool = False) -> str:
        import av

        if isinstance(e, av.error.ExitError):
            if opening:
                return f"no answer within {self.options.open_timeout:g} s (timed out)"
            return f"no data for {self.options.read_timeout:g} s (timed out)"
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
        if isinstance(e, EOFError):
            return str(e) or "the stream ended"
        msg = getattr(e, "strerror", None) or str(e) or type(e).__name__
        return self._redact(msg)

    def _next_frame(self, container, fresh: bool = False) -> Frame | None:
        """Decode the next video frame from container; None at the end of the stream."""
        import av

        if fresh:
            self._decoder = container.decode(video=0)
            self._pace_origin = None
        while True:
            try:
                vf = next(self._decoder)
            except StopIteration:
                return None
            except av.error.BlockingIOError:  # EAGAIN from some live demuxers
                if self._stop.wait(0.005):
                    raise _Stopped from None
                continue
            if self._pace:
                self._wait_for_pts(vf)
            t = time.perf_counter()
            rgb = vf.to_ndarray(format="rgb24")
            rotation = int(getattr(vf, "rotation", 0) or 0) % 360
            del vf
            self.decoded += 1
            if self._t0 is None:
                self._t0 = t
            pts = max(round((t - self._t0) * LIVE_TIME_BASE.denominator), self._last_pts + 1)
            self._last_pts = pts
            idx = self._index
            self._index += 1
            size = (rgb.shape[1], rgb.shape[0])
            if self._size is not None and size != self._size:
                log.warning("%s: resolution changed %dx%d -> %dx%d", self.safe_spec, *self._size, *size)
            self._size = size
            return Frame(rgb=rgb, index=idx, pts=pts, time_base=LIVE_TIME_BASE, t_capture=t, rotation=rotation)

    def _wait_for_pts(self, vf) -> None:
        """ffmpeg's -re: hold a frame back until its own time has come on the wall clock. A
        lavfi graph without ``realtime`` renders as fast as it can; stamped on arrival, a
        10 fps testsrc recorded at 60 fps. Raises _Stopped when the source is closed."""
        if vf.pts is None or vf.time_base is None:
            return
        ts = float(vf.pts * vf.time_base)
        now = time.perf_counter()
        if self._pace_origin is None:
            self._pace_origin = (now, ts)
            return
        wall0, ts0 = self._pace_origin
        wait = wall0 + (ts - ts0) - now
        if wait > 0 and self._stop.wait(wait):
            raise _Stopped

    def _run(self, container) -> None:
        c = container
        try:
            while not self._stop.is_set():
                try:
                    frame = self._next_frame(c)
                except _Stopped:
                    return
                except Exception as e:  # noqa: BLE001 - any decode/read failure means the stream is lost: reconnect
                    frame, lost = None, e
                else:
                    lost = None
                if frame is not None:
                    self._queue.put(frame)
                    continue
                if self._stop.is_set():
                    return
                if lost is None and self.kind in ("lavfi", "v4l2"):
                    self._ended = True  # a finite lavfi graph or a camera that closed: the end
                    return
                if not self.options.reconnect:
                    if lost is not None:
                        self._error = InputError(f"lost {self.safe_spec}: {self._reason(lost)}", "pass --reconnect to keep retrying")
                    self._ended = True
                    return
                log.warning("lost %s: %s", self.safe_spec, self._reason(lost) if lost else "the stream ended")
                self._close_container(c)
                with self._lock:
                    self._container = None
                try:
                    c, frame = self._connect(first=False)
                except _Stopped:
                    return
                except PsenetError as e:
                    self._error = e
                    return
                self._queue.put(frame)
        except BaseException as e:  # a bug: hand it to the consumer rather than dying silently  # noqa: BLE001
            self._error = e
        finally:
            self._queue.wake()
            if self._stop.is_set() or self._error is not None or self._ended:
                with self._lock:
                    cc, self._container = self._container, None
                if cc is not None:
                    self._close_container(cc)

    @staticmethod
    def _close_container(c) -> None:
        with contextlib.suppress(Exception):
            c.close()


class _Stopped(Exception):
    """close() was called while connecting."""


def open_live_source(spec: str, **opts: Any) -> LiveSource:
    """Open a webcam, lavfi graph or network stream (see the module docstring).

    Options (None = default): size ('1280x720'), fps, input_format, format, rtsp_transport
    ('tcp'), open_timeout (10 s; alias timeout), read_timeout (5 s), reconnect (True),
    max_retries (None = forever), backoff_initial (0.5 s), backoff_max (30 s), queue_size (1),
    low_delay (True), wait_first (False), options (extra FFmpeg options).

    The first connection is not retried (a typo should fail at once) unless wait_first=True;
    raises InputError with the URL's credentials masked.
    """
    return LiveSource(str(spec), _live_options(opts))
