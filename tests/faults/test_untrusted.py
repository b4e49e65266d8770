"""Untrusted files and secrets.

- a pickle whose __reduce__ runs code, disguised as a weight file (zip and legacy pickle
  formats) or as an official checkpoint, is refused with a clear error and never runs
- a TensorRT engine is checked against its sidecar (hash, weights, GPU, versions) before
  loading: the validation function, on the CPU
- credentials in camera / publish URLs never appear in stderr, even with -vv
- the HTTP preview binds 127.0.0.1 unless --bind says otherwise
"""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.faults.conftest import FAST, cli_env
from tests.live_helpers import free_port

MARKER_ENV = "PSENET_FAULT_MARKER"


class Payload:
    """Creates a directory when unpickled: proof that the pickle ran code."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _evil_weights(path: Path, marker: Path, legacy: bool) -> Path:
    from psenet_stream.model import PSENet
    from psenet_stream.weights_io import FORMAT

    payload = {"format": FORMAT, "state_dict": PSENet().state_dict(), "meta": {"note": Payload(marker)}}
    if legacy:
        with open(path, "wb") as f:
            pickle.dump(payload, f, protocol=2)
    else:
        torch.save(payload, path)
    return path


@pytest.mark.parametrize("legacy", [False, True], ids=["torch-zip", "legacy-pickle"])
def test_malicious_weights_are_refused_in_process(tmp_path, legacy):
    from psenet_stream.errors import BackendError
    from psenet_stream.weights_io import load_model, read_official_checkpoint

    marker = tmp_path / "pwned"
    evil = _evil_weights(tmp_path / "weights.pt", marker, legacy)
    with pytest.raises(BackendError, match="refusing weights .* could run code") as ei:
        load_model(evil)
    assert "weights_only" not in str(ei.value) and "False" not in str(ei.value)  # no advice to disable the guard
    with pytest.raises(BackendError, match="refusing .* could run code") as ei:
        read_official_checkpoint(evil)
    assert "weights_only" not in str(ei.value)
    assert not marker.exists(), "the pickle payload ran"


def test_malicious_weights_are_refused_by_the_cli(tmp_path, forkcli):
    from tests.media import make_video

    marker = tmp_path / "pwned"
    evil = _evil_weights(tmp_path / "evil.pt", marker, legacy=False)
    clip = tmp_path / "c.mp4"
    make_video(clip, frames=4)
    r = forkcli.run([clip, "-o", tmp_path / "o.mp4", *FAST, "--weights", evil], timeout=60)
    assert r["rc"] == 5, r["stderr"]
    assert "Traceback" not in r["stderr"] and "refusing weights" in r["stderr"] and "hint:" in r["stderr"], r["stderr"]
    assert "weights_only" not in r["stderr"], r["stderr"]
    assert not (tmp_path / "o.mp4").exists()
    r = forkcli.run(["import-weights", evil, "-o", tmp_path / "w.pt"], timeout=60)
    assert r["rc"] == 5 and "Traceback" not in r["stderr"] and "refusing" in r["stderr"], r["stderr"]
    assert "weights_only" not in r["stderr"], r["stderr"]
    assert not (tmp_path / "w.pt").exists()
    assert not marker.exists(), "the pickle payload ran"


# --- TensorRT engines: validated before loading --------------------------------------------


@pytest.fixture
def engine(tmp_path):
    from psenet_stream.backends import tensorrt as trt

    p = tmp_path / "psenet-abc.ep"
    p.write_bytes(b"not really an engine, but bytes with a hash" * 10)
    vers = {"torch": "2.13.0", "cuda": "13.0", "torch_tensorrt": "2.13.0", "tensorrt": "10.16.1"}
    trt.write_sidecar(p, weights_sha256="a" * 64, weights_path="w.pt", smin=(1, 3, 16, 16), sopt=(1, 3, 144, 256), smax=(4, 3, 512, 512),
                      gpu={"name": "NVIDIA H100 80GB HBM3", "capability": "sm_90"}, vers=vers)
    return p, vers


def test_engine_validation_accepts_a_matching_engine(engine):
    from psenet_stream.backends.tensorrt import check_engine

    p, vers = engine
    info = check_engine(p, weights_sha256="a" * 64, gpu_name="NVIDIA H100 80GB HBM3", vers=vers)
    assert info["shape_max"] == [4, 3, 512, 512]


@pytest.mark.parametrize(
    "tamper, fragment",
    [
        ("bytes", "does not match its sidecar"),
        ("no-sidecar", "has no sidecar"),
        ("bad-sidecar", "cannot read the sidecar"),
        ("weights", "built for other weights"),
        ("gpu", "was built on GPU"),
        ("version", "was built with tensorrt"),
    ],
)
def test_engine_validation_refuses_tampering(engine, tamper, fragment):
    from psenet_stream.backends.tensorrt import check_engine, sidecar_path
    from psenet_stream.errors import BackendError

    p, vers = engine
    kw = {"weights_sha256": "a" * 64, "gpu_name": "NVIDIA H100 80GB HBM3", "vers": dict(vers)}
    if tamper == "bytes":
        data = bytearray(p.read_bytes())
        data[10] ^= 1
        p.write_bytes(bytes(data))
    elif tamper == "no-sidecar":
        sidecar_path(p).unlink()
    elif tamper == "bad-sidecar":
        sidecar_path(p).write_text("{ not json")
    elif tamper == "weights":
        kw["weights_sha256"] = "b" * 64
    elif tamper == "gpu":
        kw["gpu_name"] = "NVIDIA A100"
    elif tamper == "version":
        kw["vers"]["tensorrt"] = "10.15.1"
    with pytest.raises(BackendError, match=fragment) as ei:
        check_engine(p, **kw)
    assert ei.value.fix  # names the fix (rebuild)


# --- credentials -----------------------------------------------------------------------------


@pytest.mark.parametrize("verbosity", [[], ["-vv"]], ids=["default", "debug"])
def test_rtsp_credentials_never_printed(tmp_path, forkcli, verbosity):
    port = free_port()  # closed
    url = f"rtsp://user:secret@127.0.0.1:{port}/x"
    r = forkcli.run([url, "-o", tmp_path / "o.mp4", *FAST, *verbosity], timeout=60)
    err = r["stderr"] + r["stdout"]
    assert r["rc"] == 3 and "Traceback" not in err, err
    assert "secret" not in err, err
    assert "rtsp://user:***@127.0.0.1" in err, err


def test_credentials_masked_while_reconnecting(tmp_path, forkcli):
    """A camera that drops mid-stream: every reconnect attempt is logged, none with the password."""
    from tests.faults.test_live_faults import camera

    port = free_port()
    cam = camera(port, seconds=2, then="close")
    url = f"tcp://admin:pa%24%24word-42@127.0.0.1:{port}"
    try:
        r = forkcli.run(["webcam", "--device", url, "--preview", "none", "-o", tmp_path / "o.mp4", "--max-retries", "2", "--timeout", "1",
                         *FAST, "-vv"], timeout=60)
    finally:
        cam.stop()
    err = r["stderr"] + r["stdout"]
    assert r["rc"] == 3 and "Traceback" not in err, err
    assert "gave up" in err and err.count("reconnecting in") >= 2, err
    assert "tcp://admin:***@127.0.0.1" in err
    for secret in ("pa%24%24word-42", "pa$$word-42"):
        assert secret not in err, (secret, err)
    # nothing lost: the camera gave up, and what was recorded before is kept (playable)
    from tests.faults.test_bad_inputs import probe

    partial = tmp_path / "o.partial.mp4"
    assert "kept as" in err and partial.exists(), err
    # (how many frames arrive in the camera's 2 s depends on the machine's load: 8 under a busy CI)
    assert probe(partial)["frames"] >= 1 and not (tmp_path / "o.mp4").exists()


# --- the HTTP preview ------------------------------------------------------------------------


def _listen_addr(port: int) -> str | None:
    """The local address of the LISTEN socket on ``port`` (from /proc/net/tcp and tcp6)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for ln in lines:
            f = ln.split()
            addr, p = f[1].split(":")
            if int(p, 16) == port and f[3] == "0A":
                if len(addr) == 8:
                    return ".".join(str(int(addr[i : i + 2], 16)) for i in (6, 4, 2, 0))
                return addr
    return None


@pytest.mark.parametrize(
    "cmd, bind, want",
    [("webcam", None, "127.0.0.1"), pytest.param("enhance", None, "127.0.0.1", marks=pytest.mark.slow),
     pytest.param("webcam", "0.0.0.0", "0.0.0.0", marks=pytest.mark.slow)],
)
def test_http_preview_binds_loopback_unless_told(tmp_path, cmd, bind, want):
    port = free_port()
    cam = "lavfi:testsrc2=size=160x120:rate=10,realtime"
    if cmd == "webcam":
        args = [sys.executable, "-m", "psenet_stream", "webcam", "--device", cam, "--duration", "30"]
    else:
        args = [sys.executable, "-m", "psenet_stream", cam]
    args += ["--preview", "http", "--port", str(port), *FAST]
    if bind:
        args += ["--bind", bind]
    p = subprocess.Popen(args, cwd=tmp_path, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=cli_env())
    try:
        addr = None
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and p.poll() is None:
            addr = _listen_addr(port)
            if addr:
                break
            time.sleep(0.1)
    finally:
        p.terminate()
        try:
            err = p.communicate(timeout=30)[1].decode(errors="replace")
        except subprocess.TimeoutExpired:
            p.kill()
            err = p.communicate()[1].decode(errors="replace")
    assert addr == want, (addr, err)
    assert "Traceback" not in err
    assert re.search(rf"http://127\.0\.0\.1:{port}/", err), err


def test_http_preview_sink_default_is_loopback():
    from psenet_stream.io.http_preview import HttpPreviewSink

    s = HttpPreviewSink(None, port=0, announce=False)
    try:
        assert s.server.server_address[0] == "127.0.0.1"
    finally:
        s.close()
