"""Sum a ``py-spy record -f raw --threads`` profile by pipeline stage (issue 13).

    py-spy record -r 200 -f raw -o prof.txt --threads -- python run.py ...
    python tools/pyspy_stages.py prof.txt

Only Python threads are sampled: x264's and onnxruntime's own worker threads are not (their
cost shows in the calling line only while that line waits on them).
"""

from __future__ import annotations

import sys
from collections import Counter

# first match wins: (stage, substring of the stack)
STAGES = (
    ("network", "predict_gamma"),
    ("gamma post", "GammaPost"),
    ("reuse statistics", "GammaReuse"),
    ("downscale", "small_frames"),
    ("downscale", "cv2.resize"),
    ("curve", "GammaLUT"),
    ("colour out (rgb->yuv420p)", "rgb_to_yuv420p"),
    ("encode+mux", "VideoFileSink.write"),
    ("encode+mux", "VideoFileSink.finish"),
    ("colour in (swscale to rgb24)", "to_ndarray"),
    ("decode+demux", "_decode_raw"),
    ("predict (other)", "Enhancer.predict"),
    ("queues/waits", "Queue.get"),
    ("queues/waits", "put_until"),
)


def stage_of(stack: str) -> str:
    for name, key in STAGES:
        if key in stack:
            return name
    return "other (startup, imports)"


def main(path: str) -> None:
    c: Counter = Counter()
    for line in open(path):
        stack, _, n = line.rstrip().rpartition(" ")
        c[stage_of(stack)] += int(n)
    total = sum(c.values())
    for k, v in c.most_common():
        print(f"{k:32s} {v:6d} samples {100 * v / total:5.1f} %")


if __name__ == "__main__":
    main(sys.argv[1])
