"""Where in-memory inference time goes at one size (issue 13; docs/PROFILE.md section 5).

    python tools/inmemory_profile.py --size 1280x720

1. image defaults (the network on every frame), batches of 4: wall and process CPU per frame
   of ``Enhancer.predict`` (downscale, network, post-processing, gain) and ``Enhancer.apply``
   (the curve at full resolution);
2. video defaults (gamma reuse, stabilizer) on the clip in order: cProfile's own time per
   function, per frame;
3. onnxruntime's per-operator profile of one 256 x 144 network run (one thread).
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import json
import os
import pstats
import tempfile
import time


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--frames", type=int, default=96)
    a = ap.parse_args()
    w, h = (int(v) for v in a.size.split("x"))

    import numpy as np

    from psenet_stream.defaults import VIDEO_GAMMA_EVERY, VIDEO_SMOOTHING, VIDEO_STABILIZE
    from psenet_stream.enhancer import Enhancer
    from psenet_stream.evaluation.bench import bench_frames, measure_stream

    image = Enhancer.from_pretrained(backend="onnx")
    pool, desc = bench_frames(w, h, a.frames)
    print(f"frames: {desc}, {w}x{h}")
    chunk, out = pool[:4], np.empty_like(pool[:4])
    image.enhance_frames(chunk, out=out)
    tp = ta = cp = ca = 0.0
    n = 20
    for _ in range(n):
        t0, c0 = time.perf_counter(), time.process_time()
        plans = image.predict(chunk)
        t1, c1 = time.perf_counter(), time.process_time()
        for i, p in enumerate(plans):
            image.apply(chunk[i], p, out=out[i])
        t2, c2 = time.perf_counter(), time.process_time()
        tp, cp, ta, ca = tp + t1 - t0, cp + c1 - c0, ta + t2 - t1, ca + c2 - c1
    k = 1e3 / (n * len(chunk))
    print(f"image defaults, per frame: predict {tp * k:.2f} ms wall / {cp * k:.2f} ms CPU; apply (curve) {ta * k:.2f} wall / {ca * k:.2f} CPU")

    video = Enhancer(image.backend, smoothing=VIDEO_SMOOTHING, stabilize=VIDEO_STABILIZE, gamma_every=VIDEO_GAMMA_EVERY)
    print(f"video defaults: {measure_stream(video, pool, 2 * a.frames, 4):.1f} fps in memory")
    video.reset()
    prof = cProfile.Profile()
    prof.enable()
    frames = 0
    for i in range(0, len(pool), 4):
        video.enhance_frames(pool[i : i + 4], out=out[: len(pool[i : i + 4])])
        frames += len(pool[i : i + 4])
    prof.disable()
    r = video.reuse
    print(f"network ran on {r.predicted} of {r.predicted + r.reused} frames; own time per frame (ms):")
    st = pstats.Stats(prof)
    rows = sorted(((v[2], f"{fn[2]} ({os.path.basename(fn[0])}:{fn[1]})") for fn, v in st.stats.items()), reverse=True)[:10]
    for t, name in rows:
        print(f"  {t / frames * 1e3:6.2f}  {name}")

    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    so.enable_profiling = True
    so.profile_file_prefix = os.path.join(tempfile.mkdtemp(), "ort")
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    sess = ort.InferenceSession(str(image.backend.onnx_path), so, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((1, 3, 144, 256), dtype=np.float32)
    runs = 30
    for _ in range(runs):
        sess.run(None, {"x": x})
    events = json.load(open(sess.end_profiling()))
    per_op: collections.Counter = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            per_op[e["args"]["op_name"]] += e["dur"]
    total = sum(per_op.values())
    print(f"onnxruntime, one 256x144 run, one thread: {total / runs / 1e3:.2f} ms of kernels")
    for op, us in per_op.most_common(6):
        print(f"  {op:14s} {100 * us / total:5.1f} %  {us / runs / 1e3:.3f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
