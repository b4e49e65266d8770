"""A fake network camera: paced H.264 in MPEG-TS over ``tcp://127.0.0.1:PORT?listen=1``.

    python -m tests.faults.ts_camera --port 9010 --size 320x240 --seconds 3 --then stall

Waits for one client, sends ``--seconds`` of frames at real-time pace, then:
``--then close`` closes the connection (the camera hung up), ``--then stall`` keeps the
socket open and sends nothing (the camera froze; only a read timeout notices), or
``--then exit`` exits at once without closing cleanly. Prints "listening PORT" first.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from fractions import Fraction

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--size", default="320x240")
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--then", choices=["close", "stall", "exit"], default="close")
    ap.add_argument("--stall", type=float, default=30.0)
    a = ap.parse_args(argv)
    import av

    w, h = (int(v) for v in a.size.split("x"))
    print(f"listening {a.port}", flush=True)
    oc = av.open(f"tcp://127.0.0.1:{a.port}?listen=1&listen_timeout=20000", "w", format="mpegts")
    s = oc.add_stream("libx264", rate=a.fps, options={"preset": "ultrafast", "tune": "zerolatency", "g": str(a.fps), "bf": "0"})
    s.width, s.height, s.pix_fmt = w, h, "yuv420p"
    n = int(a.seconds * a.fps)
    t0 = time.monotonic()
    base = np.zeros((h, w, 3), np.uint8)
    for i in range(n):
        img = base.copy()
        img[..., 0] = (i * 7) % 256
        img[:, : max(1, (i * 5) % w), 1] = 200
        vf = av.VideoFrame.from_ndarray(img, format="rgb24")
        vf.pts, vf.time_base = i, Fraction(1, a.fps)
        for p in s.encode(vf):
            oc.mux(p)
        time.sleep(max(0.0, t0 + (i + 1) / a.fps - time.monotonic()))
    if a.then == "stall":
        time.sleep(a.stall)
    if a.then == "exit":
        os._exit(0)
    for p in s.encode(None):
        oc.mux(p)
    oc.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
