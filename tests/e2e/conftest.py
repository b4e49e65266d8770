"""Fixtures for the end-to-end CLI tests: clips synthesized once per session, weights, runners."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.media import BT709, make_video

ROOT = Path(__file__).resolve().parents[2]
FAST = ["--backend", "cpu", "--infer-size", "48", "--threads", "1"]


@pytest.fixture(scope="session")
def weights(tmp_path_factory) -> Path:
    """Real weights when available (env or shipped), else a random-init file: these tests
    check plumbing (timestamps, audio, files), not image quality."""
    from psenet_stream.weights_io import default_weights_path, save_weights

    p = default_weights_path()
    if p.is_file():
        return p
    from psenet_stream.model import PSENet

    out = tmp_path_factory.mktemp("weights") / "random.pt"
    save_weights(out, PSENet().state_dict(), {"note": "random init for e2e tests"})
    return out


@pytest.fixture(autouse=True)
def _weights_env(weights, monkeypatch):
    monkeypatch.setenv("PSENET_STREAM_WEIGHTS", str(weights))


@pytest.fixture(scope="session")
def media(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("media")
    clips = {
        "clip": (d / "clip.mp4", {"frames": 30, "audio": "aac", "rotation": 90, "color": BT709, "bframes": True}),
        "vfr": (d / "vfr.mp4", {"frames": 24, "vfr": True, "audio": "pcm_s16le"}),
        "mulaw": (d / "mulaw.mov", {"frames": 12, "audio": "pcm_mulaw"}),
        "long": (d / "long.mp4", {"width": 320, "height": 240, "frames": 600, "fps": 30}),
    }
    out = {}
    for name, (path, kw) in clips.items():
        make_video(path, **kw)
        out[name] = path
    return out


def run_module(args: list[str], *, cwd: Path | None = None, input: bytes | None = None, timeout: float = 60, env: dict | None = None):
    """python -m psenet_stream ARGS as a subprocess."""
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    e.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "psenet_stream", *args], cwd=cwd, input=input, capture_output=True, timeout=timeout, env=e, check=False
    )


@pytest.fixture
def cli_main(capsys):
    """Run psenet_stream.cli.main in-process; returns (exit code, stderr)."""
    from psenet_stream.cli import main

    def go(args: list[str]) -> tuple[int, str]:
        try:
            code = main([str(a) for a in args])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        err = capsys.readouterr().err
        return code, err

    return go
