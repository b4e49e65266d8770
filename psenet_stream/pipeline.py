"""The one place where threads and bounded queues are added.

    reader thread          main thread                 writer thread
    source ──► [q_in] ──► batch ─► enhancer ─► unbatch ──► [q_out] ──► sinks

- A file source never loses a frame: ``q_in`` blocks the reader (back-pressure).
- A live source (``source.info.live``) never lets latency grow: when ``q_in`` is full the
  *oldest* queued frame is dropped and counted, and frames are enhanced one at a time.
- Split enhancers: when the enhancer offers ``predict(frames) -> plans`` (the network and the
  temporal state, on small frames) and ``apply(rgb, plan) -> rgb`` (the stateless full-
  resolution curve), the main thread only predicts and the writer thread applies, which
  balances the two on a small CPU (measured with a prototype on the 2-core box, 720p, onnx:
  16.8 -> 18.4 and 24.8 -> 31.2 fps). Otherwise the main thread calls ``enhance_frames``.
- PyAV releases the GIL in decode/encode and swscale, and cv2/torch release it in their
  kernels, so the three stages overlap.
- A stop ``Event`` (set by the CLI's SIGINT/SIGTERM handler) ends reading; frames already in
  flight are still enhanced and written, so the sinks can be finished cleanly.
- Any exception in a worker stops the others and is re-raised in the caller's thread.

Stages stay passive: sources are iterables, sinks have ``write(frame, enhanced)``; the
caller opens and closes them.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from psenet_stream.io.frames import Frame, Sink, Source

DEFAULT_FILE_BATCH = 4
LATENCY_WINDOW = 100_000  # latency samples kept for the percentiles (about an hour at 30 fps)
_END = object()
_POLL_S = 0.1


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

    def summary(self) -> str:
        s = f"{self.frames_out} frames in {self.seconds:.1f} s ({self.fps:.1f} fps), {self.dropped} dropped"
        if self.latencies:
            s += f", latency p50 {self.latency_p50_ms:.0f} ms / p95 {self.latency_p95_ms:.0f} ms"
        if self.backend:
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


def _put(q: queue.Queue, item, halt: threading.Event) -> bool:
    """Blocking put that gives up when halt is set (so shutdown never hangs on a full queue)."""
    while True:
        try:
            q.put(item, timeout=_POLL_S)
            return True
        except queue.Full:
            if halt.is_set():
                return False


def supports_yuv(enhancer) -> bool:
    """Whether ``enhancer`` takes yuv420p batches itself (a backend that converts on its device)."""
    return callable(getattr(enhancer, "enhance_yuv420p", None)) and bool(getattr(getattr(enhancer, "backend", None), "supports_yuv", False))


def _enhance_yuv(enhancer, frames: list[Frame], item: Frame, source, failed: list):
    """A yuv420p batch through the enhancer's own yuv path; should that fail (it is an
    optimisation), warn once, switch the source back to RGB, and convert this batch and any
    yuv frames still in flight on the CPU instead."""
    batch = np.stack([f.yuv for f in frames])
    if not failed:
        try:
            return enhancer.enhance_yuv420p(batch, colorspace=item.colorspace, full_range=item.full_range)
        except Exception as e:  # noqa: BLE001 - any failure of the fast path falls back
            import logging

            logging.getLogger("psenet_stream").warning(
                "warning: the yuv420p path failed (%s: %s); continuing with RGB frames", type(e).__name__, str(e).splitlines()[0] if str(e) else ""
            )
            failed.append(e)
            if hasattr(source, "want_yuv"):
                source.want_yuv = False
    from psenet_stream import colour

    return enhancer.enhance_frames(colour.yuv420p_to_rgb_np(batch, item.colorspace, item.full_range))


def _kind(f: Frame) -> tuple:
    return (f.yuv is not None, f.hw, f.colorspace, f.full_range) if f.yuv is not None else (False, f.rgb.shape)


def run(
    source: Source | Iterable[Frame],
    enhancer,
    sinks: Sequence[Sink],
    *,
    batch: int | None = None,
    live: bool | None = None,
    queue_size: int | None = None,
    stop: threading.Event | None = None,
    progress: Callable[[Stats], None] | None = None,
    max_frames: int | None = None,
    yuv: bool | None = None,
) -> Stats:
    """Read ``source``, enhance with ``enhancer`` (None: pass through), write every sink.

    yuv: keep decoded frames in yuv420p from the file source to the video file sink, with the
    colour conversion done by the enhancer's backend (the cuda backend: on the GPU, half the
    bytes of RGB to move). None (default) turns it on when the enhancer's backend supports it
    and every part can (a file source, video file sinks only); True also for a plain
    pass-through (enhancer None), so a plain transcode can be compared like for like.

    batch: frames per enhancer call (default 4 for files, the backend's batch for GPU backends,
    always 1 for live sources).
    live: override ``source.info.live``. queue_size: bound of each queue (default 2 x batch
    for files, 2 for live). stop: set it to end early (frames in flight are still written).
    progress: called from the writer thread after each frame with the running Stats.
    Returns Stats; the caller closes the source and the sinks.
    """
    info = getattr(source, "info", None)
    if live is None:
        live = bool(getattr(info, "live", False))
    default_batch = DEFAULT_FILE_BATCH
    backend = getattr(enhancer, "backend", None)
    if getattr(backend, "full_frame", False):
        default_batch = int(getattr(backend, "batch", 0) or DEFAULT_FILE_BATCH)  # fill the GPU's batches
    b = 1 if live else max(1, int(batch or default_batch))
    can_yuv = (
        not live
        and hasattr(source, "want_yuv")
        and bool(sinks)
        and all(getattr(s, "accepts_yuv", False) for s in sinks)
        and (enhancer is None or supports_yuv(enhancer))
    )
    if (enhancer is not None if yuv is None else yuv) and can_yuv:
        source.want_yuv = True
    qsize = queue_size or (1 if live else 2 * b)
    stop = stop or threading.Event()
    failed = threading.Event()  # a worker raised: everybody stops now
    halt = threading.Event()  # stop + failed, for blocking puts
    q_in: queue.Queue = queue.Queue(maxsize=qsize)
    q_out: queue.Queue = queue.Queue(maxsize=qsize)
    stats = Stats()
    if enhancer is not None:
        try:
            stats.backend = enhancer.backend.describe()
        except AttributeError:
            stats.backend = type(enhancer).__name__
    lock = threading.Lock()
    yuv_failed: list = []  # the yuv path raised once: the rest of the run goes through RGB
    pipeline_drops = 0
    split = enhancer is not None and callable(getattr(enhancer, "predict", None)) and callable(getattr(enhancer, "apply", None))

    def reader() -> None:
        nonlocal pipeline_drops
        st = stats.stage_seconds
        try:
            it = iter(source)
            while True:
                t = time.perf_counter()
                frame = next(it, _END)
                st["read"] += time.perf_counter() - t
                if frame is _END:
                    break
                if stop.is_set() or failed.is_set():
                    break
                if live:
                    while True:
                        try:
                            q_in.put_nowait(frame)
                            break
                        except queue.Full:
                            try:
                                q_in.get_nowait()  # drop the oldest queued frame
                                with lock:
                                    pipeline_drops += 1
                            except queue.Empty:
                                pass
                elif not _put(q_in, frame, halt):
                    break
                with lock:
                    stats.frames_in += 1
                if max_frames is not None and stats.frames_in >= max_frames:
                    break
        finally:
            _put(q_in, _END, halt)

    def writer() -> None:
        while True:
            try:
                item = q_out.get(timeout=_POLL_S)
            except queue.Empty:
                if failed.is_set():
                    return
                continue
            if item is _END:
                return
            frame, out = item
            if split and frame.yuv is None:  # yuv batches come back finished
                t = time.perf_counter()
                out = enhancer.apply(frame.rgb, out)
                stats.stage_seconds["apply"] += time.perf_counter() - t
            t = time.perf_counter()
            for s in sinks:
                s.write(frame, out)
            now = time.perf_counter()
            stats.stage_seconds["write"] += now - t
            with lock:
                stats.frames_out += 1
                stats.latencies.append(now - frame.t_capture)
                if len(stats.latencies) >= 2 * LATENCY_WINDOW:  # a live run never ends: keep memory bounded
                    del stats.latencies[:-LATENCY_WINDOW]
                stats.seconds = now - t0
            if progress is not None:
                progress(stats)

    t0 = time.perf_counter()
    workers = [_Worker("psenet-read", reader, failed), _Worker("psenet-write", writer, failed)]
    for w in workers:
        w.start()

    def next_item():
        while True:
            try:
                return q_in.get(timeout=_POLL_S)
            except queue.Empty:
                # a stopped live source may block in its read (a dead camera) until its
                # timeout: do not wait for it; a file reader ends right after its current frame
                if failed.is_set() or (live and stop.is_set()):
                    return _END

    try:
        carry = None
        done = False
        while not done and not failed.is_set():
            item = carry if carry is not None else next_item()
            carry = None
            if item is _END:
                break
            frames = [item]
            while len(frames) < b:
                nxt = next_item()
                if nxt is _END:
                    done = True
                    break
                if _kind(nxt) != _kind(item):  # never mix sizes (or RGB and yuv) in one batch
                    carry = nxt
                    break
                frames.append(nxt)
            t = time.perf_counter()
            if enhancer is None:
                outs = [f.rgb if f.yuv is None else f.yuv for f in frames]
            elif item.yuv is not None:
                outs = _enhance_yuv(enhancer, frames, item, source, yuv_failed)
            else:
                batch_rgb = np.stack([f.rgb for f in frames])
                outs = enhancer.predict(batch_rgb) if split else enhancer.enhance_frames(batch_rgb)
            stats.stage_seconds["enhance"] += time.perf_counter() - t
            for f, o in zip(frames, outs):
                if not _put(q_out, (f, o), failed):
                    break
        _put(q_out, _END, failed)
    except BaseException:
        failed.set()
        raise
    finally:
        if failed.is_set():
            halt.set()
        reader_w, writer_w = workers
        while writer_w.is_alive():
            writer_w.join(timeout=_POLL_S)
            if failed.is_set():
                halt.set()
        halt.set()  # nothing consumes q_in any more
        deadline = time.perf_counter() + (2.0 if live else float("inf"))
        while reader_w.is_alive() and time.perf_counter() < deadline:
            reader_w.join(timeout=_POLL_S)
        # a live reader still blocked in its source's read is a daemon thread: it ends when
        # the caller closes the source
        stats.seconds = time.perf_counter() - t0
        stats.dropped = pipeline_drops + int(getattr(source, "dropped", 0) or 0)
        stats.interrupted = stop.is_set()
    for w in workers:
        if w.error is not None:
            raise w.error
    return stats


def _video_file_sink(src, input, output, *, codec, crf, preset, overwrite):
    """The output of a file-to-file run: checked, temporary name then rename, input audio copied."""
    from psenet_stream.io.sinks import AtomicFileSink, check_output_path
    from psenet_stream.io.video import VideoFileSink

    check_output_path(output, [input], overwrite=overwrite)
    audio = input if src.has_audio else None
    return AtomicFileSink(
        output,
        lambda tmp: VideoFileSink(tmp, src.info, codec=codec, crf=crf, preset=preset, audio_from=audio, name=output.name),
        overwrite=overwrite,
    )


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
    """Enhance a video file into ``output`` (audio copied, pts/rotation/colour kept).
    ``enhancer`` None is a plain transcode; ``yuv`` as in ``run``.

    Written under a temporary name and renamed when complete; refuses to replace the
    input, or an existing output unless ``overwrite``. When ``stop`` is set mid-run the
    partial output is finalized as ``<name>.partial.<ext>`` with keep_partial, else removed,
    and the returned Stats has ``interrupted=True``.
    """
    from pathlib import Path

    from psenet_stream.io.video import VideoFileSource

    input, output = Path(input), Path(output)
    with VideoFileSource(input) as src:
        sink = _video_file_sink(src, input, output, codec=codec, crf=crf, preset=preset, overwrite=overwrite)
        try:
            stats = run(src, enhancer, [sink], batch=batch, stop=stop, progress=progress, yuv=yuv)
        except BaseException:
            sink.abort(keep_partial=False)
            raise
        if stats.interrupted:
            sink.abort(keep_partial=keep_partial)
        else:
            sink.close()
    return stats
