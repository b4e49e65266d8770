"""The gamma-reuse quality table of docs/EVALUATION.md (issue 13): the video evaluation
(psenet_stream/evaluation/video.py) of the video defaults with the network on every frame
(k = 1) against adaptive reuse at several k and trigger thresholds.

    D=~/.cache/psenet-stream/data/clips
    .venv/bin/python tools/eval_reuse.py --max-frames 60 --json out/reuse.json \\
        $D/vtest.avi $D/Megamind.avi $D/tree.avi $D/box.mp4 $D/cup.mp4
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("clips", nargs="+")
    ap.add_argument("--max-frames", type=int, default=60)
    ap.add_argument("--long-side", type=int, default=320)
    ap.add_argument("--backend", default="onnx")
    ap.add_argument("--variants", default="k1,k4,k8,k16,k8-m0.01,k8-m0.04,k8-b0.02")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    from psenet_stream.defaults import REUSE_BRIGHTNESS, REUSE_MOTION, VIDEO_SMOOTHING, VIDEO_STABILIZE
    from psenet_stream.enhancer import Enhancer
    from psenet_stream.evaluation import video as vq
    from psenet_stream.temporal import GammaReuse

    be = Enhancer.from_pretrained(
        backend=a.backend, threads=1
    ).backend  # one backend for every run (one thread: the figures do not depend on it)
    counts: dict[str, dict] = {}

    def factory(name: str):
        k, motion, brightness, hold = 1, REUSE_MOTION, REUSE_BRIGHTNESS, 0.0
        for part in name.split("-"):
            if part.startswith("k"):
                k = int(part[1:])
            elif part.startswith("m"):
                motion = float(part[1:])
            elif part.startswith("b"):
                brightness = float(part[1:])
            elif part.startswith("h"):
                hold = float(part[1:])

        def make():
            enh = Enhancer(be, smoothing=VIDEO_SMOOTHING, stabilize=VIDEO_STABILIZE, gamma_every=k)
            enh.reuse = GammaReuse(every=k, motion=motion, brightness=brightness, cut=enh.options.scene_cut, hold=hold)
            c = counts.setdefault(name, {"frames": 0, "predicted": 0, "triggers": dict.fromkeys(GammaReuse.TRIGGERS, 0)})

            def run(x):
                before = enh.reuse.predicted
                out = enh(x)
                c["frames"] += 1
                c["predicted"] += enh.reuse.predicted - before
                return out

            run.enh = enh
            run.counts = c
            return run

        return make

    methods = {n: factory(n) for n in a.variants.split(",")}
    clips = [vq.load_clip(p, a.max_frames, a.long_side) for p in a.clips]
    # triggers are summed per method after each run (the closures keep their Enhancer)
    made: list = []

    def wrap(make):
        def m():
            fn = make()
            made.append(fn)
            return fn

        return m

    r = vq.evaluate_video(clips, {n: wrap(f) for n, f in methods.items()}, progress=lambda s: print(s, file=sys.stderr, flush=True))
    for fn in made:
        c = fn.counts
        for t, v in fn.enh.reuse.triggers.items():
            c["triggers"][t] += v
    r["reuse"] = counts
    r["setup"] = {"clips": [c[0] for c in clips], "frames": [len(c[1]) for c in clips], "long_side": a.long_side, "backend": a.backend}
    print(vq.to_markdown(r))
    for n, c in counts.items():
        print(
            f"{n}: network on {c['predicted']} of {c['frames']} frames ({100 * c['predicted'] / max(1, c['frames']):.0f} %), triggers {c['triggers']}"
        )
    if a.json:
        Path(a.json).write_text(json.dumps(r, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
