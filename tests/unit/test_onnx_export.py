"""``psenet-stream export-onnx``: one self-contained file, dynamic batch and size, parity with torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from test_backends import session_weights

from psenet_stream.cli import main
from psenet_stream.weights_io import load_model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    weights = session_weights(tmp_path_factory)
    out = tmp_path_factory.mktemp("onnx") / "model.onnx"
    assert main(["export-onnx", "-o", str(out), "--weights", str(weights)]) == 0
    return out, weights


def test_export_writes_one_self_contained_file(exported):
    out, _ = exported
    assert out.is_file()
    assert sorted(p.name for p in out.parent.iterdir()) == ["model.onnx"]  # no external data, no .partial


@pytest.mark.parametrize("shape", [(1, 3, 16, 16), (1, 3, 17, 33), (3, 3, 61, 97), (2, 3, 128, 72), (5, 3, 45, 80)])
def test_dynamic_batch_and_odd_sizes_match_torch(exported, shape):
    import onnxruntime as ort

    out, weights = exported
    model, _ = load_model(weights)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(sum(shape)))
    with torch.inference_mode():
        ref = model.gamma(x).numpy()
    got = sess.run(None, {"x": x.numpy()})[0]
    assert got.shape == shape
    assert np.abs(got - ref).max() <= 1e-4


def test_export_refuses_to_overwrite(exported, capsys):
    out, weights = exported
    with pytest.raises(SystemExit) as e:
        main(["export-onnx", "-o", str(out), "--weights", str(weights)])
    assert e.value.code == 4
    assert "already exists" in capsys.readouterr().err



def test_export_stamps_the_weights_so_onnx_runs_without_torch(exported, tmp_path):
    """The exported file carries the weights' sha256 and metadata: placed beside its .pt it
    is what backends.onnx.shipped_model finds, with the metadata torch reads from the .pt."""
    import shutil

    from psenet_stream.backends.onnx import shipped_model

    out, weights = exported
    shutil.copy(weights, tmp_path / "w.pt")
    shutil.copy(out, tmp_path / "w.onnx")
    found = shipped_model(tmp_path / "w.pt")
    assert found is not None and found[0] == tmp_path / "w.onnx"
    assert found[1] == load_model(tmp_path / "w.pt")[1]
