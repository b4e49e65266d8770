"""Per-stage cost of an enhanced file run on the CPU (issue 13): each stage timed alone, one
thread at a time, on the frames of a real clip at a given size.

    .venv/bin/python tools/cpu_profile.py --size 1280x720 --frames 120 [--json out.json]

Stages: decode (PyAV, frames left in yuv420p), colour in (swscale yuv420p -> rgb24, as the
RGB source does, and the cv2 alternative), downscale to the working size, the network
(onnx, one frame, all threads), the gamma post-processing, the curve at full resolution,
colour out (RGB -> yuv420p for the encoder) and encode (libx264 at a preset). Every figure
is the median over the frames, in milliseconds per frame.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np


def _cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


CPU: dict = {}  # stage -> process CPU ms per call (every thread: what the stage costs a loaded machine)


def _ms(fn, items, reps: int = 1) -> float:
    """Median wall ms per call; the process CPU ms per call goes to CPU[fn] (see _record)."""
    times = []
    c0, n = _cpu(), 0
    for it in items:
        for _ in range(reps):
            t = time.perf_counter()
            fn(it)
            times.append(time.perf_counter() - t)
            n += 1
    _ms.last_cpu = round((_cpu() - c0) / n * 1000, 3)
    return round(statistics.median(times) * 1000, 3)


class _Recorder(dict):
    """ms[stage] = wall figure; records the CPU figure of the same measurement beside it."""

    def __init__(self, res: dict):
        super().__init__()
        self.res = res
        res["ms_per_frame"] = self
        res["cpu_ms_per_frame"] = {}

    def __setitem__(self, key, value) -> None:
        super().__setitem__(key, value)
        cpu = getattr(_ms, "last_cpu", None)
        if cpu is not None:
            self.res["cpu_ms_per_frame"][key] = cpu
            _ms.last_cpu = None


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--preset", default="veryfast")
    ap.add_argument("--json", default=None)
    ap.add_argument("--no-lean", action="store_true", help="Leave cv2's threads and malloc as they are (a pipeline run sets them).")
    a = ap.parse_args()
    if not a.no_lean:
        try:  # what pipeline.run does for its duration
            from psenet_stream.pipeline import _lean_threads

            _lean_threads().__enter__()
        except ImportError:
            pass
    w, h = (int(v) for v in a.size.split("x"))

    import av

    from psenet_stream import colour
    from psenet_stream.curve import working_size
    from psenet_stream.enhancer import Enhancer
    from psenet_stream.evaluation.bench import bench_frames, write_clip

    frames, desc = bench_frames(w, h, a.frames)
    res: dict = {"size": a.size, "frames": len(frames), "source": desc, "preset": a.preset, "ms_per_frame": {}}
    ms = _Recorder(res)
    with tempfile.TemporaryDirectory() as tmp:
        clip = write_clip(Path(tmp) / "in.mp4", frames)
        # decode, frames left as the decoder made them (threaded, as VideoFileSource does)
        with av.open(str(clip)) as c:
            vs = c.streams.video[0]
            vs.thread_type = "AUTO"
            t, c0 = time.perf_counter(), _cpu()
            decoded = [f for f in c.decode(vs)]
            _ms.last_cpu = round((_cpu() - c0) / len(decoded) * 1000, 3)
            ms["decode (threaded, wall)"] = round((time.perf_counter() - t) / len(decoded) * 1000, 3)
        yuv = [f.to_ndarray() for f in decoded]
        ms["colour in: swscale yuv420p->rgb24 (to_ndarray rgb24)"] = _ms(lambda f: f.to_ndarray(format="rgb24"), decoded)
        ms["colour in: yuv420p plane copy (to_ndarray)"] = _ms(lambda f: f.to_ndarray(), decoded)
        cs = int(decoded[0].colorspace or 2)
        full = decoded[0].color_range == 2
        if hasattr(colour, "yuv420p_to_rgb_cv2"):
            ms["colour in: cv2 yuv420p->rgb (colour.yuv420p_to_rgb_cv2)"] = _ms(lambda y: colour.yuv420p_to_rgb_cv2(y, cs, full), yuv)
        ms["colour in: torch yuv420p->rgb (colour.yuv420p_to_rgb_np)"] = _ms(lambda y: colour.yuv420p_to_rgb_np(y[None], cs, full), yuv[:20])
        rgb = [f.to_ndarray(format="rgb24") for f in decoded]
        sh, sw = working_size(h, w, 256)
        ms[f"downscale rgb -> {sw}x{sh} INTER_AREA"] = _ms(lambda f: cv2.resize(f, (sw, sh), interpolation=cv2.INTER_AREA), rgb)
        if hasattr(colour, "yuv420p_small_rgb"):
            ms[f"downscale from yuv planes -> {sw}x{sh} rgb (colour.yuv420p_small_rgb)"] = _ms(lambda y: colour.yuv420p_small_rgb(y, (sh, sw), cs, full), yuv)
        enh = Enhancer.from_pretrained(backend="onnx", stabilize=0.9)
        small = [cv2.resize(f, (sw, sh), interpolation=cv2.INTER_AREA).transpose(2, 0, 1)[None].astype(np.float32) / 255 for f in rgb]
        be = enh.backend
        be.predict_gamma(small[0])
        ms["network onnx, 1 frame, all threads"] = _ms(be.predict_gamma, small)
        batch4 = [np.concatenate(small[i : i + 4]) for i in range(0, len(small) - 3, 4)]
        be.predict_gamma(batch4[0])
        wall4 = _ms(be.predict_gamma, batch4)
        _ms.last_cpu = round(_ms.last_cpu / 4, 3)
        ms["network onnx, batch of 4 frame-parallel (per frame)"] = round(wall4 / 4, 3)
        gam = [be.predict_gamma(s) for s in small]
        ms["gamma post (stabilize 0.9)"] = _ms(lambda i: enh.post(gam[i], small[i]), range(len(small)))
        lg = [np.ascontiguousarray(enh.post(g, s)[0].transpose(1, 2, 0)) for g, s in zip(gam, small)]
        lut = enh._get_lut()
        ms["curve: GammaLUT.apply (full res)"] = _ms(lambda i: lut.apply(rgb[i], lg[i]), range(len(rgb)))
        try:
            buf = np.empty_like(rgb[0])
            ms["curve: GammaLUT.apply into a kept output"] = _ms(lambda i: lut.apply(rgb[i], lg[i], out=buf), range(len(rgb)))
        except TypeError:  # before issue 13: no out=
            pass
        if hasattr(enh.reuse, "triggers"):
            reuse = type(enh.reuse)(every=8)
            reuse(lambda x: x, small[0])
            ms["reuse statistics (GammaReuse, per frame)"] = _ms(lambda s: reuse(lambda x: x, s), small)
        if hasattr(lut, "apply_yuv420p"):
            ms["curve in yuv: GammaLUT.apply_yuv420p (yuv in, yuv out)"] = _ms(lambda i: lut.apply_yuv420p(yuv[i], lg[i], cs, full), range(len(yuv)))
        ms["colour out: rgb -> yuv420p (colour.rgb_to_yuv420p_np)"] = _ms(lambda f: colour.rgb_to_yuv420p_np(f, cs, full), rgb)
        # encode alone: yuv420p frames into libx264 at the preset
        for threads in (0,):
            out = Path(tmp) / "enc.mp4"
            with av.open(str(out), "w") as oc:
                st = oc.add_stream("libx264", rate=30, options={"crf": "18", "preset": a.preset})
                st.width, st.height, st.pix_fmt = w, h, "yuv420p"
                if threads:
                    st.codec_context.thread_count = threads
                vfs = [av.VideoFrame.from_ndarray(y, format="yuv420p") for y in yuv]
                t, c0 = time.perf_counter(), _cpu()
                for vf in vfs:
                    for p in st.encode(vf):
                        oc.mux(p)
                for p in st.encode():
                    oc.mux(p)
                _ms.last_cpu = round((_cpu() - c0) / len(vfs) * 1000, 3)
                ms[f"encode libx264 {a.preset} (wall, threads auto)"] = round((time.perf_counter() - t) / len(vfs) * 1000, 3)
    res["note"] = "ms_per_frame: median wall ms per call; cpu_ms_per_frame: process CPU ms per call (all threads), mean"
    for k, v in ms.items():
        c = res["cpu_ms_per_frame"].get(k)
        print(f"{v:8.2f} ms wall  {'' if c is None else f'{c:8.2f} ms CPU'}  {k}")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
