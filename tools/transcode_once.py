"""One timed file transcode, plain or enhanced with the video defaults (issue 13 profiling).

    python tools/transcode_once.py IN.mp4 OUT.mp4 plain|enhanced [--preset veryfast] [--backend onnx]

Prints one JSON line: wall seconds, process CPU seconds (every thread: decode, network, curve,
x264), fps, the pipeline's per-stage seconds and, enhanced, the network runs and triggers.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time


def _thread_cpu(seen: dict) -> None:
    """Record the CPU seconds of every thread of this process (tid -> (name, seconds))."""
    import os

    import threading

    tick = os.sysconf("SC_CLK_TCK")
    py = {str(t.native_id): t.name for t in threading.enumerate()}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                st = f.read()
            with open(f"/proc/self/task/{tid}/comm") as f:
                name = f.read().strip()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2 :].split()
        # Python threads by their name (psenet-read, psenet-write, psenet-onnx_0, ...); native
        # ones (x264, onnxruntime's pool, the decoder's) as "native:<comm>"
        name = py.get(tid) or (seen.get(tid, ("native:" + name,))[0])
        seen[tid] = (name, (int(fields[11]) + int(fields[12])) / tick)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("mode", choices=("plain", "enhanced"))
    ap.add_argument("--preset", default="veryfast")
    ap.add_argument("--backend", default="onnx")
    a = ap.parse_args()
    from psenet_stream import defaults, pipeline
    from psenet_stream.enhancer import Enhancer

    enh = None
    if a.mode == "enhanced":
        enh = Enhancer.from_pretrained(
            backend=a.backend, smoothing=defaults.VIDEO_SMOOTHING, stabilize=defaults.VIDEO_STABILIZE, gamma_every=defaults.VIDEO_GAMMA_EVERY
        )
    import threading

    seen: dict = {}
    done = threading.Event()

    def sample() -> None:  # threads come and go: sample their CPU time while they run
        while not done.wait(0.2):
            _thread_cpu(seen)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t = time.perf_counter()
    st = pipeline.enhance_file(a.src, a.dst, enh, preset=a.preset, overwrite=True)
    wall = time.perf_counter() - t
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    _thread_cpu(seen)
    done.set()
    by_name: dict = {}
    for name, sec in seen.values():
        by_name[name] = round(by_name.get(name, 0.0) + sec, 2)
    r = {
        "mode": a.mode,
        "wall_s": round(wall, 3),
        "cpu_s": round(ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime, 3),
        "frames": st.frames_out,
        "minor_faults": ru1.ru_minflt - ru0.ru_minflt,
        "fps": round(st.frames_out / wall, 2),
        "stage_seconds": {k: round(v, 3) for k, v in st.stage_seconds.items()},
        "thread_cpu_s": dict(sorted(by_name.items(), key=lambda kv: -kv[1])),  # whole process life, sampled every 0.2 s
    }
    reuse = getattr(enh, "reuse", None)
    if reuse is not None:
        r["predicted"] = reuse.predicted
        r["triggers"] = dict(getattr(reuse, "triggers", {}) or {})
    print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
