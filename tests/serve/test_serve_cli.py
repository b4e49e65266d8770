"""``psenet-stream serve`` as a user runs it: a TOML file, SIGHUP to reload, SIGTERM to drain,
metrics on 127.0.0.1, one status line per stream, stream names in the logs, no credentials."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request

import pytest

from tests.live_helpers import PSENET, decode_all, free_port, subprocess_env, wait_port

pytestmark = pytest.mark.timeout(240)

LAVFI = "lavfi:testsrc2=size=160x90:rate=25,realtime"


def toml_text(tmp_path, dead_port, extra=""):
    return (
        "[serve]\nstatus_interval = 1\n"
        f'[[stream]]\nname = "front"\ninput = "{LAVFI}"\noutputs = ["{tmp_path / "front.mp4"}"]\n'
        f'[[stream]]\nname = "yard"\ninput = "rtsp://admin:S3cretPw@127.0.0.1:{dead_port}/cam"\nopen_timeout = 1.0\nread_timeout = 1.0\n'
        + extra
    )


def frames_total(url: str, stream: str) -> float:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as r:
        text = r.read().decode()
    for line in text.splitlines():
        if line.startswith(f'psenet_stream_frames_total{{stream="{stream}"}}'):
            return float(line.split()[-1])
    return -1.0


def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_serve_reloads_on_sighup_and_drains_on_sigterm(tmp_path):
    port, dead = free_port(), free_port()
    toml = tmp_path / "streams.toml"
    toml.write_text(toml_text(tmp_path, dead))
    err_path = tmp_path / "stderr.txt"
    url = f"http://127.0.0.1:{port}"
    cmd = [*PSENET, "serve", str(toml), "--backend", "cpu", "--threads", "1", "--infer-size", "64", "--metrics-port", str(port), "--status-json", str(tmp_path / "final.json")]
    with open(err_path, "wb") as err:
        p = subprocess.Popen(cmd, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    try:
        assert wait_port(port, 60), err_path.read_text()
        wait_for(lambda: frames_total(url, "front") > 20, 60, "frames of the running stream")
        with urllib.request.urlopen(url + "/healthz", timeout=5) as r:
            health = json.loads(r.read())
        assert health == {"status": "degraded", "streams": {"front": "running", "yard": "reconnecting"}}
        with urllib.request.urlopen(url + "/metrics", timeout=5) as r:
            assert "S3cretPw" not in r.read().decode()
        # add a stream: edit the file, then SIGHUP (the file watcher may also pick it up: either way once)
        toml.write_text(toml_text(tmp_path, dead, f'[[stream]]\nname = "gate"\ninput = "{LAVFI}"\noutputs = ["{tmp_path / "gate.mp4"}"]\n'))
        os.kill(p.pid, signal.SIGHUP)
        wait_for(lambda: frames_total(url, "gate") > 20, 60, "frames of the added stream")
        before = frames_total(url, "front")
        time.sleep(1.0)
        assert frames_total(url, "front") > before + 5  # the first stream went on
        os.kill(p.pid, signal.SIGTERM)
        rc = p.wait(60)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    err = err_path.read_text()
    assert rc == 0, err
    final = json.loads((tmp_path / "final.json").read_text())
    for name in ("front", "gate"):  # every output closed, complete, with every frame written
        assert final[name]["state"] == "stopped"
        assert len(decode_all(tmp_path / f"{name}.mp4")) == final[name]["frames_out"] > 20
    assert final["yard"]["frames_out"] == 0 and final["yard"]["last_error"]
    assert "S3cretPw" not in err and "S3cretPw" not in json.dumps(final)
    assert "[yard] cannot open rtsp://admin:***@127.0.0.1" in err  # logs carry the stream name, masked
    assert any(line.startswith("front ") and " fps " in line for line in err.splitlines())  # status lines
    assert any(line.startswith("yard ") and "reconnecting" in line for line in err.splitlines())
    assert "[gate]" in err and "draining" in err
