"""The ONNX models shipped beside the weights: they match the weights, are used without an
export, and a model that names other weights is not used."""

from __future__ import annotations

import shutil

import pytest

pytest.importorskip("onnxruntime")

from psenet_stream.backends.onnx import OnnxBackend, onnx_parity, shipped_onnx
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
