"""``psenet-stream bench --streams N``: how many live streams one machine holds.

For each N, side by side in one run, the same N live 640x360 25 fps sources (lavfi
``testsrc2,realtime``: paced like cameras, decoded like them) go through:

* ``serve``: ONE ``psenet-stream serve IN=null ...`` process (one model, cross-stream batches);
* ``separate``: N ``psenet-stream IN -o -`` processes (today's one stream per process; raw
  frames to /dev/null), started together and stopped with Ctrl-C (SIGINT) after the same time.

Both with the same enhancer options (the CLI's defaults for video unless given). Per stream it
records frames written, frames dropped, and the added latency (capture -> written) p50 / p95 over the
whole run, from each process's own JSON statistics. A mode *holds* N streams when every stream
has p95 <= 100 ms and drops < 1 % of its frames. Each row also records what it cost in the
steady state (start-up left out): the cores its processes kept busy (/proc CPU time between
30 % and 90 % of the run) and their resident memory (VmRSS, summed, at 60 %). The load of the machine
(``os.getloadavg`` before and after, and ``uptime``) is recorded too: latency and drops depend
on what else runs.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

P95_LIMIT_MS = 100.0
DROP_LIMIT = 0.01
DEFAULT_SOURCE = "lavfi:testsrc2=size={w}x{h}:rate={fps},realtime"


def _enh_args(backend: str | None, threads: int | None, infer_size: str | None, weights: str | None) -> list[str]:
    a: list[str] = []
    for flag, v in (("--backend", backend), ("--threads", threads), ("--infer-size", infer_size), ("--weights", weights)):
        if v is not None:
            a += [flag, str(v)]
    return a


def _psenet() -> list[str]:
    return [sys.executable, "-m", "psenet_stream"]


def _per_stream(frames_out: int, dropped: int, p50: float | None, p95: float | None) -> dict[str, Any]:
    total = frames_out + dropped
    return {
        "frames": frames_out,
        "dropped": dropped,
        "drop_pct": round(100.0 * dropped / total, 2) if total else None,
        "p50_ms": None if p50 is None else round(p50, 1),
        "p95_ms": None if p95 is None else round(p95, 1),
    }


def _verdict(streams: list[dict[str, Any]], n: int) -> dict[str, Any]:
    ok = len(streams) == n and all(
        s["frames"] > 0 and s["p95_ms"] is not None and s["p95_ms"] <= P95_LIMIT_MS and (s["drop_pct"] or 0.0) < 100 * DROP_LIMIT for s in streams
    )
    p95 = [s["p95_ms"] for s in streams if s["p95_ms"] is not None]
    drops = [s["drop_pct"] for s in streams if s["drop_pct"] is not None]
    fps = [s["frames"] for s in streams]
    return {
        "holds": ok,
        "worst_p95_ms": max(p95) if p95 else None,
        "worst_drop_pct": max(drops) if drops else None,
        "frames_total": sum(fps),
        "streams": streams,
    }


def run_serve(n: int, seconds: float, source: str, enh: list[str], batch: int | None, deadline_ms: float | None, workdir: Path) -> dict[str, Any]:
    out = workdir / f"serve-{n}.json"
    cmd = [*_psenet(), "serve", *[f"{source}=null" for _ in range(n)], "--metrics-port", "-1", "--status-interval", "0", "-q", "--duration", str(seconds), "--status-json", str(out), *enh]
    if batch:
        cmd += ["--batch", str(batch)]
    if deadline_ms is not None:
        cmd += ["--deadline-ms", str(deadline_ms)]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    cores, rss = _sample([p], seconds)
    try:
        _, err = p.communicate(timeout=seconds + 120)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        _, err = p.communicate()
    if p.returncode != 0 or not out.exists():
        return {"error": (err or b"").decode(errors="replace").strip().splitlines()[-1:] or [f"exit {p.returncode}"], "holds": False}
    st = json.loads(out.read_text())
    streams = [_per_stream(s["frames_out"], s["dropped"], s["latency_ms"]["p50"], s["latency_ms"]["p95"]) for s in st.values()]
    return _with_cost(_verdict(streams, n), cores, rss, seconds)


def run_separate(n: int, seconds: float, source: str, enh: list[str], workdir: Path) -> dict[str, Any]:
    procs = []
    outs = []
    for i in range(n):
        out = workdir / f"sep-{n}-{i}.json"
        outs.append(out)
        cmd = [*_psenet(), source, "-o", "-", "-q", "--no-progress", "--stats-json", str(out), *enh]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True))
    cores, rss = _sample(procs, seconds)
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGINT)
    errors = []
    for p in procs:
        try:
            _, err = p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            _, err = p.communicate()
        if p.returncode not in (0, 130):
            errors.append(err.decode(errors="replace").strip().splitlines()[-1:] if err else f"exit {p.returncode}")
    streams = []
    for out in outs:
        if out.exists():
            s = json.loads(out.read_text())
            streams.append(_per_stream(s["frames_out"], s["dropped"], s.get("latency_p50_ms"), s.get("latency_p95_ms")))
    res = _with_cost(_verdict(streams, n), cores, rss, seconds)
    if errors:
        res["errors"] = errors
    return res


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system, every thread) of a running process, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def _sample(procs, seconds: float) -> tuple[float, float]:
    """Sleep ``seconds``; return (cores the processes kept busy between 30 % and 90 % of it,
    their summed resident memory at 60 %, MB): the steady state, start-up left out."""
    time.sleep(seconds * 0.3)
    c0, t0 = sum(_proc_cpu(p.pid) for p in procs), time.monotonic()
    time.sleep(seconds * 0.3)
    rss = sum(_rss_mb(p.pid) for p in procs)
    time.sleep(seconds * 0.3)
    cores = (sum(_proc_cpu(p.pid) for p in procs) - c0) / max(1e-6, time.monotonic() - t0)
    time.sleep(seconds * 0.1)
    return cores, rss


def _with_cost(res: dict[str, Any], cores: float, rss_mb: float, seconds: float) -> dict[str, Any]:
    """Add what the run cost in its steady state: cores busy, CPU ms per frame written (at the
    run's mean rate), resident memory."""
    frames = res.get("frames_total") or 0
    res["cores_busy"] = round(cores, 2)
    res["cpu_ms_per_frame"] = round(1000.0 * cores * seconds / frames, 1) if frames else None
    res["rss_mb"] = round(rss_mb)
    return res


def run_streams_bench(
    counts: list[int],
    *,
    seconds: float = 20.0,
    size: tuple[int, int] = (640, 360),
    fps: int = 25,
    backend: str | None = None,
    threads: int | None = None,
    infer_size: str | None = None,
    weights: str | None = None,
    batch: int | None = None,
    deadline_ms: float | None = None,
    modes: tuple[str, ...] = ("serve", "separate"),
    progress=None,
) -> dict[str, Any]:
    """Run both modes for every N in ``counts``; returns {"meta", "rows", "max_streams"}."""
    source = DEFAULT_SOURCE.format(w=size[0], h=size[1], fps=fps)
    enh = _enh_args(backend, threads, infer_size, weights)
    rows = []
    best = {m: 0 for m in modes}
    with tempfile.TemporaryDirectory(prefix="psenet-bench-streams-") as tmp:
        work = Path(tmp)
        for n in counts:
            for mode in modes:
                load0 = os.getloadavg()
                t = time.perf_counter()
                if mode == "serve":
                    r = run_serve(n, seconds, source, enh, batch, deadline_ms, work)
                else:
                    r = run_separate(n, seconds, source, enh, work)
                r.update({"mode": mode, "n": n, "wall_s": round(time.perf_counter() - t, 1), "loadavg_before": [round(v, 2) for v in load0], "loadavg_after": [round(v, 2) for v in os.getloadavg()]})
                rows.append(r)
                if r.get("holds"):
                    best[mode] = max(best[mode], n)
                if progress is not None:
                    progress(r)
    return {
        "meta": {
            "source": source,
            "seconds": seconds,
            "enhancer_args": enh,
            "criteria": f"every stream p95 <= {P95_LIMIT_MS:g} ms and drops < {100 * DROP_LIMIT:g} %",
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
            "python": platform.python_version(),
            "uptime": _uptime(),
            "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        },
        "rows": rows,
        "max_streams": best,
    }


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5, check=False).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def format_rows(result: dict[str, Any]) -> str:
    lines = [f"{'N':>3}  {'mode':<9} {'holds':<5} {'worst p95 ms':>12} {'worst drops %':>13} {'frames':>7} {'cores busy':>10} {'RSS MB':>7}  load (1 min) before/after"]
    for r in result["rows"]:
        if "error" in r:
            lines.append(f"{r['n']:>3}  {r['mode']:<9} error: {r['error']}")
            continue
        lines.append(
            f"{r['n']:>3}  {r['mode']:<9} {'yes' if r['holds'] else 'no':<5} {_f(r['worst_p95_ms']):>12} {_f(r['worst_drop_pct'], 2):>13} {r['frames_total']:>7} "
            f"{_f(r.get('cores_busy'), 2):>10} {r.get('rss_mb', 0):>7}  "
            f"{r['loadavg_before'][0]:.2f}/{r['loadavg_after'][0]:.2f}"
        )
    m = result["max_streams"]
    lines.append("max streams held (" + result["meta"]["criteria"] + "): " + ", ".join(f"{k} {v}" for k, v in m.items()))
    lines.append(f"uptime: {result['meta']['uptime']}")
    return "\n".join(lines)


def _f(v, nd: int = 1) -> str:
    return "-" if v is None else f"{v:.{nd}f}"


def command_line(counts: list[int], **kw: Any) -> str:
    args = ["psenet-stream", "bench", "--streams", ",".join(str(c) for c in counts)]
    for k, v in kw.items():
        if v is not None:
            args += [f"--{k.replace('_', '-')}", str(v)]
    return shlex.join(args)
