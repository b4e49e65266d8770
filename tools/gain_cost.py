"""Side-by-side cost of the exposure gain: in-memory 720p inference (onnx, 1 thread, batches of 4)
with the gain on and off, alternating, 3 rounds, on 48 frames of opencv-doc's vtest.avi as they
are (EV 0) and over-exposed by +1.5 EV (linear family).

    python tools/gain_cost.py
"""

import time

import cv2
import numpy as np

from psenet_stream.enhancer import Enhancer
from psenet_stream.evaluation.photos import synthesize

cap = cv2.VideoCapture(__import__("os").path.expanduser("~/.cache/psenet-stream/data/clips/vtest.avi"))
fr = []
while len(fr) < 48:
    ok, f = cap.read()
    if not ok:
        break
    fr.append(cv2.resize(cv2.cvtColor(f, cv2.COLOR_BGR2RGB), (1280, 720)))
clips = {"EV 0 (vtest)": np.stack(fr), "EV +1.5": np.stack([synthesize(f, 1.5) for f in fr])}
for name, x in clips.items():
    res = {}
    for r in range(3):
        for gain in (True, False):
            e = Enhancer.from_pretrained(None, backend="onnx", threads=1, exposure_gain=gain)
            e(x[:4])
            t = time.perf_counter()
            for i in range(0, len(x), 4):
                e(x[i : i + 4])
            res.setdefault(gain, []).append(len(x) / (time.perf_counter() - t))
    print(name, f"gain on: {np.median(res[True]):.1f} fps, off: {np.median(res[False]):.1f} fps (median of 3, alternating)")
