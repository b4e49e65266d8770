"""Soak: 720p live input at real-time pace through the real pipeline for N minutes.

    python -m tests.faults.soak --seconds 1200 --json out/soak.json      # the full 20 minutes
    pytest -m slow tests/faults/test_soak.py                              # the same, as a test
                                                                          # (PSENET_SOAK_S=1200)

Source: lavfi ``testsrc2=size=1280x720:rate=30,realtime`` through ``open_live_source`` (a
paced virtual camera: drop-oldest queue, read timeouts). Enhancer: the CPU backend with the
CLI's video defaults (infer size 256, temporal filtering, one inference thread). Sink: a null sink
that records latency (capture -> written), or ``--sink file`` (an mp4 through
VideoFileSink, ultrafast). Every 10 s it samples VmRSS and Threads from
/proc/self/status, the Python threads, frames and drops; per minute it reports latency
p50/p95, fps and drops. After stop it checks that no thread outlived the run.

Prints a JSON summary on stdout (and --json PATH) with the verdicts:
- rss_growth_pct: median RSS of the last minute vs. the first minute after warm-up (< 5 %)
- latency_flat: last minute's p50 <= 1.5 x first post-warm-up minute's p50 + 30 ms
- leaked_threads: Python threads alive after stop that were not there before (must be [])
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

SOURCE = "lavfi:testsrc2=size=1280x720:rate=30,realtime"


def proc_status() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "Threads"):
                out[k] = int(v.split()[0])
    return out


class LatencySink:
    """A null sink that keeps (time written, latency) pairs for the per-minute report."""

    def __init__(self):
        self.samples: list[tuple[float, float]] = []
        self.lock = threading.Lock()

    def write(self, frame, enhanced) -> None:
        now = time.perf_counter()
        with self.lock:
            self.samples.append((now, now - frame.t_capture))

    def close(self) -> None:
        pass


class TeeSink:
    def __init__(self, *sinks):
        self.sinks = sinks

    def write(self, frame, enhanced) -> None:
        for s in self.sinks:
            s.write(frame, enhanced)

    def close(self) -> None:
        for s in self.sinks:
            s.close()


def _pct(v, q):
    return round(float(np.percentile(np.asarray(v), q)) * 1000.0, 1) if len(v) else None


def soak(seconds: float, *, warmup: float = 60.0, sample_every: float = 10.0, source: str = SOURCE, sink: str = "null",
         out_dir: Path | None = None, weights: str | None = None, infer_size: str = "256", log=print) -> dict:
    from psenet_stream import pipeline
    from psenet_stream.commands._common import EnhancerOptions, make_enhancer
    from psenet_stream.io.live import open_live_source

    before_threads = {t.ident for t in threading.enumerate()}
    status0 = proc_status()
    enh = make_enhancer(EnhancerOptions(weights=weights, backend="cpu", infer_size=str(infer_size)), video=True)
    src = open_live_source(source)
    lat = LatencySink()
    sinks = [lat]
    file_sink = None
    if sink == "file":
        from psenet_stream.io.video import VideoFileSink

        out_dir = Path(out_dir or ".")
        out_dir.mkdir(parents=True, exist_ok=True)
        file_sink = VideoFileSink(out_dir / "soak.mp4", src.info, preset="ultrafast", crf=28)
        sinks.insert(0, file_sink)
    stop = threading.Event()
    result: dict = {}

    def runner():
        try:
            result["stats"] = pipeline.run(src, enh, sinks, stop=stop)
        except BaseException as e:  # noqa: BLE001 - reported in the summary
            result["error"] = f"{type(e).__name__}: {e}"

    t0 = time.perf_counter()
    th = threading.Thread(target=runner, name="soak-pipeline", daemon=True)
    th.start()
    samples = []
    next_t = t0
    while time.perf_counter() - t0 < seconds and th.is_alive():
        next_t += sample_every
        time.sleep(max(0.0, next_t - time.perf_counter()))
        st = proc_status()
        with lat.lock:
            n = len(lat.samples)
        s = {"t": round(time.perf_counter() - t0, 1), "rss_kb": st["VmRSS"], "threads": st["Threads"],
             "py_threads": threading.active_count(), "frames": n,
             "dropped": max(0, int(src.decoded) - n)}  # source + pipeline drops (+ <= 4 frames in flight)
        samples.append(s)
        log(json.dumps(s), file=sys.stderr, flush=True)
    stop.set()
    th.join(timeout=30)
    stuck = th.is_alive()
    src.close()
    if file_sink is not None:
        file_sink.close()
    stats = result.get("stats")
    enh = None
    gc.collect()
    time.sleep(1.0)
    after = [t for t in threading.enumerate() if t.ident not in before_threads]
    leaked = [t.name for t in after if t.is_alive()]
    status_end = proc_status()

    # per-minute report (10-s windows for runs shorter than 5 minutes)
    minutes = []
    elapsed = samples[-1]["t"] if samples else 0.0
    win = 60.0 if seconds >= 300 else 10.0
    with lat.lock:
        data = list(lat.samples)
    for m in range(int(np.ceil(elapsed / win))):
        lo, hi = t0 + win * m, t0 + win * (m + 1)
        ls = [x for (tw, x) in data if lo <= tw < hi]
        ss = [s for s in samples if win * m < s["t"] <= win * (m + 1)]
        dropped_in = (ss[-1]["dropped"] - ([s for s in samples if s["t"] <= win * m] or [{"dropped": 0}])[-1]["dropped"]) if ss else 0
        minutes.append({"minute": m + 1, "window_s": win, "frames": len(ls), "fps": round(len(ls) / win, 2), "latency_p50_ms": _pct(ls, 50),
                        "latency_p95_ms": _pct(ls, 95), "dropped": dropped_in,
                        "rss_mb": round(float(np.median([s["rss_kb"] for s in ss])) / 1024, 1) if ss else None,
                        "threads": max((s["threads"] for s in ss), default=None)})
    warm = [s for s in samples if s["t"] > warmup]
    first_min = [s["rss_kb"] for s in warm if s["t"] <= warmup + win] or [s["rss_kb"] for s in warm[:6]]
    last_min = [s["rss_kb"] for s in warm if s["t"] > elapsed - win] or [s["rss_kb"] for s in warm[-6:]]
    rss_growth = (float(np.median(last_min)) / float(np.median(first_min)) - 1.0) * 100.0 if first_min and last_min else None
    full = [mm for mm in minutes if mm["frames"] and (mm["minute"] - 1) * win >= warmup and mm["minute"] * win <= elapsed]
    lat_first, lat_last = (full[0]["latency_p50_ms"], full[-1]["latency_p50_ms"]) if full else (None, None)
    latency_flat = None if lat_first is None else bool(lat_last <= 1.5 * lat_first + 30.0)
    thread_counts = [s["threads"] for s in warm]
    summary = {
        "source": SOURCE if source == SOURCE else "custom",
        "sink": sink,
        "seconds": round(elapsed, 1),
        "warmup_s": warmup,
        "backend": stats.backend if stats else None,
        "frames_out": stats.frames_out if stats else len(data),
        "dropped": stats.dropped if stats else int(src.dropped),
        "fps": round(stats.fps, 2) if stats else None,
        "latency_p50_ms": stats.latency_p50_ms if stats else None,
        "latency_p95_ms": stats.latency_p95_ms if stats else None,
        "error": result.get("error"),
        "pipeline_stuck_after_stop": stuck,
        "rss_mb_start": round(status0["VmRSS"] / 1024, 1),
        "rss_mb_after_warmup": round(float(np.median(first_min)) / 1024, 1) if first_min else None,
        "rss_mb_last_minute": round(float(np.median(last_min)) / 1024, 1) if last_min else None,
        "rss_mb_peak": round(status_end["VmHWM"] / 1024, 1),
        "rss_growth_pct": round(rss_growth, 2) if rss_growth is not None else None,
        "latency_p50_first_ms": lat_first,
        "latency_p50_last_ms": lat_last,
        "latency_flat": latency_flat,
        "threads_min_max_during": [min(thread_counts), max(thread_counts)] if thread_counts else None,
        "threads_before": status0["Threads"],
        "threads_after_stop": status_end["Threads"],
        "py_threads_before": len(before_threads),
        "leaked_threads": leaked,
        "minutes": minutes,
        "samples": samples,
    }
    summary["ok"] = bool(
        not summary["error"] and not stuck and not leaked and summary["frames_out"] > 0
        and (rss_growth is None or rss_growth < 5.0) and latency_flat is not False
    )
    return summary


def flaky_soak(seconds: float, *, up: float = 2.5, down: float = 1.0, out_dir: Path, weights: str | None = None, sample_every: float = 2.0,
               log=print) -> dict:
    """The live filter with a camera that keeps dropping and returning: a fake network camera
    (tests/faults/ts_camera.py) sends ``up`` seconds of frames, hangs up, is gone for ``down``
    seconds (connections refused), and comes back, for ``seconds``. The live source reconnects
    each time; the recording (``open_sink(..., live=True)``: temporary name, then commit) and a
    latency sink go on. Returns a summary with the verdicts: no error, not stuck after stop,
    no leaked thread, one reconnect per outage, the recording committed and playable, no
    temporary file left, RSS growth after the first cycle."""
    from psenet_stream import pipeline
    from psenet_stream.commands._common import EnhancerOptions, make_enhancer
    from psenet_stream.io.live import open_live_source
    from psenet_stream.io.sinks import open_sink
    from tests.faults.conftest import cli_env
    from tests.live_helpers import Proc, free_port

    root = Path(__file__).resolve().parents[2]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    before_threads = {t.ident for t in threading.enumerate()}
    enh = make_enhancer(EnhancerOptions(weights=weights, backend="cpu", infer_size="64", threads=1), video=True)
    done = threading.Event()
    cams: list = []
    cycles = [0]

    def cameras():
        while not done.is_set():
            cam = Proc([sys.executable, "-m", "tests.faults.ts_camera", "--port", str(port), "--seconds", str(up), "--then", "close"],
                       cwd=str(root), env=cli_env())
            cams.append(cam)
            cam.wait_line("listening", 30)
            cycles[0] += 1
            while cam.p.poll() is None and not done.is_set():
                time.sleep(0.05)
            cam.stop()
            done.wait(down)

    cam_thread = threading.Thread(target=cameras, name="soak-cameras", daemon=True)
    cam_thread.start()
    src = open_live_source(f"tcp://127.0.0.1:{port}", format="mpegts", read_timeout=1.0, open_timeout=10.0, backoff_initial=0.2,
                           backoff_max=0.5, wait_first=True)
    final = out_dir / "flaky.mp4"
    lat = LatencySink()
    rec = open_sink(final, src.info, live=True, preset="ultrafast", crf=30)
    stop = threading.Event()
    result: dict = {}

    def runner():
        try:
            result["stats"], result["partial"] = pipeline.run_to_sinks(src, enh, [rec, lat], live=True, stop=stop)
        except BaseException as e:  # noqa: BLE001 - reported in the summary
            result["error"] = f"{type(e).__name__}: {e}"

    t0 = time.perf_counter()
    th = threading.Thread(target=runner, name="soak-pipeline", daemon=True)
    th.start()
    samples = []
    while time.perf_counter() - t0 < seconds and th.is_alive():
        time.sleep(sample_every)
        st = proc_status()
        with lat.lock:
            n = len(lat.samples)
        samples.append({"t": round(time.perf_counter() - t0, 1), "rss_kb": st["VmRSS"], "threads": st["Threads"], "frames": n,
                        "reconnects": src.reconnects})
        log(json.dumps(samples[-1]), file=sys.stderr, flush=True)
    stop.set()
    th.join(timeout=30)
    stuck = th.is_alive()
    src.close()
    done.set()
    cam_thread.join(timeout=30)
    for c in cams:
        c.stop()
    enh = None
    gc.collect()
    time.sleep(1.0)
    leaked = [t.name for t in threading.enumerate() if t.ident not in before_threads and t.is_alive()]
    frames_in_file = None
    if final.exists():
        import av

        with av.open(str(final)) as c:
            frames_in_file = sum(1 for _ in c.decode(video=0))
    temps = [p.name for p in out_dir.iterdir() if p.name.startswith(".")]
    rss = [s["rss_kb"] for s in samples]
    third = max(1, len(rss) // 3)
    growth = (float(np.median(rss[-third:])) / float(np.median(rss[third : 2 * third] or rss[:third])) - 1.0) * 100.0 if len(rss) >= 3 else None
    stats = result.get("stats")
    summary = {
        "seconds": round(time.perf_counter() - t0, 1),
        "camera_cycles": cycles[0],
        "reconnects": src.reconnects,
        "outages_s": [round(o, 2) for o in getattr(src, "outages", [])],
        "frames_out": stats.frames_out if stats else None,
        "frames_in_file": frames_in_file,
        "error": result.get("error"),
        "pipeline_stuck_after_stop": stuck,
        "leaked_threads": leaked,
        "temporaries_left": temps,
        "rss_growth_pct": round(growth, 2) if growth is not None else None,
        "samples": samples,
    }
    summary["ok"] = bool(
        not summary["error"] and not stuck and not leaked and not temps and frames_in_file and summary["reconnects"] >= max(1, cycles[0] - 2)
    )
    return summary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1200.0, help="duration (default 1200 = 20 minutes)")
    ap.add_argument("--warmup", type=float, default=None, help="seconds excluded from the growth check (default min(60, duration/4))")
    ap.add_argument("--sink", choices=["null", "file"], default="null")
    ap.add_argument("--out-dir", default="out/soak")
    ap.add_argument("--source", default=SOURCE)
    ap.add_argument("--json", help="also write the summary here")
    a = ap.parse_args(argv)
    warm = a.warmup if a.warmup is not None else min(60.0, a.seconds / 4)
    s = soak(a.seconds, warmup=warm, sink=a.sink, out_dir=Path(a.out_dir), source=a.source,
             weights=os.environ.get("PSENET_STREAM_WEIGHTS"))
    text = json.dumps(s, indent=1)
    print(text)
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(text + "\n")
    return 0 if s["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
