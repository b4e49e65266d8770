"""psenet-stream serve streams.toml --ray on a real two-node Ray cluster (tests/ray/cluster.py):
two lavfi streams on two actors; one actor's process is killed; Ray restarts it and its
stream comes back, seen through the driver's merged /metrics. Then SIGHUP with an edited
TOML re-deals (one stream removed, one added), and the actor that got the new stream is
killed: Ray's restart replays its first share, and the driver gives it the current one."""

from __future__ import annotations

import json

import pytest

from tests.ray.cluster import require_cluster, run_in_cluster

pytestmark = pytest.mark.ray

TOML = """
[serve]
status_interval = 2

[[stream]]
name = "cam-a"
input = "lavfi:testsrc2=size=160x90:rate=10,realtime"

[[stream]]
name = "cam-b"
input = "lavfi:testsrc2=size=160x90:rate=10,realtime"
"""

DRIVER = r"""
import json, os, re, signal, subprocess, sys, time, urllib.request
from pathlib import Path

PORT = 9479
cmd = [sys.executable, "-m", "psenet_stream", "serve", "streams.toml", "--ray", "auto", "--metrics-port", str(PORT),
       "--status-json", "final.json", "--backend", "cpu", "--infer-size", "48", "--threads", "1"]
p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
log = {"events": []}

def metrics():
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{PORT}/metrics", timeout=2).read().decode()
    except OSError:
        return ""

def actors(text):  # actor -> pid, for the actors up
    return {m.group(1): int(m.group(3)) for m in re.finditer(r'psenet_fleet_actor_up\{actor="(\d+)",node="([^"]*)",pid="(\d+)"\} 1\.0', text)}

def frames(text, stream):
    m = re.search(r'psenet_stream_frames_total\{actor="\d+",stream="%s"\} ([0-9.e+]+)' % stream, text)
    return float(m.group(1)) if m else 0.0

def wait(cond, limit):
    t0 = time.time()
    while time.time() - t0 < limit and p.poll() is None:
        text = metrics()
        if cond(text):
            return text
        time.sleep(0.5)
    return None

try:
    text = wait(lambda t: len(actors(t)) == 2 and frames(t, "cam-a") > 5 and frames(t, "cam-b") > 5, 150)
    log["both_running"] = text is not None
    if text:
        victim_actor = re.search(r'psenet_stream_frames_total\{actor="(\d+)",stream="cam-a"\}', text).group(1)
        old_pid = actors(text)[victim_actor]
        os.kill(old_pid, signal.SIGKILL)
        t_kill = time.time()
        log["killed"] = {"actor": victim_actor, "pid": old_pid, "cam_a_frames_before": frames(text, "cam-a")}
        # down first (or already restarted), then back with a new process whose cam-a frames grow again
        back = wait(lambda t: actors(t).get(victim_actor) not in (None, old_pid) and frames(t, "cam-a") > 5, 150)
        log["back"] = back is not None
        log["back_after_s"] = round(time.time() - t_kill, 1)  # until the new process's stream showed frames again
        if back:
            log["new_pid"] = actors(back)[victim_actor]
            log["restarts"] = re.search(r'psenet_fleet_actor_restarts_total\{actor="%s"\} ([0-9.]+)' % victim_actor, back).group(1)
            log["cam_b_frames"] = frames(back, "cam-b")
        health = urllib.request.urlopen(f"http://127.0.0.1:{PORT}/healthz", timeout=2)
        log["healthz"] = [health.status, json.loads(health.read())]
        # re-deal: cam-b out, cam-c in (SIGHUP; the edit alone would also be seen)
        Path("streams.toml").write_text(Path("streams.toml").read_text().replace('name = "cam-b"', 'name = "cam-c"'))
        p.send_signal(signal.SIGHUP)
        gone = lambda t: 'stream="cam-b"' not in t
        text = wait(lambda t: frames(t, "cam-c") > 5 and gone(t) and frames(t, "cam-a") > 0, 120)
        log["redealt"] = text is not None
        if text:
            c_actor = re.search(r'psenet_stream_frames_total\{actor="(\d+)",stream="cam-c"\}', text).group(1)
            log["cam_c_actor"] = c_actor
            c_pid = actors(text)[c_actor]
            os.kill(c_pid, signal.SIGKILL)  # Ray restarts it with its first share (cam-b)
            back = wait(lambda t: actors(t).get(c_actor) not in (None, c_pid) and frames(t, "cam-c") > 5 and gone(t), 150)
            log["redeal_survives_restart"] = back is not None
finally:
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=90)
    log["rc"] = p.returncode
    log["stderr"] = err.decode()[-5000:]
    Path("result.json").write_text(json.dumps(log))
"""


@pytest.mark.timeout(900)
def test_serve_ray_actor_killed_comes_back(tmp_path):
    require_cluster()
    pytest.importorskip("prometheus_client")
    work = tmp_path / "w"
    work.mkdir()
    (work / "streams.toml").write_text(TOML)
    run = run_in_cluster(DRIVER, work, timeout=600)
    assert (work / "result.json").exists(), run.stdout.decode()[-3000:] + run.stderr.decode()[-3000:]
    res = json.loads((work / "result.json").read_text())
    assert res.get("both_running"), res["stderr"]
    assert res.get("back"), res  # restarted by Ray, the stream running again in a new process
    assert res["new_pid"] != res["killed"]["pid"]
    assert float(res["restarts"]) >= 1
    assert res["cam_b_frames"] > 0  # the other actor's stream kept running
    assert res["healthz"][0] == 200 and set(res["healthz"][1]["streams"]) == {"cam-a", "cam-b"}
    assert res.get("redealt"), res  # SIGHUP: cam-b stopped, cam-c running on an actor
    assert res.get("redeal_survives_restart"), res  # restarted, it serves cam-c again, not cam-b
    assert "reload: 1 added, 1 removed" in res["stderr"]
    assert res["rc"] == 0, res["stderr"]
    final = json.loads((work / "final.json").read_text())
    assert set(final) == {"cam-a", "cam-c"}
    assert all(st["frames_out"] > 0 for st in final.values())
    assert "restarted" in res["stderr"]  # the driver says so
