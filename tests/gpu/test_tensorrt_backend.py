"""The tensorrt backend on a real GPU with torch-tensorrt: build, save, reload without
recompiling, refuse a tampered engine, parity with the cpu reference. Skipped otherwise."""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest
import torch

pytestmark = [
    pytest.mark.tensorrt,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]
pytest.importorskip("torch_tensorrt")

from psenet_stream.backends import tensorrt as trt
from psenet_stream.backends.cpu import CpuBackend
from psenet_stream.enhancer import Enhancer
from psenet_stream.errors import BackendError
from psenet_stream.evaluation.bench import synthetic_scene
from psenet_stream.model import PSENet
from psenet_stream.weights_io import load_model, save_weights

RANGE = ((1, 3, 16, 16), (4, 3, 144, 256), (8, 3, 256, 256))




@pytest.fixture(scope="module")
def built(model_meta, tmp_path_factory):
    model, meta = model_meta
    d = tmp_path_factory.mktemp("engines")
    before = trt.BUILD_COUNT
    t0 = time.perf_counter()
    path = trt.build_engine(model, meta, *RANGE, out_dir=d)
    seconds = time.perf_counter() - t0
    assert trt.BUILD_COUNT == before + 1
    return d, path, seconds


def test_engine_and_sidecar_are_written(built, model_meta):
    d, path, _ = built
    _, meta = model_meta
    assert path.is_file() and trt.sidecar_path(path).is_file()
    info = trt.check_engine(path, weights_sha256=meta["sha256"], gpu_name=torch.cuda.get_device_name(), vers=trt.versions())
    assert info["shape_max"] == list(RANGE[2])
    assert meta["sha256"][:12] in path.name


def test_reload_does_not_recompile(built, model_meta):
    d, path, build_s = built
    model, meta = model_meta
    count = trt.BUILD_COUNT
    assert trt.build_engine(model, meta, *RANGE, out_dir=d) == path  # up to date: reused
    t0 = time.perf_counter()
    be = trt.TensorRTBackend(model, meta, engine_dir=d, batch=4)
    load_s = time.perf_counter() - t0
    assert trt.BUILD_COUNT == count
    assert [p for _, _, p in be.engines] == [path]
    assert load_s < build_s


def test_parity_with_cpu(built, model_meta):
    d, _, _ = built
    model, meta = model_meta
    x = synthetic_scene(1280, 720, 6)
    ref = Enhancer(CpuBackend(model, meta)).enhance_frames(x)
    out = Enhancer(trt.TensorRTBackend(model, meta, engine_dir=d, batch=4)).enhance_frames(x)
    assert np.abs(out.astype(int) - ref).max() <= 2


def test_shapes_outside_the_range_use_the_torch_network(built, model_meta, caplog):
    d, _, _ = built
    model, meta = model_meta
    be = trt.TensorRTBackend(model, meta, engine_dir=d, batch=2)
    x = synthetic_scene(640, 360, 2)
    with caplog.at_level(logging.WARNING, logger="psenet_stream"):
        out = Enhancer(be, infer_size="full").enhance_frames(x)  # 360x640 > max 256x256
    assert "outside every engine's range" in caplog.text
    ref = Enhancer(CpuBackend(model, meta), infer_size="full").enhance_frames(x)
    assert np.abs(out.astype(int) - ref).max() <= 2


def test_tampered_engine_is_refused(built, model_meta, tmp_path):
    import shutil

    d, path, _ = built
    model, meta = model_meta
    copy = tmp_path / path.name
    shutil.copy(path, copy)
    shutil.copy(trt.sidecar_path(path), trt.sidecar_path(copy))
    with open(copy, "ab") as f:
        f.write(b"\0")
    with pytest.raises(BackendError, match="does not match its sidecar"):
        trt.TensorRTBackend(model, meta, engine=copy)


def test_engine_for_other_weights_is_refused(built, tmp_path):
    d, path, _ = built
    torch.manual_seed(9)
    other = tmp_path / "other.pt"
    save_weights(other, PSENet().state_dict(), {})
    model, meta = load_model(other)
    with pytest.raises(BackendError, match="other weights"):
        trt.TensorRTBackend(model, meta, engine=path)
