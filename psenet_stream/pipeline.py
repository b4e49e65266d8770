"""The one place where threads and bounded queues are added.

    read loop (thread)      batcher + enhance (caller's thread)      write loop (thread)
    source ──► [q_in] ──► batches of B frames ─► enhancer ──► [q_out] ──► apply? ─► sinks

- A file source never loses a frame: ``q_in`` blocks the reader (back-pressure,
  ``buffers.put_until``).
- A live source (``source.info.live``) never lets latency grow: ``q_in`` is a
  ``buffers.DropOldestQueue`` (the oldest queued frame is dropped and counted), and frames
  are enhanced one at a time.
- Split enhancers (``SplitEnhancer``: ``predict(frames) -> plans`` runs the network and
  the temporal state on small frames, ``apply(rgb, plan) -> rgb`` the stateless full-
  resolution curve): the caller's thread only predicts and the writer thread applies, which
  balances the two on a small CPU (measured on a 2-core box, 720p, onnx: 16.8 -> 18.4 and
  24.8 -> 31.2 fps). Otherwise the caller's thread calls ``enhance_frames``.
- yuv420p mode: when the source can yield decoded yuv420p (``FormatSelectable``), every
  sink can take it (``YuvSink``) and the enhancer converts on its own device
  (``supports_yuv420p``), frames stay yuv420p end to end. If that path fails it warns once
  and the rest of the run goes through RGB, no frame lost.
- PyAV releases the GIL in decode/encode and swscale, and cv2/torch release it in their
  kernels, so the three stages overlap.
- A stop ``Event`` (set by the CLI's SIGINT/SIGTERM handler) ends reading; frames already in
  flight are still enhanced and written, so the sinks can be finished cleanly.
- A worker forwards any exception and always posts its end marker; the others stop and the
  exception is re-raised in the caller's thread.

Stages stay passive: sources are iterables, sinks have ``write(frame, enhanced)``; the
caller opens them, and closes them with ``finish`` (commit, abort or keep a partial output).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from psenet_stream.buffers import POLL_SECONDS, DropOldestQueue, put_until
from psenet_stream.io.frames import Committable, FormatSelectable, Frame, Sink, Source, StreamInfo, YuvSink

log = logging.getLogger("psenet_stream")

DEFAULT_FILE_BATCH = 4
LATENCY_WINDOW = 100_000  # latency samples kept for the percentiles (about an hour at 30 fps)
_END = object()


@runtime_checkable
class _WithInfo(Protocol):  # a source that describes its stream (every Source; a bare iterable does not)
    info: StreamInfo


@runtime_checkable
class _CountsDrops(Protocol):  # a source that drops frames itself to bound latency
    dropped: int


@runtime_checkable
class EnhancerLike(Protocol):
    """What the pipeline needs of an enhancer: (N, H, W, 3) uint8 RGB -> the same, in order."""

    def enhance_frames(self, frames: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class SplitEnhancer(Protocol):
    """An enhancer whose stateless full-resolution half can run in the writer thread
    (``predict`` takes a list of (H, W, 3) frames of one size)."""

    def predict(self, frames: Sequence[np.ndarray]) -> list: ...

    def apply(self, frame: np.ndarray, plan: Any) -> np.ndarray: ...


@runtime_checkable
class YuvEnhancer(Protocol):
    """An enhancer that takes (N, H * 3 / 2, W) yuv420p batches itself (``supports_yuv420p``)."""

    supports_yuv420p: bool

    def enhance_yuv420p(self, frames: np.ndarray, colorspace: int | None = None, full_range: bool = False) -> np.ndarray: ...


@runtime_checkable
class BacklogAware(Protocol):
    """An enhancer that can do less per frame when a live source falls behind: told, after
    each frame, how many frames wait behind it (``Enhancer.note_backlog``)."""

    def note_backlog(self, waiting: int) -> None: ...


@runtime_checkable
class BatchPreferring(Protocol):
    """An enhancer with its own batch size for files (a GPU backend's), None for no preference."""

    preferred_batch: int | None


@runtime_checkable
class Described(Protocol):
    backend_description: str


@dataclass
class Stats:
    frames_in: int = 0  # frames read from the source (after the source's own drops)
    frames_out: int = 0  # frames written to every sink
    dropped: int = 0  # frames dropped to keep latency bounded (source + pipeline)
    seconds: float = 0.0
    backend: str = ""
    interrupted: bool = False
    latencies: list[float] = field(default_factory=list, repr=False)  # seconds, capture -> written (the last LATENCY_WINDOW or more)
    # wall seconds spent inside each stage (they overlap: each runs in its own thread)
    stage_seconds: dict[str, float] = field(default_factory=lambda: {"read": 0.0, "enhance": 0.0, "apply": 0.0, "write": 0.0})

    @property
    def fps(self) -> float:
        return self.frames_out / self.seconds if self.seconds > 0 else 0.0

    def _pct(self, q: float) -> float | None:
        if not self.latencies:
            return None
        return float(np.percentile(np.asarray(self.latencies), q)) * 1000.0

    @property
    def latency_p50_ms(self) -> float | None:
        return self._pct(50)

    @property
    def latency_p95_ms(self) -> float | None:
        return self._pct(95)

    def summary(self, *, unit: str = "frame", latency: bool = True, backend: bool = True) -> str:
        """'30 frames in 1.2 s (25.0 fps), 0 dropped, ...'; ``unit`` 'image' for image runs
        (singular for one); ``latency`` / ``backend``: include those figures (the CLI shows the
        latency for live runs only and the backend with -v)."""
        n = self.frames_out
        s = f"{n} {unit}{'' if n == 1 else 's'} in {self.seconds:.1f} s ({self.fps:.1f} fps), {self.dropped} dropped"
        if self.latencies and latency:
            s += f", latency p50 {self.latency_p50_ms:.0f} ms / p95 {self.latency_p95_ms:.0f} ms"
        if self.backend and backend:
            s += f", backend {self.backend}"
        if self.interrupted:
            s += " (interrupted)"
        return s

    def as_dict(self) -> dict:
        return {
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "dropped": self.dropped,
            "seconds": round(self.seconds, 4),
            "fps": round(self.fps, 2),
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p95_ms": self.latency_p95_ms,
            "backend": self.backend,
            "interrupted": self.interrupted,
            "stage_seconds": {k: round(v, 4) for k, v in self.stage_seconds.items()},
        }


class _Worker(threading.Thread):
    def __init__(self, name: str, target: Callable[[], None], failed: threading.Event):
        super().__init__(name=name, daemon=True)
        self._target_fn = target
        self._failed = failed
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._target_fn()
        except BaseException as e:  # noqa: BLE001 - forwarded to the caller and re-raised there
            self.error = e
            self._failed.set()



def _enhancer_batch(enhancer: EnhancerLike | None, live: bool, batch: int | None) -> int:
    if live:
        return 1
    default = DEFAULT_FILE_BATCH
    if isinstance(enhancer, BatchPreferring) and enhancer.preferred_batch:
        default = int(enhancer.preferred_batch)  # fill the GPU's batches
    return max(1, int(batch or default))


def _wants_yuv(source, enhancer, sinks: Sequence[Sink], live: bool, yuv: bool | None) -> bool:
    """yuv420p end to end: asked for (None: whenever an enhancer can) and every stage can."""
    can = (
        not live
        and isinstance(source, FormatSelectable)
        and bool(sinks)
        and all(isinstance(s, YuvSink) and s.accepts_yuv for s in sinks)
        and (enhancer is None or (isinstance(enhancer, YuvEnhancer) and enhancer.supports_yuv420p))
    )
    return can and (enhancer is not None if yuv is None else yuv)


def _to_8bit(a: np.ndarray) -> np.ndarray:
    """A uint16 (high-bit-depth) frame for a sink that takes 8-bit only."""
    return ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _kind(f: Frame) -> tuple:
    return (f.yuv is not None, f.hw, f.colorspace, f.full_range) if f.yuv is not None else (False, f.rgb.shape, f.rgb.dtype)


_LEAN_LOCK = threading.Lock()
_LEAN_RUNS = [0, None]  # runs in progress, cv2's thread count before the first


@contextlib.contextmanager
def _lean_threads():
    """During runs: cv2 single-threaded, and freed frame buffers kept for reuse (glibc).

    The pipeline already runs its stages in parallel (decode, network, curve + encode, and
    x264's own threads). cv2's per-call thread pool on top of that, on a 2-core box,
    measured 4.3 ms of CPU per 720p curve remap against 2.6 ms on one thread (its idle
    workers wait actively). And a frame-sized array freed by one frame and allocated by the
    next goes back to the kernel and is faulted in again each time (glibc returns blocks
    over its mmap threshold): ~2 ms per 720p frame; ``mallopt`` keeps them in the heap.
    cv2's thread count is restored when the last run ends; the malloc setting stays.
    """
    import cv2

    with _LEAN_LOCK:
        if _LEAN_RUNS[0] == 0:
            _LEAN_RUNS[1] = cv2.getNumThreads()
            cv2.setNumThreads(1)
            _keep_freed_buffers()
        _LEAN_RUNS[0] += 1
    try:
        yield
    finally:
        with _LEAN_LOCK:
            _LEAN_RUNS[0] -= 1
            if _LEAN_RUNS[0] == 0 and _LEAN_RUNS[1] is not None:
                cv2.setNumThreads(_LEAN_RUNS[1])


_MALLOPT_DONE = [False]


def _keep_freed_buffers() -> None:
    """glibc: serve blocks up to 32 MB (a 4K RGB frame) from the heap and keep up to 512 MB
    of freed memory there, so per-frame arrays reuse pages already mapped. Elsewhere a no-op."""
    if _MALLOPT_DONE[0]:
        return
    _MALLOPT_DONE[0] = True
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_mmap_threshold, 32 * 1024 * 1024)
        libc.mallopt(m_trim_threshold, 512 * 1024 * 1024)
    except (OSError, AttributeError):  # not glibc (musl): leave the allocator alone
        pass


class _Run:
    """One pipeline run: the read loop and the write loop (threads) and the batcher (the caller)."""

    def __init__(self, source, enhancer, sinks, *, batch, live, queue_size, stop, progress, max_frames, max_seconds, yuv):
        self.source, self.enhancer, self.sinks = source, enhancer, list(sinks)
        if live is None:
            live = isinstance(source, _WithInfo) and bool(source.info.live)
        self.live = live
        self.batch = _enhancer_batch(enhancer, live, batch)
        if _wants_yuv(source, enhancer, self.sinks, live, yuv):
            source.set_frame_format("yuv420p")
        qsize = queue_size or (1 if live else 2 * self.batch)
        self.q_in: queue.Queue | DropOldestQueue = DropOldestQueue(qsize) if live else queue.Queue(maxsize=qsize)
        self.q_out: queue.Queue = queue.Queue(maxsize=qsize)
        self.stop = stop or threading.Event()
        self.failed = threading.Event()  # a worker raised: everybody stops now
        self.halt = threading.Event()  # stop + failed, for blocking puts
        self.read_done = threading.Event()  # the reader has put its last frame
        self.progress, self.max_frames = progress, max_frames
        self.split = isinstance(enhancer, SplitEnhancer)
        self._drops_seen = 0  # live: drops already reported to a BacklogAware enhancer
        self.yuv_failed = False  # the yuv path raised once: the rest of the run goes through RGB
        self.lock = threading.Lock()
        self.stats = Stats()
        if enhancer is not None:
            self.stats.backend = enhancer.backend_description if isinstance(enhancer, Described) else type(enhancer).__name__
        self.t0 = time.perf_counter()
        self.deadline = None if max_seconds is None else self.t0 + max_seconds

    # --- read loop (thread) ---------------------------------------------------------------
    def read_loop(self) -> None:
        st = self.stats.stage_seconds
        try:
            it = iter(self.source)
            while not (self.stop.is_set() or self.failed.is_set()):
                t = time.perf_counter()
                frame = next(it, _END)
                st["read"] += time.perf_counter() - t
                if frame is _END or self.stop.is_set() or self.failed.is_set():
                    break
                if self.live:
                    self.q_in.put(frame)  # a DropOldestQueue: never blocks, drops the oldest
                elif not put_until(self.q_in, frame, self.halt):
                    break
                with self.lock:
                    self.stats.frames_in += 1
                if self.max_frames is not None and self.stats.frames_in >= self.max_frames:
                    break
        finally:
            self.read_done.set()

    def _next_frame(self):
        """The next frame from the reader, or _END (the reader is done, a worker failed, or a
        live run was stopped: a stopped live source may block in a read until its timeout)."""
        q = self.q_in
        while True:
            if self.deadline is not None and time.perf_counter() >= self.deadline:
                self.timed_out = not self.stop.is_set()  # the planned end, not an interruption
                self.stop.set()  # max_seconds: the same clean end as a stop request
            try:
                return q.get(timeout=POLL_SECONDS)
            except queue.Empty:
                if self.failed.is_set() or (self.live and self.stop.is_set()):
                    return _END
                if self.read_done.is_set():  # its last put happened before it said so
                    try:
                        return q.get(timeout=0) if self.live else q.get_nowait()
                    except queue.Empty:
                        return _END

    # --- batcher (caller's thread) ----------------------------------------------------------
    def batches(self) -> Iterator[list[Frame]]:
        """Runs of up to ``batch`` frames of one kind (size, RGB or yuv and its matrix)."""
        carry = None
        while not self.failed.is_set():
            first = carry if carry is not None else self._next_frame()
            carry = None
            if first is _END:
                return
            frames = [first]
            while len(frames) < self.batch:
                nxt = self._next_frame()
                if nxt is _END:
                    yield frames
                    return
                if _kind(nxt) != _kind(first):  # never mix sizes (or RGB and yuv) in one batch
                    carry = nxt
                    break
                frames.append(nxt)
            yield frames

    def enhance(self, frames: list[Frame]) -> list:
        """Enhanced arrays (or plans for ``apply``) for a batch, in order."""
        enh = self.enhancer
        if enh is None:
            return [f.rgb if f.yuv is None else f.yuv for f in frames]
        if frames[0].yuv is not None:
            return self._enhance_yuv(frames)
        if self.split:  # no batch copy: the enhancer downscales each frame once, in place
            return enh.predict([f.rgb for f in frames])
        return enh.enhance_frames(np.stack([f.rgb for f in frames]))

    def _enhance_yuv(self, frames: list[Frame]) -> np.ndarray:
        first = frames[0]
        batch = np.stack([f.yuv for f in frames])
        if not self.yuv_failed:
            try:
                return self.enhancer.enhance_yuv420p(batch, colorspace=first.colorspace, full_range=first.full_range)
            except Exception as e:  # noqa: BLE001 - the yuv path is an optimisation: any failure of it falls back to RGB
                log.warning("warning: the yuv420p path failed (%s: %s); continuing with RGB frames", type(e).__name__, str(e).splitlines()[0] if str(e) else "")
                self.yuv_failed = True
                self.source.set_frame_format("rgb24")
        from psenet_stream import colour

        return self.enhancer.enhance_frames(colour.yuv420p_to_rgb_np(batch, first.colorspace, first.full_range))

    # --- write loop (thread) ----------------------------------------------------------------
    def write_loop(self) -> None:
        st, stats = self.stats.stage_seconds, self.stats
        while True:
            try:
                item = self.q_out.get(timeout=POLL_SECONDS)
            except queue.Empty:
                if self.failed.is_set():
                    return
                continue
            if item is _END:
                return
            frame, out = item
            if self.split and frame.yuv is None and self.enhancer is not None:  # yuv batches come back finished
                t = time.perf_counter()
                out = self.enhancer.apply(frame.rgb, out)
                st["apply"] += time.perf_counter() - t
            t = time.perf_counter()
            for s in self.sinks:
                s.write(frame, out if out.dtype == np.uint8 or getattr(s, "accepts_high_bit_depth", False) else _to_8bit(out))
            now = time.perf_counter()
            st["write"] += now - t
            with self.lock:
                stats.frames_out += 1
                stats.latencies.append(now - frame.t_capture)
                if len(stats.latencies) >= 2 * LATENCY_WINDOW:  # a live run never ends: keep memory bounded
                    del stats.latencies[:-LATENCY_WINDOW]
                stats.seconds = now - self.t0
            if self.progress is not None:
                self.progress(stats)

    # --- the run ------------------------------------------------------------------------------
    def execute(self) -> Stats:
        reader = _Worker("psenet-read", self.read_loop, self.failed)
        writer = _Worker("psenet-write", self.write_loop, self.failed)
        reader.start()
        writer.start()
        try:
            backlog = self.live and isinstance(self.enhancer, BacklogAware)
            for frames in self.batches():
                t = time.perf_counter()
                outs = self.enhance(frames)
                self.stats.stage_seconds["enhance"] += time.perf_counter() - t
                if backlog:
                    self.enhancer.note_backlog(self._waiting())
                for f, o in zip(frames, outs):
                    if not put_until(self.q_out, (f, o), self.failed):
                        break
            put_until(self.q_out, _END, self.failed)
        except BaseException:
            self.failed.set()
            raise
        finally:
            self._shutdown(reader, writer)
        for w in (reader, writer):
            if w.error is not None:
                raise w.error
        return self.stats

    def _waiting(self) -> int:
        """Live: frames that arrived while the last one was enhanced and wait (in the queue,
        or dropped by the queue or the source since the last look): a backlog."""
        drops = (self.q_in.dropped if isinstance(self.q_in, DropOldestQueue) else 0) + (
            int(self.source.dropped or 0) if isinstance(self.source, _CountsDrops) else 0
        )
        new_drops, self._drops_seen = drops - self._drops_seen, drops
        return len(self.q_in) + new_drops if isinstance(self.q_in, DropOldestQueue) else self.q_in.qsize() + new_drops

    def _shutdown(self, reader: _Worker, writer: _Worker) -> None:
        if self.failed.is_set():
            self.halt.set()
        while writer.is_alive():
            writer.join(timeout=POLL_SECONDS)
            if self.failed.is_set():
                self.halt.set()
        self.halt.set()  # nothing consumes q_in any more
        deadline = time.perf_counter() + (2.0 if self.live else float("inf"))
        while reader.is_alive() and time.perf_counter() < deadline:
            reader.join(timeout=POLL_SECONDS)
        # a live reader still blocked in its source's read is a daemon thread: it ends when
        # the caller closes the source
        st = self.stats
        st.seconds = time.perf_counter() - self.t0
        queue_drops = self.q_in.dropped if isinstance(self.q_in, DropOldestQueue) else 0
        st.dropped = queue_drops + (int(self.source.dropped or 0) if isinstance(self.source, _CountsDrops) else 0)
        st.interrupted = self.stop.is_set() and not getattr(self, "timed_out", False)


def run(
    source: Source | Iterable[Frame],
    enhancer: EnhancerLike | None,
    sinks: Sequence[Sink],
    *,
    batch: int | None = None,
    live: bool | None = None,
    queue_size: int | None = None,
    stop: threading.Event | None = None,
    progress: Callable[[Stats], None] | None = None,
    max_frames: int | None = None,
    max_seconds: float | None = None,
    yuv: bool | None = None,
) -> Stats:
    """Read ``source``, enhance with ``enhancer`` (None: pass through), write every sink.

    batch: frames per enhancer call (default 4 for files, the enhancer's ``preferred_batch``
    for GPU backends, always 1 for live sources). live: override ``source.info.live``.
    queue_size: bound of each queue (default 2 x batch for files, 1 for live). stop: set it
    to end early (frames in flight are still written). progress: called from the writer
    thread after each frame with the running Stats. max_frames: stop reading after that many;
    max_seconds: set ``stop`` after that long (a live run's --duration).
    yuv: keep decoded frames in yuv420p from source to sinks (see the module docstring);
    None turns it on when every part can, True also for a plain pass-through (enhancer
    None), so a plain transcode can be compared like for like.
    Returns Stats; the caller closes the source, and finishes the sinks with ``finish``.
    """
    r = _Run(
        source, enhancer, sinks, batch=batch, live=live, queue_size=queue_size, stop=stop, progress=progress,
        max_frames=max_frames, max_seconds=max_seconds, yuv=yuv,
    )
    with _lean_threads():
        return r.execute()


# --- finishing the outputs ------------------------------------------------------------------------


def finish(sinks: Sequence[Sink], stats: Stats | None, *, error: BaseException | None = None, keep_partial: bool = False, live: bool = False) -> Path | None:
    """Close every sink after a run; commit or abort the ones with a temporary output.

    For a ``Committable`` sink (a file written under a temporary name):

    - an error (``error`` given): abort; a live recording keeps what was recorded as
      ``<name>.partial.<ext>`` (it cannot be made again), a file run deletes it;
    - no frame written: abort, nothing kept;
    - a file run interrupted by ``stop``: abort, keeping the partial output only with
      ``keep_partial``;
    - otherwise commit it under its final name (a live run ends by stop: q, Ctrl-C, a duration).

    Other sinks are closed; one that fails to close is logged and does not keep the others
    from closing. A failure to commit is raised. Returns the partial output kept, or None.
    """
    committable = [s for s in sinks if isinstance(s, Committable)]
    for s in sinks:
        if s in committable:
            continue
        try:
            s.close()
        except Exception:  # a preview or stream that fails to close must not lose the file outputs
            log.debug("closing %s failed", type(s).__name__, exc_info=True)
    partial = None
    for s in committable:
        if error is not None:
            s.abort(keep_partial=live)
        elif stats is None or stats.frames_out == 0:
            s.abort(keep_partial=False)
        elif stats.interrupted and not live:
            s.abort(keep_partial=keep_partial)
        else:
            s.close()
            continue
        if s.kept is not None:
            partial = Path(s.kept)
            if error is not None:
                log.warning("the recording so far is kept as %s", partial)
    _check_delivered(sinks, stats, error)
    return partial


def _check_delivered(sinks: Sequence[Sink], stats: Stats | None, error: BaseException | None) -> None:
    """A run that sent frames to a network output of which none arrived did not do its job,
    however short it was: an OutputError (exit 4), not a success."""
    if error is not None or stats is None or stats.frames_out == 0:
        return
    for s in sinks:
        if getattr(s, "delivered", None) == 0:
            from psenet_stream.errors import OutputError

            where = getattr(s, "safe_url", "the network output")
            why = getattr(s, "last_error", None)
            raise OutputError(
                f"no frame reached {where}" + (f": {why}" if why else ""),
                "check that the server runs, accepts publishing on that path, and speaks the URL's protocol",
            )


def run_to_sinks(source: Source | Iterable[Frame], enhancer: EnhancerLike | None, sinks: Sequence[Sink], *, keep_partial: bool = False, **run_options: Any) -> tuple[Stats, Path | None]:
    """``run`` then ``finish``: every output is closed, committed or aborted whatever happens.
    Returns (Stats, the partial output kept or None); an error of the run is re-raised."""
    live = run_options.get("live")
    if live is None:
        live = isinstance(source, _WithInfo) and bool(source.info.live)
    try:
        stats = run(source, enhancer, sinks, **run_options)
    except BaseException as e:
        with contextlib.suppress(Exception):  # the run's own error is the one to report
            finish(sinks, None, error=e, live=live)
        raise
    return stats, finish(sinks, stats, keep_partial=keep_partial, live=live)


def enhance_file(
    input,
    output,
    enhancer,
    *,
    codec: str | None = None,
    crf: int | None = None,
    preset: str | None = None,
    batch: int | None = None,
    overwrite: bool = False,
    keep_partial: bool = False,
    stop: threading.Event | None = None,
    progress: Callable[[Stats], None] | None = None,
    yuv: bool | None = None,
) -> Stats:
    """Enhance a video file into ``output`` (every stream, tag and chapter the output can hold
    copied; pts/rotation/colour kept; 10-bit and HDR stay so: docs/MEDIA.md).
    ``enhancer`` None is a plain transcode; ``yuv`` as in ``run``.

    Written under a temporary name and renamed when complete; refuses to replace the
    input, or an existing output unless ``overwrite``. When ``stop`` is set mid-run the
    partial output is finalized as ``<name>.partial.<ext>`` with keep_partial, else removed,
    and the returned Stats has ``interrupted=True``.
    """
    from psenet_stream.io.sinks import open_sink
    from psenet_stream.io.video import VideoFileSource

    input, output = Path(input), Path(output)
    with VideoFileSource(input) as src:
        if enhancer is not None and getattr(src, "hdr_transfer", None):  # PQ / HLG: corrected in light, kept HDR (psenet_stream/hdr.py)
            from psenet_stream.hdr import HdrEnhancer

            enhancer = HdrEnhancer(enhancer, src.hdr_transfer)
        sink = open_sink(output, src.info, inputs=[input], audio_from=input, overwrite=overwrite, codec=codec, crf=crf, preset=preset)
        stats, _ = run_to_sinks(src, enhancer, [sink], keep_partial=keep_partial, batch=batch, stop=stop, progress=progress, yuv=yuv)
    return stats
