"""psenet-stream batch --ray on a real two-node Ray cluster (tests/ray/cluster.py), with the
worker node killed mid-run: the batch still finishes, every output decodes with every
frame, and nothing is duplicated or left half-written."""

from __future__ import annotations

import json

import pytest

from tests.media import make_video, read_video
from tests.ray.cluster import require_cluster, run_in_cluster

pytestmark = pytest.mark.ray

CLIPS = 10
FRAMES = 120

DRIVER = r"""
import json, subprocess, sys, time
from pathlib import Path
from tests.ray.cluster import kill_worker_node, worker_node_pids

lib, out = Path(sys.argv[1] if len(sys.argv) > 1 else "lib"), Path("out")
cmd = [sys.executable, "-m", "psenet_stream", "batch", "lib", "-o", "out", "--ray", "auto", "--stats-json", "stats.json",
       "--backend", "cpu", "--infer-size", "48", "--threads", "1", "--progress"]
p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
# kill the worker node once one of its processes is writing a file
t0, killed = time.time(), 0
while time.time() - t0 < 180 and p.poll() is None:
    staging = out / ".psenet-batch"
    # attempt folders are named <pid>-<random>: one of the worker node's processes is writing a file
    victims = {str(pid) for pid in worker_node_pids()}
    writing = [d for d in staging.glob("*/*") if d.name.split("-")[0] in victims and any(d.iterdir())] if staging.exists() else []
    if writing:
        killed = kill_worker_node()
        break
    time.sleep(0.05)
remaining_when_killed = sum(1 for _ in Path("lib").glob("*.mp4")) - len(list(out.glob("*.mp4")))
stdout, stderr = p.communicate(timeout=240)
Path("result.json").write_text(json.dumps({"rc": p.returncode, "killed": killed, "remaining_when_killed": remaining_when_killed,
                                           "stderr": stderr.decode()[-4000:]}))
"""


def test_batch_survives_a_dead_worker_node(tmp_path):
    require_cluster()
    work = tmp_path / "w"
    lib = work / "lib"
    lib.mkdir(parents=True)
    for i in range(CLIPS):
        make_video(lib / f"clip{i}.mp4", frames=FRAMES, width=192, height=108)
    run = run_in_cluster(DRIVER, work, timeout=420)
    assert (work / "result.json").exists(), run.stdout.decode()[-3000:] + run.stderr.decode()[-3000:]
    res = json.loads((work / "result.json").read_text())
    (work / "result.json").rename(work / "result-first.json")
    (work / "stats.json").rename(work / "stats-first.json")
    assert run.returncode == 0, res
    assert res["killed"] > 0, "the worker node was never killed mid-run: " + res["stderr"]
    assert res["remaining_when_killed"] > 0  # it died while writing a file, with files still to do
    assert res["rc"] == 0, res["stderr"]
    out = work / "out"
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() or p.is_dir())
    assert files == [f"clip{i}.mp4" for i in range(CLIPS)], files  # no staging, temporary or partial file left
    for i in range(CLIPS):
        assert read_video(out / f"clip{i}.mp4")["frames"] == FRAMES
    stats = json.loads((work / "stats-first.json").read_text())
    assert stats["done"] + stats["skipped"] == CLIPS and stats["failed"] == 0, stats
    assert stats["frames"] == FRAMES * stats["done"]
    assert len(stats["nodes"]) >= 1
    assert "frames/s per worker" in res["stderr"]

    # resumable: the same command again skips all of them and rewrites nothing
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    again = run_in_cluster(DRIVER.replace("kill_worker_node()", "0"), work, timeout=300)
    res2 = json.loads((work / "result.json").read_text())
    assert again.returncode == 0 and res2["rc"] == 0, res2
    assert f"0 done, {CLIPS} skipped, 0 failed" in res2["stderr"]
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == mtimes
