"""Fixtures for the fault suite: fault media (synthesized once per session), weights, and a
runner for the real CLI in a subprocess with a hard timeout (a hang fails the test)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Tiny inference so the suite measures fault handling, not the CPU.
FAST = ["--backend", "cpu", "--infer-size", "48", "--threads", "1"]
CLI_TIMEOUT_S = 90.0


@pytest.fixture(scope="session")
def fault_weights(tmp_path_factory) -> Path:
    """$PSENET_STREAM_WEIGHTS / the shipped default when present, else a random-init file
    (the fault suite checks behaviour under faults, not image quality)."""
    from psenet_stream.weights_io import default_weights_path, save_weights

    p = default_weights_path()
    if p.is_file():
        return p
    import torch

    from psenet_stream.model import PSENet

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("fault-weights") / "random.pt"
    save_weights(out, PSENet().state_dict(), {"note": "random init for the fault suite"})
    return out


@pytest.fixture(autouse=True)
def _fault_weights_env(fault_weights, monkeypatch):
    monkeypatch.setenv("PSENET_STREAM_WEIGHTS", str(fault_weights))


@pytest.fixture(scope="session")
def fault_media(tmp_path_factory) -> dict[str, Path]:
    from tests.faults.faultmedia import fault_inputs

    return fault_inputs(tmp_path_factory.mktemp("fault-media"))


def cli_env(**extra) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("PSENET_DEBUG", None)
    env["PYTHONUNBUFFERED"] = "1"
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_cli(args, *, cwd=None, timeout: float = CLI_TIMEOUT_S, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m psenet_stream ARGS``; a run longer than ``timeout`` is a hang and fails."""
    cmd = [sys.executable, "-m", "psenet_stream", *[str(a) for a in args]]
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, timeout=timeout, env=env or cli_env())
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"HANG: {' '.join(cmd)} did not end within {timeout:g} s; stderr tail: {(e.stderr or b'')[-800:]!r}")


def assert_clean_error(r: subprocess.CompletedProcess, code: int, *fragments: str) -> str:
    """Exit ``code``, 'error: ...' naming the problem plus a 'hint: ...' fix, no traceback."""
    err = r.stderr.decode(errors="replace")
    assert r.returncode == code, f"exit {r.returncode} (want {code}); stderr:\n{err}"
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, f"want exactly one 'error:' line:\n{err}"
    assert any(ln.startswith("hint: ") for ln in err.splitlines()), f"no 'hint:' line:\n{err}"
    for f in fragments:
        assert f.lower() in err.lower(), f"{f!r} not in:\n{err}"
    return err


@pytest.fixture(scope="session")
def forkcli(fault_weights):
    """The CLI, pre-imported once, each run a fork()ed child (see tests/faults/forkcli.py)."""
    from tests.faults.forkcli import ForkCli

    fc = ForkCli(cli_env(PSENET_STREAM_WEIGHTS=fault_weights))
    yield fc
    fc.close()
