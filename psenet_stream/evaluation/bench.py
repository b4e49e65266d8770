"""Benchmarks behind ``psenet-stream bench``: reproducible speed figures for every backend.

For each backend and frame size:

* inference fps: ``Enhancer.enhance_frames`` on real-looking frames already in memory
  (frames of a real clip resized, or a synthetic scene; never random noise);
* end-to-end file fps, and the ratio of the enhanced transcode's wall time to a plain
  transcode (the same threaded decode -> RGB -> encode pipeline without the enhancer, same
  codec settings) of the same H.264 clip, measured side by side in the same run;
* at 1280x720, live-mode added latency p50/p95 (a paced 30 fps in-memory source through
  the pipeline's live mode, with and without the enhancer);
* peak memory: process RSS high-water mark (VmHWM, reset per measurement where the kernel
  allows) and, on CUDA, torch.cuda.max_memory_allocated.

On a GPU the full-resolution gamma (``infer_size='full'``) is measured too, and 3840x2160
is added to the default sizes. Targets are printed next to the figures.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from psenet_stream import paths
from psenet_stream.backends import GPU_NAMES

log = logging.getLogger("psenet_stream")

DEFAULT_SIZES = ((640, 360), (1280, 720), (1920, 1080))
GPU_EXTRA_SIZES = ((3840, 2160),)
GPU_BACKENDS = GPU_NAMES
# frames per enhancer call: GPUs batch to amortise launches; onnx runs a batch frame-parallel
DEFAULT_BATCH = {"cuda": 8, "tensorrt": 8, "onnx": 4, "cpu": 1}
GPU_CALL_BATCHES = 4  # batches per enhance_frames call on a GPU, so the backend's ring overlaps them

# targets from the issue: (what, backend kind, size or None, infer, comparison, value)
TARGET_INFER_CPU_720 = 150.0  # fps, CPU backends, 1280x720, default infer size (issue 13)
TARGET_FILE_720 = 30.0  # fps end to end, 1280x720
TARGET_RATIO_CPU_720 = 1.3  # issue 13: at the default preset
TARGET_RATIO_CPU = 1.5  # 1080p and other sizes
TARGET_LIVE_ADDED_P95_MS = 30.0  # 720p, CPU
DEFAULT_PRESET = "veryfast"  # the enhance command's (io.video.DEFAULT_PRESET; not imported: av)
DEFAULT_ROUNDS = 3
TARGET_RATIO_GPU = 1.05
TARGET_INFER_GPU_1080 = 2000.0  # fps, 1920x1080, default infer size
TARGET_INFER_GPU_FULL = 500.0  # fps, 1920x1080, infer_size='full'


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """'640x360,1280x720' -> [(640, 360), (1280, 720)] as (width, height)."""
    from psenet_stream.errors import UsageError

    out = []
    for part in str(text).split(","):
        part = part.strip().lower()
        if not part:
            continue
        try:
            w, h = (int(v) for v in part.split("x"))
        except ValueError:
            raise UsageError(f"bad size {part!r}", "write WIDTHxHEIGHT, e.g. 1280x720") from None
        if w < 16 or h < 16 or w % 2 or h % 2:
            raise UsageError(f"bad size {part!r}", "width and height must be even and at least 16 (H.264 4:2:0)")
        out.append((w, h))
    if not out:
        raise UsageError("no sizes given", "e.g. --sizes 640x360,1280x720")
    return out


# --- frames ---------------------------------------------------------------------------------


def synthetic_scene(w: int, h: int, n: int, seed: int = 0) -> np.ndarray:
    """(n, h, w, 3) uint8: an under-exposed scene with smooth shading, edges, texture and motion.

    Used when no real clip is available; it has the statistics of a dim photograph (large
    smooth regions, sharp edges, a bright window), not of noise.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u, v = xx / w, yy / h
    base = np.stack([0.35 + 0.25 * u, 0.30 + 0.2 * v, 0.25 + 0.15 * (1 - u)], -1)
    frames = []
    for i in range(n):
        img = base.copy()
        cx, cy = (0.3 + 0.01 * i) * w, 0.55 * h
        r = 0.18 * min(w, h)
        disc = ((xx - cx) ** 2 + (yy - cy) ** 2) < r * r
        img[disc] = (0.55, 0.25, 0.2)
        img[int(0.1 * h) : int(0.35 * h), int(0.65 * w) : int(0.85 * w)] = (0.95, 0.95, 0.9)  # a window
        img[:, :, :] *= (0.85 + 0.15 * np.sin(xx / 9.0 + i) * np.cos(yy / 13.0))[..., None]  # texture
        img = img**2.2 * 0.45  # under-exposed
        img += rng.normal(0, 0.008, img.shape).astype(np.float32)  # sensor noise
        frames.append(np.clip(img * 255, 0, 255).astype(np.uint8))
    return np.stack(frames)


def default_clip() -> Path | None:
    clips_dir = paths.clips_dir()
    if clips_dir.is_dir():
        from psenet_stream.io.specs import is_video_path

        clips = sorted(p for p in clips_dir.iterdir() if is_video_path(p))
        for pref in ("vtest.avi", "tree.avi"):
            for p in clips:
                if p.name == pref:
                    return p
        return clips[0] if clips else None
    return None


def clip_frames(path: str | Path, w: int, h: int, n: int) -> np.ndarray:
    """The first n frames of a clip, resized to w x h RGB (looping the clip if it is short)."""
    from psenet_stream.io.video import decode_rgb

    frames = []
    for img in decode_rgb(path, n):
        interp = cv2.INTER_AREA if img.shape[1] > w else cv2.INTER_LINEAR
        frames.append(cv2.resize(img, (w, h), interpolation=interp))
    if not frames:
        raise ValueError(f"no video frames in {path}")
    while len(frames) < n:
        frames.extend(frames[: n - len(frames)])
    return np.stack(frames)


def bench_frames(w: int, h: int, n: int, clip: str | Path | None = None) -> tuple[np.ndarray, str]:
    """(frames, description): from ``clip``, else the data clips, else a synthetic scene."""
    src = Path(clip) if clip else default_clip()
    if src is not None:
        try:
            return clip_frames(src, w, h, n), f"clip {src.name}"
        except Exception as e:  # noqa: BLE001 - any unreadable clip: the benchmark still runs on a synthetic scene
            log.warning("bench: cannot read %s (%s); using a synthetic scene", src, e)
    return synthetic_scene(w, h, n), "synthetic scene"


def write_clip(path: Path, frames: np.ndarray, fps: int = 30) -> Path:
    """Encode frames as an H.264 (yuv420p) MP4: the input of the file benchmark."""
    from psenet_stream.io.video import write_rgb_clip

    return write_rgb_clip(path, frames, fps)


# --- memory --------------------------------------------------------------------------------


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux: write 5 to /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    except (ImportError, OSError):  # no resource module (not POSIX)
        return None


def _cuda_reset(backend) -> None:
    if getattr(backend, "device", "cpu") != "cpu" and str(backend.device).startswith("cuda"):
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _cuda_peak_mb(backend) -> float | None:
    if str(getattr(backend, "device", "cpu")).startswith("cuda"):
        import torch

        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() / 2**20
    return None


# --- measurements -----------------------------------------------------------------------------


@dataclass
class Row:
    backend: str
    size: str
    infer_size: str
    frames: int = 0
    source: str = ""
    describe: str = ""
    infer_fps: float | None = None
    gpu_resident_fps: float | None = None  # frames already on the GPU (e.g. from NVDEC)
    yuv_fps: float | None = None  # yuv420p frames in host memory (what a file transcode moves)
    video_fps: float | None = None  # host backends: a clip's frames in order with the video defaults (gamma reuse)
    infer_target: float | None = None
    file_fps: float | None = None
    file_target: float | None = None
    plain_fps: float | None = None
    ratio: float | None = None
    ratio_target: float | None = None
    ratio_min: float | None = None  # spread of the per-round ratios (``ratio`` is their median)
    ratio_max: float | None = None
    rounds: list = field(default_factory=list)  # per round: {infer_fps, plain_s, enhanced_s, ratio, live_added_p95_ms}
    live_p50_ms: float | None = None
    live_p95_ms: float | None = None
    live_added_p50_ms: float | None = None
    live_added_p95_ms: float | None = None
    live_target_p95_ms: float | None = None
    reuse: dict | None = None  # file rows: network runs and their triggers (temporal.GammaReuse)
    peak_rss_mb: float | None = None
    cuda_peak_mb: float | None = None
    skipped: str = ""
    notes: list[str] = field(default_factory=list)


def measure_inference(enhancer, frames, total: int, batch: int, min_seconds: float = 1.0, per_call: int | None = None) -> float:
    """fps of ``enhance_frames`` on frames already in memory.

    ``frames`` is a numpy array (host memory) or a uint8 CUDA tensor (frames already on the
    GPU). Each call gets ``per_call`` frames (default ``batch``; a GPU backend pipelines the
    batches inside one call) and writes into one preallocated output, so the figure is the
    enhancer's, not the allocator's. Runs for at least ``total`` frames and ``min_seconds``.
    """
    import torch

    per_call = max(1, per_call or batch)
    reps = -(-per_call // len(frames))
    chunk = (
        frames[:per_call]
        if len(frames) >= per_call
        else (torch.cat if torch.is_tensor(frames) else np.concatenate)([frames] * reps)[:per_call]
    )
    out = torch.empty_like(chunk) if torch.is_tensor(chunk) else np.empty_like(chunk)
    sync = torch.cuda.synchronize if torch.is_tensor(chunk) and chunk.is_cuda else (lambda: None)
    enhancer.enhance_frames(chunk, out=out)  # warm-up (allocation, graphs, autotune, JIT)
    sync()
    enhancer.reset()
    done = 0
    t0 = time.perf_counter()
    while done < total or time.perf_counter() - t0 < min_seconds:
        enhancer.enhance_frames(chunk, out=out)
        done += len(chunk)
    sync()
    return done / (time.perf_counter() - t0)


def measure_stream(enhancer, frames: np.ndarray, total: int, batch: int, min_seconds: float = 1.0) -> float:
    """fps of ``enhance_frames`` on a clip's frames in host memory, in order, ``batch`` at a
    time (wrapping around: one cut per pass): what a video run's enhancer costs, with its
    temporal defaults (gamma reuse, stabilizer), without decoding or encoding."""
    batch = max(1, min(batch, len(frames)))
    out = np.empty((batch, *frames.shape[1:]), frames.dtype)
    enhancer.enhance_frames(frames[:batch], out=out)  # warm-up
    enhancer.reset()
    done, i = 0, 0
    t0 = time.perf_counter()
    while done < total or time.perf_counter() - t0 < min_seconds:
        chunk = frames[i : i + batch]
        enhancer.enhance_frames(chunk, out=out[: len(chunk)])
        done += len(chunk)
        i = (i + batch) % len(frames) if i + batch < len(frames) else 0
    return done / (time.perf_counter() - t0)


class _YuvCalls:
    """Lets measure_inference time ``enhance_yuv420p`` (it calls ``enhance_frames``)."""

    def __init__(self, enhancer):
        self.enhancer = enhancer

    def enhance_frames(self, frames, out=None):
        return self.enhancer.enhance_yuv420p(frames, out=out)

    def reset(self) -> None:
        self.enhancer.reset()


def _pipeline():
    try:
        from psenet_stream import pipeline

        return pipeline
    except ImportError:
        return None


def transcode(pipeline, src: Path, dst: Path, enhancer, batch: int, preset: str = "ultrafast", yuv: bool | None = None) -> float:
    """Wall seconds of one transcode, libx264 at preset: enhanced, or plain with enhancer=None.

    The plain transcode is the same threaded pipeline (decode thread -> RGB -> encode
    thread, same source, sink and encoder settings) with the enhancer removed, so the
    ratio is the cost of the enhancement alone. ``yuv``: run both in the same frame format
    (a GPU backend keeps yuv420p end to end, so its plain baseline does too).
    """
    t0 = time.perf_counter()
    pipeline.enhance_file(src, dst, enhancer, preset=preset, batch=batch, overwrite=True, yuv=yuv)
    return time.perf_counter() - t0


class _NullSink:
    def write(self, frame, enhanced) -> None:
        pass

    def close(self) -> None:
        pass


def measure_live(pipeline, enhancer, frames: np.ndarray, n: int, fps: float = 30.0) -> tuple[float | None, float | None]:
    """(p50, p95) ms from capture to written, for a paced in-memory source in live mode."""
    from psenet_stream.io.frames import Frame

    def source() -> Iterator[Frame]:
        t_next = time.perf_counter()
        for i in range(n):
            delay = t_next - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            yield Frame(rgb=frames[i % len(frames)], index=i, t_capture=time.perf_counter())
            t_next += 1.0 / fps

    if enhancer is not None:
        enhancer.reset()
    stats = pipeline.run(source(), enhancer, [_NullSink()], live=True)
    return stats.latency_p50_ms, stats.latency_p95_ms


def _targets(row: Row, kind: str, w: int, h: int, infer: str) -> None:
    gpu = kind in GPU_BACKENDS
    reduced = infer != "full"  # the default working resolution, or one given with --infer-size
    if (w, h) == (1280, 720) and not gpu and reduced:
        row.infer_target = TARGET_INFER_CPU_720
    if (w, h) == (1920, 1080) and gpu:
        row.infer_target = TARGET_INFER_GPU_1080 if reduced else TARGET_INFER_GPU_FULL
    if (w, h) == (1280, 720) and reduced:
        row.file_target = TARGET_FILE_720
    if reduced:
        row.ratio_target = TARGET_RATIO_GPU if gpu else (TARGET_RATIO_CPU_720 if (w, h) == (1280, 720) else TARGET_RATIO_CPU)
    if (w, h) == (1280, 720) and reduced and not gpu:
        row.live_target_p95_ms = TARGET_LIVE_ADDED_P95_MS


def run_bench(
    backends: list[str] | str = "auto",
    sizes: list[tuple[int, int]] | None = None,
    frames: int = 64,
    weights: str | None = None,
    clip: str | None = None,
    batch: int | None = None,
    file: bool = True,
    live: bool = True,
    live_frames: int = 60,
    workdir: str | Path | None = None,
    threads: int | None = None,
    preset: str = DEFAULT_PRESET,
    infer_size: int | str | None = None,
    compile_net: bool = False,
    rounds: int = DEFAULT_ROUNDS,
) -> dict[str, Any]:
    """Run the benchmark; return {'meta': ..., 'rows': [...]} (JSON-serialisable).

    ``preset``: the libx264 preset of both transcodes (the ratio target holds at any preset);
    ``infer_size``: the working resolution of the "default" rows (None: the enhancer default).
    ``rounds``: each figure is measured that many times, enhanced and plain alternating
    (side by side, for a loaded machine); a row holds the median and the spread.
    """
    from psenet_stream import backends as B
    from psenet_stream.weights_io import load_model

    avail = B.available()
    names = _backend_names(backends, avail)
    load_start = _loadavg()
    any_gpu = any(n in GPU_BACKENDS and avail[n] == "" for n in names)
    if sizes is None:
        sizes = list(DEFAULT_SIZES) + (list(GPU_EXTRA_SIZES) if any_gpu else [])
    model, meta = load_model(weights)
    pipeline = _pipeline() if (file or live) else None
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="psenet-bench-", dir=workdir) as tmp:
        run = _BenchRun(
            model=model,
            meta=meta,
            pipeline=pipeline,
            tmpdir=Path(tmp),
            frames=frames,
            batch=batch,
            threads=threads,
            preset=preset,
            infer_size=infer_size,
            compile_net=compile_net,
            file=file,
            live=live,
            live_frames=live_frames,
            rounds=max(1, int(rounds)),
        )
        run.prepare_clips(sizes, clip, any_gpu)
        for name in names:
            for w, h in sizes:
                first = "default" if infer_size is None else str(infer_size)  # labels the row honestly
                for infer in [first] + (["full"] if name in GPU_BACKENDS and first != "full" else []):
                    row = Row(backend=name, size=f"{w}x{h}", infer_size=infer, frames=frames)
                    rows.append(row)
                    _targets(row, name, w, h, infer)
                    if avail.get(name):
                        row.skipped = avail[name]
                        continue
                    run.measure(row, name, w, h, infer)
    if (file or live) and pipeline is None:
        for r in rows:
            r.notes.append("psenet_stream.pipeline is not available: file/live figures skipped")
    result = {"meta": bench_meta(meta, names, preset, infer_size), "rows": [asdict(r) for r in rows]}
    result["meta"]["rounds"] = max(1, int(rounds))
    result["meta"]["loadavg_start"], result["meta"]["loadavg_end"] = load_start, _loadavg()
    result["meta"]["compile"] = compile_net
    return result


def _loadavg() -> list[float] | None:
    """The 1/5/15-minute load averages (how busy the machine was: the figures depend on it)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def _backend_names(backends: list[str] | str, avail: dict[str, str]) -> list[str]:
    """'auto': every backend usable here; else the names given, checked."""
    from psenet_stream import backends as B
    from psenet_stream.errors import UsageError

    if backends == "auto" or backends == ["auto"]:
        return [n for n in B.BACKENDS if avail[n] == ""]
    names = [backends] if isinstance(backends, str) else list(backends)
    for n in names:
        if n not in avail:
            raise UsageError(f"unknown backend {n!r}", f"choose from {', '.join(avail)} or auto")
    return names


@dataclass
class _BenchRun:
    """What every row of one benchmark shares: the model, the frame pools and clips, options."""

    model: Any
    meta: dict
    pipeline: Any
    tmpdir: Path
    frames: int
    batch: int | None
    threads: int | None
    preset: str
    infer_size: int | str | None
    compile_net: bool
    file: bool
    live: bool
    live_frames: int
    rounds: int = DEFAULT_ROUNDS
    clips: dict = field(default_factory=dict)  # (w, h) -> (frame pool, description, clip path or None)

    def prepare_clips(self, sizes, clip, any_gpu: bool) -> None:
        for w, h in sizes:
            pool, desc = bench_frames(w, h, min(self.frames, 32 if any_gpu else 16), clip)
            clip_path = None
            if self.file and self.pipeline is not None:
                frames = bench_frames(w, h, self.frames, clip)[0] if self.frames > len(pool) else pool[: self.frames]
                clip_path = write_clip(self.tmpdir / f"in-{w}x{h}.mp4", frames)
            self.clips[(w, h)] = (pool, desc, clip_path)

    def measure(self, row: Row, name: str, w: int, h: int, infer: str) -> None:
        """Fill ``row`` for backend ``name`` at w x h (a backend that cannot start: skipped)."""
        from psenet_stream import backends as B
        from psenet_stream.enhancer import Enhancer
        from psenet_stream.errors import PsenetError

        pool, desc, clip_path = self.clips[(w, h)]
        row.source = desc
        b = self.batch or DEFAULT_BATCH.get(name, 1)
        try:
            be = B.create(name, self.model, self.meta, batch=b, threads=self.threads, **({"compile": True} if self.compile_net else {}))
        except PsenetError as e:
            row.skipped = e.problem
            return
        opts = {"infer_size": "full"} if infer == "full" else ({"infer_size": self.infer_size} if self.infer_size else {})
        enh = Enhancer(be, **opts)
        row.describe = be.describe()
        reset_peak_rss()
        _cuda_reset(be)
        try:
            self._speed(row, enh, be, pool, b, name in GPU_BACKENDS, w, h)
            # file and live rows run what `psenet-stream clip.mp4` runs: the video defaults
            from psenet_stream.defaults import VIDEO_GAMMA_EVERY, VIDEO_SMOOTHING, VIDEO_STABILIZE

            video = Enhancer(be, **opts, smoothing=VIDEO_SMOOTHING, stabilize=VIDEO_STABILIZE, gamma_every=VIDEO_GAMMA_EVERY)
            if name not in GPU_BACKENDS:
                vfps = [round(measure_stream(video, pool, self.frames, b), 2) for _ in range(self.rounds)]
                row.video_fps = _median(vfps)
                self._round_values(row, "video_fps", vfps)
            if clip_path is not None and infer != "full":
                self._file(row, video, clip_path, b)
            if self.live and self.pipeline is not None and (w, h) == (1280, 720) and infer != "full":
                self._live(row, video, pool)
        except PsenetError as e:
            row.notes.append(f"{e.problem}")
        finally:
            row.peak_rss_mb = _r(peak_rss_mb())
            row.cuda_peak_mb = _r(_cuda_peak_mb(be))
            be.close()

    def _speed(self, row: Row, enh, be, pool: np.ndarray, b: int, gpu: bool, w: int, h: int) -> None:
        per_call = b * GPU_CALL_BATCHES if gpu else b
        fps = [round(measure_inference(enh, pool, self.frames, b, per_call=per_call), 2) for _ in range(self.rounds)]
        row.infer_fps = _median(fps)
        self._round_values(row, "infer_fps", fps)
        if not gpu:
            return
        import torch

        dev = torch.from_numpy(np.ascontiguousarray(pool)).to(be.device)
        row.gpu_resident_fps = round(measure_inference(enh, dev, self.frames, b, per_call=per_call), 2)
        del dev
        if enh.supports_yuv420p and w % 2 == 0 and h % 2 == 0:
            from psenet_stream.colour import rgb_to_yuv420p_np

            yuv = np.stack([rgb_to_yuv420p_np(f) for f in pool])
            row.yuv_fps = round(measure_inference(_YuvCalls(enh), yuv, self.frames, b, per_call=per_call), 2)

    def _file(self, row: Row, enh, clip_path: Path, b: int) -> None:
        plain, enhanced = [], []
        yuv = enh.supports_yuv420p
        if yuv:
            row.notes.append("GPU transcodes (plain and enhanced) keep yuv420p end to end")
        transcode(self.pipeline, clip_path, self.tmpdir / "plain.mp4", None, b, self.preset, yuv=yuv)  # warm-up (page cache, codecs)
        for _ in range(self.rounds):  # side by side, alternating
            plain.append(transcode(self.pipeline, clip_path, self.tmpdir / "plain.mp4", None, b, self.preset, yuv=yuv))
            enh.reset()
            enhanced.append(transcode(self.pipeline, clip_path, self.tmpdir / "enh.mp4", enh, b, self.preset, yuv=yuv))
        ratios = [round(e / p, 3) for e, p in zip(enhanced, plain)]
        row.plain_fps = round(self.frames / _median(plain), 2)
        row.file_fps = round(self.frames / _median(enhanced), 2)
        row.ratio, row.ratio_min, row.ratio_max = _median(ratios), min(ratios), max(ratios)
        self._round_values(row, "plain_s", [round(v, 3) for v in plain])
        self._round_values(row, "enhanced_s", [round(v, 3) for v in enhanced])
        self._round_values(row, "ratio", ratios)
        reuse = getattr(enh, "reuse", None)
        if reuse is not None and getattr(reuse, "triggers", None) is not None:
            row.reuse = {"frames": reuse.predicted + reuse.reused, "predicted": reuse.predicted, "triggers": dict(reuse.triggers)}

    @staticmethod
    def _round_values(row: Row, key: str, values: list) -> None:
        while len(row.rounds) < len(values):
            row.rounds.append({})
        for r, v in zip(row.rounds, values):
            r[key] = v

    def _live(self, row: Row, enh, pool: np.ndarray) -> None:
        runs = []
        for _ in range(self.rounds):  # plain and enhanced alternating
            base50, base95 = measure_live(self.pipeline, None, pool, self.live_frames)
            p50, p95 = measure_live(self.pipeline, enh, pool, self.live_frames)
            runs.append((p50, p95, base50, base95))
        ok = [r for r in runs if None not in r]
        if not ok:
            return
        row.live_p50_ms, row.live_p95_ms = _r(_median([r[0] for r in ok])), _r(_median([r[1] for r in ok]))
        row.live_added_p50_ms = _r(_median([r[0] - r[2] for r in ok]))
        added95 = [round(r[1] - r[3], 1) for r in ok]
        row.live_added_p95_ms = _r(_median(added95))
        self._round_values(row, "live_added_p95_ms", added95)


def _median(values: list) -> float:
    return float(np.median(np.asarray(values, dtype=np.float64)))


def _r(v: float | None, nd: int = 1) -> float | None:
    return None if v is None else round(float(v), nd)


def bench_meta(weights_meta: dict, names: list[str], preset: str = DEFAULT_PRESET, infer_size=None) -> dict[str, Any]:
    import torch

    out = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "weights_sha256": weights_meta.get("sha256", ""),
        "backends": names,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "file_codec": f"libx264 preset={preset} (input: H.264 veryfast crf 18)",
        "infer_size": infer_size or "enhancer default",
    }
    try:
        import onnxruntime

        out["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    return out


# --- output ----------------------------------------------------------------------------------


def _fmt(v, target=None, higher=True, nd=1) -> str:
    if v is None:
        return "-"
    s = f"{v:.{nd}f}"
    if target is not None:
        ok = v >= target if higher else v <= target
        s += f" ({'ok' if ok else 'MISS'} {'>=' if higher else '<='}{target:g})"
    return s


def format_table(result: dict[str, Any]) -> str:
    head = [
        "backend",
        "size",
        "infer",
        "infer fps",
        "video fps",
        "yuv fps",
        "on-GPU fps",
        "file fps",
        "plain fps",
        "ratio",
        "live +p50/+p95 ms",
        "RSS MB",
        "CUDA MB",
    ]
    lines = []
    for r in result["rows"]:
        if r["skipped"]:
            lines.append([r["backend"], r["size"], r["infer_size"], f"skipped: {r['skipped']}"] + [""] * (len(head) - 4))
            continue
        live = (
            "-"
            if r["live_added_p50_ms"] is None
            else f"{r['live_added_p50_ms']:.1f}/{_fmt(r['live_added_p95_ms'], r.get('live_target_p95_ms'), higher=False)}"
        )
        ratio = _fmt(r["ratio"], r["ratio_target"], higher=False, nd=2)
        if r.get("ratio_min") is not None and r.get("ratio_max") != r.get("ratio_min"):
            ratio += f" [{r['ratio_min']:.2f}-{r['ratio_max']:.2f}]"
        lines.append(
            [
                r["backend"],
                r["size"],
                r["infer_size"],
                _fmt(r["infer_fps"], r["infer_target"]),
                _fmt(r.get("video_fps"), r["infer_target"] if r.get("video_fps") else None),
                _fmt(r.get("yuv_fps"), r["infer_target"] if r.get("yuv_fps") else None),
                _fmt(r.get("gpu_resident_fps"), r["infer_target"] if r.get("gpu_resident_fps") else None),
                _fmt(r["file_fps"], r["file_target"]),
                _fmt(r["plain_fps"]),
                ratio,
                live,
                _fmt(r["peak_rss_mb"], nd=0),
                _fmt(r["cuda_peak_mb"], nd=0),
            ]
        )
    widths = [max(len(head[i]), *(len(l[i]) for l in lines)) if lines else len(head[i]) for i in range(len(head))]
    out = ["  ".join(h.ljust(widths[i]) for i, h in enumerate(head)), "  ".join("-" * w for w in widths)]
    for l in lines:
        out.append("  ".join(c.ljust(widths[i]) for i, c in enumerate(l)).rstrip())
    m = result["meta"]
    out.append("")
    out.append(
        f"{m['date']}  {m['platform']}  {m['cpu_count']} CPUs  gpu: {m['gpu'] or 'none'}  torch {m['torch']}  {m.get('file_codec', '')}"
    )
    if m.get("rounds"):
        out.append(
            f"{m['rounds']} rounds, plain and enhanced alternating: medians, ratio [min-max]; load average at start {m.get('loadavg_start')}, at end {m.get('loadavg_end')}"
        )
    out.append(
        "targets: CPU >=150 fps inference at 720p; >=30 fps end to end at 720p; live added p95 <=30 ms at 720p (CPU); "
        "ratio enhanced/plain transcode <=1.3 at 720p, <=1.5 at 1080p (CPU) / <=1.05 (GPU); GPU >=2000 fps 1080p default infer size, >=500 fps full-res gamma"
    )
    out.append(
        "infer fps: RGB frames in host memory -> host memory, the image defaults (the network on every frame); "
        "video fps: the clip's frames in order with the video defaults (gamma reuse, stabilizer); yuv fps: the same with yuv420p frames "
        "(1.5 bytes/pixel; colour conversion on the GPU); on-GPU fps: frames already on the GPU "
        "(uint8 tensors, e.g. from NVDEC); file fps: decode -> enhance -> libx264 encode"
    )
    notes = sorted({n for r in result["rows"] for n in r["notes"]})
    out.extend(f"note: {n}" for n in notes)
    return "\n".join(out)


def write_json(result: dict[str, Any], path: str | Path, inputs=()) -> None:
    """The bench report, through the output guard (an earlier report is replaced; an input never)."""
    from psenet_stream import guard

    guard.write_text(path, json.dumps(result, indent=2) + "\n", list(inputs), overwrite=True, create_parent=True, what="report")


__all__ = ["bench_frames", "format_table", "parse_sizes", "run_bench", "synthetic_scene", "write_json"]
