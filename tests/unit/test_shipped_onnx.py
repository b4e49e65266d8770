"""The ONNX models shipped beside the weights: they match the weights, are used without an
export, and a model that names other weights is not used."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from psenet_stream.backends.onnx import OnnxBackend, onnx_parity, shipped_model, shipped_onnx, stamp
from psenet_stream.model import GammaOnly
from psenet_stream.paths import PACKAGE_DIR
from psenet_stream.weights_io import load_model


@pytest.mark.parametrize("stem", ["default", "paper"])
def test_shipped_onnx_matches_its_weights(stem):
    model, meta = load_model(PACKAGE_DIR / "weights" / f"{stem}.pt")
    path = shipped_onnx(meta)
    assert path == PACKAGE_DIR / "weights" / f"{stem}.onnx"
    assert onnx_parity(GammaOnly(model.float().eval()), path) < 1e-4


def test_backend_uses_the_shipped_model_without_exporting(tmp_path, monkeypatch):
    monkeypatch.setenv("PSENET_STREAM_CACHE", str(tmp_path / "cache"))
    model, meta = load_model(None)
    be = OnnxBackend(model, meta, threads=1)
    assert be.onnx_path.name == "default.onnx"
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.onnx"))


def test_a_model_for_other_weights_is_not_used(tmp_path):
    w = tmp_path / "mine.pt"
    shutil.copy(PACKAGE_DIR / "weights" / "default.pt", w)
    shutil.copy(PACKAGE_DIR / "weights" / "paper.onnx", tmp_path / "mine.onnx")  # names paper.pt's sha
    _, meta = load_model(w)
    assert shipped_onnx(meta) is None
    (tmp_path / "mine.onnx").write_bytes(b"not onnx")
    assert shipped_onnx(meta) is None


def test_a_network_with_the_exposure_head_exports_to_onnx(tmp_path):
    import torch

    from psenet_stream.backends.onnx import export_onnx
    from psenet_stream.model import PSENet

    m = PSENet(head=True).eval()
    with torch.no_grad():
        m.head.fc2.weight.normal_(0, 0.3)
    assert export_onnx(m, tmp_path / "h.onnx") < 1e-4  # the parity check runs inside


@pytest.mark.parametrize("stem", ["default", "paper"])
def test_shipped_onnx_carries_the_weights_metadata(stem):
    """The ONNX file holds the weight file's metadata (the exposure gain's parameters among
    it), equal to what torch reads from the .pt, and names that file's sha256."""
    _, meta = load_model(PACKAGE_DIR / "weights" / f"{stem}.pt")
    onnx_path, light = shipped_model(PACKAGE_DIR / "weights" / f"{stem}.pt")
    assert onnx_path == PACKAGE_DIR / "weights" / f"{stem}.onnx"
    assert light == meta
    assert ("exposure_gain" in light) == (stem == "default")


def test_unstamped_or_foreign_onnx_is_not_used_without_torch(tmp_path):
    w = tmp_path / "mine.pt"
    shutil.copy(PACKAGE_DIR / "weights" / "default.pt", w)
    shutil.copy(PACKAGE_DIR / "weights" / "paper.onnx", tmp_path / "mine.onnx")  # another file's sha
    assert shipped_model(w) is None
    shutil.copy(PACKAGE_DIR / "weights" / "default.onnx", tmp_path / "mine.onnx")
    _, meta = load_model(w)
    stamp(tmp_path / "mine.onnx", meta["sha256"])  # the sha only, no metadata: torch must read the .pt
    assert shipped_model(w) is None and shipped_onnx(meta) == tmp_path / "mine.onnx"
    assert shipped_model(tmp_path / "missing.pt") is None


ONNX_RUN = """
import sys
import numpy as np
from psenet_stream import Enhancer

rng = np.random.default_rng(0)
frames = rng.integers(0, 110, (6, 72, 128, 3), dtype=np.uint8)
frames[3:] = 255 - frames[3:]  # a cut to a bright scene: the gain and the stabilizer act
deep = (rng.integers(0, 20000, (1, 72, 128, 3))).astype(np.uint16)
video = Enhancer.from_pretrained(backend="onnx", threads=1, stabilize=0.9, smoothing=0.5, gamma_every=2)
out = np.concatenate([video(frames[:2]), video(frames[2:]), video(frames[5])[None]])
still = Enhancer.from_pretrained(backend="onnx", threads=1)
np.savez(sys.argv[1], video=out, deep=still(deep), still=still(frames[0]))
print("torch imported:", "torch" in sys.modules, "gain:", still.gain is not None, still.backend.onnx_path.name)
"""


def test_enhancer_onnx_runs_without_importing_torch(tmp_path):
    """`from psenet_stream import Enhancer` + the onnx backend: construction and inference
    (8-bit frames, a batch, video state, 16-bit) in a fresh interpreter never import torch,
    and give exactly what the same backend gives when built from the .pt through torch."""
    import subprocess
    import sys

    from psenet_stream.enhancer import Enhancer

    res = tmp_path / "out.npz"
    env = {**os.environ, "PYTHONPATH": str(PACKAGE_DIR.parent)}  # this checkout, in the child too
    r = subprocess.run([sys.executable, "-c", ONNX_RUN, str(res)], capture_output=True, text=True, timeout=120, env=env, check=False)
    assert r.returncode == 0, r.stderr
    assert "torch imported: False gain: True default.onnx" in r.stdout, r.stdout + r.stderr
    got = np.load(res)
    model, meta = load_model(None)  # the torch route: the .pt read by torch, the same ONNX file
    video = Enhancer(OnnxBackend(model, meta, threads=1), stabilize=0.9, smoothing=0.5, gamma_every=2)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 110, (6, 72, 128, 3), dtype=np.uint8)
    frames[3:] = 255 - frames[3:]
    deep = (rng.integers(0, 20000, (1, 72, 128, 3))).astype(np.uint16)
    want = np.concatenate([video(frames[:2]), video(frames[2:]), video(frames[5])[None]])
    assert np.array_equal(got["video"], want)
    still = Enhancer(OnnxBackend(model, meta, threads=1))
    assert np.array_equal(got["deep"], still(deep))
    assert np.array_equal(got["still"], still(frames[0]))
    assert not np.array_equal(got["still"], frames[0])
