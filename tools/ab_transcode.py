"""Before/after of the file transcode: plain and enhanced, for one or more copies of the code,
in interleaved rounds (each run a fresh process), with the load average of the machine.

    python tools/ab_transcode.py IN.mp4 --code before=/tmp/base --code after=. --rounds 3 --json out.json

``--code NAME=DIR``: a folder holding a ``psenet_stream`` package (e.g. ``git archive BASE
psenet_stream | tar -x -C DIR``); each run uses it through PYTHONPATH, run from that folder.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("--code", action="append", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--preset", default="veryfast")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    src = str(Path(a.src).resolve())
    codes = dict(c.split("=", 1) for c in a.code)
    runs = []
    with tempfile.TemporaryDirectory(prefix="psenet-ab-") as tmp:
        for rnd in range(a.rounds):
            for name, d in codes.items():
                for mode in ("plain", "enhanced"):
                    env = dict(os.environ, PYTHONPATH=str(Path(d).resolve()))
                    load = os.getloadavg()[0]
                    out = subprocess.run(
                        [sys.executable, str(HERE / "transcode_once.py"), src, str(Path(tmp) / f"{name}-{mode}.mp4"), mode, "--preset", a.preset],
                        env=env, cwd=str(Path(d).resolve()), capture_output=True, text=True, check=True,
                    )
                    r = json.loads(out.stdout.strip().splitlines()[-1]) | {"code": name, "round": rnd, "load1": round(load, 2)}
                    runs.append(r)
                    print(json.dumps(r), flush=True)
    summary = {}
    for name in codes:
        by = {m: [r for r in runs if r["code"] == name and r["mode"] == m] for m in ("plain", "enhanced")}
        ratios = [e["wall_s"] / p["wall_s"] for p, e in zip(by["plain"], by["enhanced"])]
        cpu = [e["cpu_s"] / p["cpu_s"] for p, e in zip(by["plain"], by["enhanced"])]
        summary[name] = {
            "wall_ratio_median": round(statistics.median(ratios), 3),
            "wall_ratio_range": [round(min(ratios), 3), round(max(ratios), 3)],
            "cpu_ratio_median": round(statistics.median(cpu), 3),
            "cpu_ratio_range": [round(min(cpu), 3), round(max(cpu), 3)],
            "plain_cpu_ms_per_frame": round(1000 * statistics.median(r["cpu_s"] / r["frames"] for r in by["plain"]), 2),
            "enhanced_cpu_ms_per_frame": round(1000 * statistics.median(r["cpu_s"] / r["frames"] for r in by["enhanced"]), 2),
        }
    print(json.dumps(summary, indent=2))
    if a.json:
        Path(a.json).write_text(json.dumps({"runs": runs, "summary": summary, "preset": a.preset, "src": a.src}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
