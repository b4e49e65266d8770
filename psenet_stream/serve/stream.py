"""One stream of a serve process: its input, its outputs, its own threads and counters.

    reader thread:  source ──► small copy (prepare) ──► slot (DropOldestQueue, queue_size frames) ──► the server's batcher
    writer thread:  (frame, gamma) from the batcher ──► the stream's GammaPost (finish) ──► curve (apply) ──► every output

- The input is opened with the same machinery as the CLI (``io.sources.open_source``); a live
  input reconnects by itself with the backoff of io/live.py. When it gives up (or its first
  connection fails) the stream waits with the same ``Backoff`` and opens it again: a camera
  that is down never stops the server, nor slows the other streams.
- A video file is played at its own frame rate (``_PacedFile``): it behaves like a camera.
  It ends the stream at its end (``loop``: starts again).
- Latency is bounded per stream: the slot keeps the newest ``queue_size`` frames and the
  writer's queue one; older frames are dropped and counted.
- Each output is an ``_Output``: a failure to open or write is logged (credentials masked),
  counted, the output closed, and reopened after a backoff; the other outputs go on.
- Frames are restamped with wall-clock pts (1/90000 s from the stream's first frame, strictly
  increasing), so a recording stays monotonic across reconnects and file loops.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from fractions import Fraction
from pathlib import Path

from psenet_stream.buffers import DropOldestQueue, QueueTimeout
from psenet_stream.errors import PsenetError
from psenet_stream.io.frames import Frame, StreamInfo
from psenet_stream.io.redact import Redactor
from psenet_stream.io.specs import is_live_spec
from psenet_stream.serve.config import NULL_OUTPUT, StreamConfig

log = logging.getLogger("psenet_stream.serve")

TIME_BASE = Fraction(1, 90000)
WRITER_QUEUE = 1  # frames between the batcher and the writer: a slow writer drops rather than delays


class NullSink:
    """Enhance and write nothing (measurements)."""

    def write(self, frame, enhanced) -> None:
        pass

    def close(self) -> None:
        pass


class _PacedFile:
    """A video file played at its own frame rate, like a camera; ``loop`` starts it again."""

    def __init__(self, path: str, stop: threading.Event, loop: bool):
        from psenet_stream.io.video import VideoFileSource

        self._make = lambda: VideoFileSource(Path(path), high_bit_depth=False)  # served outputs are 8-bit: 10-bit / HDR files rounded on decode
        self._src = self._make()
        self.info = self._src.info
        self.info.live = True
        self.dropped = 0
        self.reconnects = 0
        self._stop, self._loop = stop, loop
        fps = float(self.info.fps) if self.info.fps else 25.0
        self._period = 1.0 / fps

    def __iter__(self):
        t0 = time.perf_counter()
        n = 0
        while not self._stop.is_set():
            for f in self._src:
                due = t0 + n * self._period
                delay = due - time.perf_counter()
                if delay > 0 and self._stop.wait(delay):
                    return
                n += 1
                f.t_capture = time.perf_counter()
                yield f
                if self._stop.is_set():
                    return
            if not self._loop:
                return
            self._src.close()
            self._src = self._make()

    def close(self) -> None:
        self._src.close()


class _Output:
    """One output of a stream, reopened after a failure (see the module docstring)."""

    BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)

    def __init__(self, spec: str, cfg: StreamConfig, on_error):
        self.spec = spec
        self.cfg = cfg
        self.safe = Redactor(spec).safe if "://" in spec else spec
        self._redact = Redactor(spec)
        self.sink = None
        self.failures = 0
        self.errors = 0
        self.next_try = 0.0
        self.frames = 0  # frames the current sink took
        self.last_error: str | None = None
        self._on_error = on_error

    def _open(self, info: StreamInfo):
        from psenet_stream.io.sinks import open_sink

        if self.spec == NULL_OUTPUT:
            return NullSink()
        if self.spec == "preview:http":
            sink = open_sink(self.spec, info, port=self.cfg.preview_port, title=f"psenet-stream serve: {self.cfg.name}", announce=False)
            log.info("[%s] preview: %s", self.cfg.name, sink.url)
            return sink
        return open_sink(self.spec, info, overwrite=self.cfg.overwrite, live=True)

    def write(self, frame: Frame, enhanced, info: StreamInfo) -> None:
        now = time.monotonic()
        if self.sink is None:
            if now < self.next_try:
                return
            try:
                self.sink = self._open(info)
                self.frames = 0
            except Exception as e:  # noqa: BLE001 - any failure to open is reported and retried
                self._failed(e, "cannot open")
                return
        try:
            self.sink.write(frame, enhanced)
            self.frames += 1
            self.failures = 0
        except Exception as e:  # noqa: BLE001 - any failure to write is reported, the output closed and retried
            self._failed(e, "failed")
            sink, self.sink = self.sink, None
            self._finish(sink, error=e)

    def _failed(self, e: BaseException, what: str) -> None:
        delay = self.BACKOFF[min(self.failures, len(self.BACKOFF) - 1)]
        self.failures += 1
        self.errors += 1
        self.next_try = time.monotonic() + delay
        msg = self._redact(getattr(e, "problem", None) or str(e) or type(e).__name__)
        self.last_error = msg
        log.warning("[%s] output %s %s: %s; retrying in %.0f s", self.cfg.name, self.safe, what, msg, delay)
        self._on_error()

    def _finish(self, sink, error: BaseException | None = None) -> None:
        from psenet_stream.pipeline import Stats, finish

        if sink is None:
            return
        st = Stats(frames_out=self.frames)
        try:
            finish([sink], st, error=error, live=True)
        except Exception as e:  # noqa: BLE001 - one output failing to close must not keep the others open
            log.warning("[%s] output %s: %s", self.cfg.name, self.safe, self._redact(getattr(e, "problem", None) or e))

    def close(self) -> None:
        sink, self.sink = self.sink, None
        self._finish(sink)


class StreamWorker:
    """A stream's reader and writer threads, its slot for the batcher, and its counters.

    ``state`` is one of metrics.STATES. The server's batcher takes frames with
    ``take_newest()`` and hands back ``(frame, plan)`` with ``deliver``; ``on_frame`` is called
    (from the reader) whenever a frame is waiting.
    """

    def __init__(self, cfg: StreamConfig, state, predictor, metrics, on_frame):
        self.cfg = cfg
        self.name = cfg.name
        self.state_obj = state  # batching.StreamState: its temporal state
        self.predictor = predictor
        self.metrics = metrics
        self.on_frame = on_frame
        self.slot = DropOldestQueue(cfg.queue_size)
        self.out_q = DropOldestQueue(WRITER_QUEUE)
        self.stop_reading = threading.Event()
        self.state = "starting"
        self.info: StreamInfo | None = None
        self.outputs = [_Output(o, cfg, self._output_error) for o in cfg.outputs]
        self.frames_in = self.frames_out = 0
        self.reconnects = 0
        self.source_dropped = 0
        self.latencies: list[float] = []  # seconds, for the bench's percentiles (bounded)
        self.last_error: str | None = None
        self._source = None
        self.last_frame_t: float | None = None  # monotonic time of the last frame read
        self._t0: float | None = None
        self._last_pts = -1
        self._reported_drops = 0
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read_loop, name=f"psenet-serve:{cfg.name}:read", daemon=True)
        self._writer = threading.Thread(target=self._write_loop, name=f"psenet-serve:{cfg.name}:write", daemon=True)

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        self.metrics.add(self.name)
        self._reader.start()
        self._writer.start()

    def stop_input(self) -> None:
        """Stop reading (frames already read are still enhanced and written)."""
        self.stop_reading.set()
        src = self._source
        if src is not None and not isinstance(src, _PacedFile):  # a live source is made to be closed from another thread;
            with contextlib.suppress(Exception):  # a file's decoder is closed by its reader, which stops within a frame
                src.close()
        self.slot.end()

    def join_reader(self, timeout: float) -> None:
        self._reader.join(timeout=timeout)

    def finish(self, timeout: float = 10.0) -> None:
        """After the batcher took its last frame: write what is queued, close every output.
        A reader still blocked in opening a camera (its open timeout) is left to end by
        itself (a daemon thread that reads nothing more)."""
        self.stop_input()
        self._reader.join(timeout=min(timeout, 1.0))
        self.out_q.end()
        self._writer.join(timeout=timeout)
        for o in self.outputs:
            o.close()
        self._set_state("stopped")

    @property
    def dropped(self) -> int:
        return self.slot.dropped + self.out_q.dropped + self.source_dropped + self._current_source_drops()

    def _current_source_drops(self) -> int:
        src = self._source
        try:
            return int(getattr(src, "dropped", 0) or 0) if src is not None else 0
        except Exception:  # noqa: BLE001
            return 0

    def _set_state(self, s: str) -> None:
        if s != self.state:
            self.state = s
            self.metrics.state.labels(self.name).state(s)

    # --- the batcher's side ------------------------------------------------------------------------
    def take_newest(self) -> tuple[Frame, object] | None:
        """(frame, its prepared small copy) or None."""
        return self.slot.take_newest(timeout=0)

    def waiting(self) -> bool:
        return len(self.slot) > 0

    def deliver(self, frame: Frame, pending) -> None:
        """The batcher's result for ``frame`` (finished into a plan by the writer)."""
        self.out_q.put((frame, pending))

    # --- reader ------------------------------------------------------------------------------------
    def _open_source(self):
        from psenet_stream.io.sources import open_source

        spec = self.cfg.input
        if is_live_spec(spec):
            opts = {"queue_size": 1}  # a failing first connection is retried here, as "reconnecting"
            if self.cfg.read_timeout is not None:
                opts["read_timeout"] = self.cfg.read_timeout
            for k in ("open_timeout", "size", "fps", "input_format", "format"):
                if getattr(self.cfg, k) is not None:
                    opts[k] = getattr(self.cfg, k)
            return open_source(spec, **opts)
        return _PacedFile(spec, self.stop_reading, self.cfg.loop)

    def _read_loop(self) -> None:
        from psenet_stream.io.live import Backoff

        backoff = Backoff()
        first = True
        red = Redactor(self.cfg.input)
        while not self.stop_reading.is_set():
            try:
                src = self._open_source()
            except PsenetError as e:
                if not is_live_spec(self.cfg.input):  # a missing or unreadable file does not come back by waiting
                    self._fail(red(f"{e.problem} ({e.fix})" if e.fix else e.problem))
                    return
                self._lost(red(e.problem), backoff, first)
                continue
            except Exception as e:  # noqa: BLE001 - an unexpected failure to open is treated like a lost camera
                self._lost(red(f"{type(e).__name__}: {e}"), backoff, first)
                continue
            if not first:
                self.reconnects += 1
                self.metrics.reconnects.labels(self.name).inc()
                log.warning("[%s] input %s is back", self.name, self.cfg.safe_input)
            first = False
            self._source = src
            if self.info is None:
                self.info = src.info
            seen_reconnects = int(getattr(src, "reconnects", 0) or 0)
            self._set_state("running")
            backoff.reset()
            ended = False
            try:
                for frame in src:
                    if self.stop_reading.is_set():
                        break
                    self._stamp(frame)
                    self.last_frame_t = time.monotonic()
                    if self.state != "running":
                        self._set_state("running")
                    self.slot.put((frame, self.predictor.prepare(self.state_obj, frame.rgb)))
                    self.frames_in += 1
                    r = int(getattr(src, "reconnects", 0) or 0)
                    if r != seen_reconnects:  # the live source reconnected by itself
                        self.metrics.reconnects.labels(self.name).inc(r - seen_reconnects)
                        self.reconnects += r - seen_reconnects
                        seen_reconnects = r
                    self.on_frame()
                else:
                    ended = True
            except PsenetError as e:
                if not self.stop_reading.is_set():
                    self._lost(red(e.problem), backoff, False)
            except Exception as e:  # noqa: BLE001 - a broken input must not take the server down
                if not self.stop_reading.is_set():
                    self._lost(red(f"{type(e).__name__}: {e}"), backoff, False)
            finally:
                self.source_dropped += self._current_source_drops()
                self._source = None
                with contextlib.suppress(Exception):
                    src.close()
            if ended and not self.stop_reading.is_set():
                log.info("[%s] input %s ended", self.name, self.cfg.safe_input)
                self._set_state("ended")
                break
        self.slot.end()
        self.on_frame()

    def check_stalled(self, now: float, after: float = 2.0) -> None:
        """A running stream with no frame for ``after`` s is reconnecting (a live source
        retries by itself inside its iterator); the next frame makes it running again."""
        t = self.last_frame_t
        if self.state == "running" and t is not None and now - t > after:
            self._set_state("reconnecting")

    def _lost(self, why: str, backoff, first: bool) -> None:
        self.last_error = why
        self._set_state("reconnecting")
        delay = backoff.next_delay()
        shown = why if self.cfg.safe_input in why else f"input {self.cfg.safe_input}: {why}"
        log.warning("[%s] %s; retrying in %.1f s", self.name, shown, delay)
        self.stop_reading.wait(delay)

    def _fail(self, why: str) -> None:
        self.last_error = why
        log.error("[%s] %s", self.name, why)
        self._set_state("failed")
        self.slot.end()

    def _stamp(self, frame: Frame) -> None:
        t = frame.t_capture
        if self._t0 is None:
            self._t0 = t
        pts = max(round((t - self._t0) * TIME_BASE.denominator), self._last_pts + 1)
        self._last_pts = pts
        frame.pts, frame.time_base = pts, TIME_BASE

    def _output_error(self) -> None:
        self.metrics.output_errors.labels(self.name).inc()

    # --- writer ------------------------------------------------------------------------------------
    def _write_loop(self) -> None:
        while True:
            try:
                frame, pending = self.out_q.get(timeout=0.25)
            except QueueTimeout:
                continue
            except EOFError:
                return
            try:
                plan = self.predictor.finish(self.state_obj, pending)  # this stream's own temporal state, in order
                out = self.predictor.apply(frame.rgb, plan)
                for o in self.outputs:
                    o.write(frame, out, self.info)
            except Exception as e:  # noqa: BLE001 - a frame that cannot be enhanced is reported, the stream goes on
                log.warning("[%s] frame %d failed: %s: %s", self.name, frame.index, type(e).__name__, e)
                continue
            lat = time.perf_counter() - frame.t_capture
            self.frames_out += 1
            self.metrics.frames.labels(self.name).inc()
            self.metrics.latency.labels(self.name).observe(lat)
            with self._lock:
                self.latencies.append(lat)
                if len(self.latencies) > 200_000:
                    del self.latencies[:100_000]
            self.report_drops()

    def report_drops(self) -> None:
        d = self.dropped
        if d > self._reported_drops:
            self.metrics.dropped.labels(self.name).inc(d - self._reported_drops)
            self._reported_drops = d

    def recent_p95_ms(self, n: int = 250) -> float | None:
        """p95 latency of the last ``n`` frames, ms (None before the first)."""
        with self._lock:
            tail = self.latencies[-n:]
        if not tail:
            return None
        tail.sort()
        return tail[min(len(tail) - 1, int(0.95 * len(tail)))] * 1000.0

    def run_latency_ms(self) -> dict[str, float | None]:
        """p50 / p95 latency over the whole run (the last 100,000+ frames), ms."""
        import numpy as np

        with self._lock:
            a = np.asarray(self.latencies, dtype=np.float64)
        if not a.size:
            return {"p50": None, "p95": None}
        p50, p95 = np.percentile(a, [50, 95]) * 1000.0
        return {"p50": round(float(p50), 2), "p95": round(float(p95), 2)}

    def status(self) -> dict:
        return {
            "state": self.state,
            "input": self.cfg.safe_input,
            "outputs": [o.safe for o in self.outputs],
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "dropped": self.dropped,
            "reconnects": self.reconnects,
            "output_errors": sum(o.errors for o in self.outputs),
            "scene_cuts": self.state_obj.scene_cuts,
            "fps": round(getattr(self, "fps", 0.0), 2),
            "latency_p95_ms": self.recent_p95_ms(),
            "latency_ms": self.run_latency_ms(),
            "last_error": self.last_error,
        }
