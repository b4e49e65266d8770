"""The exposure gain after the curve (psenet_stream/exposure.py): its maths, its temporal
state, and that every path of the Enhancer applies it the same way."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from psenet_stream import exposure
from psenet_stream.backends.cpu import CpuBackend
from psenet_stream.enhancer import Enhancer
from psenet_stream.evaluation.photos import synthesize
from psenet_stream.exposure import FEATURES, ExposureGain, features, features_torch, gain_table
from psenet_stream.weights_io import load_model


def _params(bias: float = 0.0, hidden: int = 4) -> dict:
    """A head that answers log w = bias for every frame (its first layer does not matter)."""
    rng = np.random.default_rng(0)
    return {
        "mu": [0.0] * FEATURES,
        "sd": [1.0] * FEATURES,
        "w1": rng.normal(size=(FEATURES, hidden)).tolist(),
        "b1": [0.0] * hidden,
        "w2": [0.0] * hidden,
        "b2": bias,
        "lo": 0.2,
        "hi": 1.0,
    }


def _scene(seed: int = 0, h: int = 90, w: int = 160) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.linspace(30, 220, w, dtype=np.float32)[None, :, None] * np.ones((h, 1, 3), np.float32)
    return np.clip(base + rng.normal(0, 12, size=(h, w, 3)), 0, 255).astype(np.uint8)


def test_features_numpy_and_torch_agree():
    small = np.random.default_rng(1).random((3, 3, 20, 30), dtype=np.float32)
    small[0] = 1.0  # clipped everywhere
    a = features(small)
    b = features_torch(torch.from_numpy(small)).numpy()
    assert a.shape == (3, FEATURES)
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert a[0, -2] == 1.0  # the share of clipped pixels


def test_gain_table_is_a_linear_light_gain():
    t = gain_table(np.log(0.5))
    assert t[0] == 0 and t[255] == round(255 * exposure.linear_to_srgb(np.array(0.5)).item())
    assert np.all(np.diff(t.astype(int)) >= 0)
    np.testing.assert_array_equal(gain_table(0.0), np.arange(256))
    g = ExposureGain(_params())
    np.testing.assert_array_equal(g.tables_torch(torch.tensor([np.log(0.5), 0.0]))[0].numpy(), t)
    assert g.table(0.0) is None


def test_head_bounds_and_strength():
    assert np.allclose(ExposureGain(_params(bias=-5.0)).predict(np.zeros((2, 3, 8, 8), np.float32)), np.log(0.2))
    assert np.allclose(ExposureGain(_params(bias=+1.0)).predict(np.zeros((1, 3, 8, 8), np.float32)), 0.0)
    half = ExposureGain(_params(bias=-1.0), strength=0.5).predict(np.zeros((1, 3, 8, 8), np.float32))
    assert np.allclose(half, -0.5)


def test_temporal_smoothing_restarts_on_a_cut():
    g = ExposureGain(_params(), smoothing=0.9)
    g.predict = lambda s: np.full(len(s), -1.0 if s.mean() > 0.5 else 0.0, np.float32)  # a scripted head
    dark, bright = np.full((1, 3, 8, 8), 0.45, np.float32), np.full((1, 3, 8, 8), 0.55, np.float32)
    assert g(dark)[0] == 0.0
    slow = g(bright)[0]  # a small change: smoothed
    assert -0.2 < slow < 0.0
    assert g(np.ones((1, 3, 8, 8), np.float32))[0] == -1.0  # a cut (mean difference 0.45): at once


def test_shape_errors_are_clear():
    p = _params()
    p["w1"] = [[0.0]]
    with pytest.raises(ValueError, match="wrong shapes"):
        ExposureGain(p)


def _enhancer(params, **opts):
    model, meta = load_model(None)
    meta = dict(meta)
    if params is None:
        meta.pop("exposure_gain", None)
    else:
        meta["exposure_gain"] = params
    return Enhancer(CpuBackend(model, meta, threads=1), **opts)


def test_the_host_path_applies_the_gain_and_no_gain_is_the_identity():
    x = _scene()
    plain = _enhancer(None)(x)
    assert np.array_equal(_enhancer(_params(0.0))(x), plain)
    darker = _enhancer(_params(np.log(0.5)))(x)
    expected = gain_table(np.log(0.5))[plain]
    assert np.abs(darker.astype(int) - expected.astype(int)).max() <= 1
    assert _enhancer(_params(np.log(0.5)), exposure_gain=False)(x).tolist() == plain.tolist()


def test_tensor_path_matches_the_frame_path():
    x = _scene(2)
    enh = _enhancer(_params(np.log(0.6)))
    u8 = enh(x)
    t = torch.from_numpy(x).permute(2, 0, 1).float().div(255)
    y = (_enhancer(_params(np.log(0.6))).enhance_tensor(t).permute(1, 2, 0) * 255).round().numpy()
    assert np.abs(y - u8.astype(np.float32)).max() <= 2


def test_device_path_in_emulation_matches_the_host():
    from psenet_stream.backends.cuda import CudaBackend

    model, meta = load_model(None)
    meta = dict(meta) | {"exposure_gain": _params(np.log(0.55))}
    frames = np.stack([_scene(3), _scene(4)])
    host = Enhancer(CpuBackend(model, meta, threads=1))(frames)
    dev = Enhancer(CudaBackend(model, meta, batch=2, _emulate=True))(frames)
    assert np.abs(host.astype(int) - dev.astype(int)).max() <= 2


def test_device_yuv_path_in_emulation_is_close_to_the_rgb_path():
    from psenet_stream import colour
    from psenet_stream.backends.cuda import CudaBackend

    model, meta = load_model(None)
    meta = dict(meta) | {"exposure_gain": _params(np.log(0.55))}
    rgb = np.stack([_scene(5, 96, 160)])
    yuv = colour.rgb_to_yuv420p_batch_np(rgb, None, False)
    host = Enhancer(CpuBackend(model, meta, threads=1)).enhance_yuv420p(yuv.copy())
    dev = Enhancer(CudaBackend(model, meta, batch=1, _emulate=True)).enhance_yuv420p(yuv.copy())
    a, b = colour.yuv420p_to_rgb_np(host, None, False), colour.yuv420p_to_rgb_np(dev, None, False)
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 2.0


def test_shipped_gain_darkens_over_exposure_and_leaves_a_good_frame_alone():
    enh = Enhancer.from_pretrained(None, backend="cpu")
    if enh.gain is None:
        pytest.skip("the shipped weights carry no exposure gain")
    x = _scene(6)
    over = synthesize(x, 1.5)
    with_gain = enh(over)
    enh_off = Enhancer.from_pretrained(None, backend="cpu", exposure_gain=False)
    assert with_gain.mean() < enh_off(over).mean() - 3  # the gain took it further down
    assert abs(float(Enhancer.from_pretrained(None, backend="cpu")(x).mean()) - float(x.mean())) < 6


def test_official_style_weights_without_a_gain_get_none():
    assert _enhancer(None).gain is None


def test_gain_on_views_and_non_contiguous_outputs():
    """The eval and the pipelines hand frames and outputs as views; the gain's table must
    land there too (cv2.LUT cannot write into every layout)."""
    enh = _enhancer(_params(np.log(0.5)))
    frames = np.stack([_scene(7), _scene(8)])
    ref = enh(frames.copy())
    enh.reset()
    flipped = enh(np.ascontiguousarray(frames[:, :, ::-1]))[:, :, ::-1]
    assert np.abs(flipped.astype(int) - ref.astype(int)).max() <= 1
    enh.reset()
    out = np.zeros((2, 90, 160, 4), np.uint8)[..., :3]  # a strided view
    enh.enhance_frames(frames, out=out)
    assert np.array_equal(out, ref)


def test_cli_flag_turns_the_gain_off(tmp_path):
    """--no-exposure-gain reaches the Enhancer: an over-exposed image comes out brighter without it."""
    import subprocess
    import sys

    import cv2

    src = tmp_path / "over.png"
    cv2.imwrite(str(src), cv2.cvtColor(synthesize(_scene(9), 1.5), cv2.COLOR_RGB2BGR))
    means = []
    for extra in ([], ["--no-exposure-gain"]):
        out = tmp_path / f"out{len(extra)}.png"
        r = subprocess.run([sys.executable, "-m", "psenet_stream", str(src), "-o", str(out), "--backend", "cpu", "-q", *extra], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        means.append(cv2.imread(str(out)).mean())
    assert means[0] < means[1] - 3


def test_serve_streams_each_get_the_gain_like_the_enhancer_alone():
    from psenet_stream.serve.batching import CrossStreamPredictor, StreamState

    enh = _enhancer(_params(np.log(0.5)), infer_size=64)
    pred = CrossStreamPredictor(enh)
    frames = [_scene(10), _scene(11)]
    states = [StreamState(infer_size=64, gain=enh.make_gain()) for _ in frames]
    plans = pred.predict(list(zip(states, frames)))
    outs = [pred.apply(f, p) for f, p in zip(frames, plans)]
    for f, o in zip(frames, outs):
        alone = _enhancer(_params(np.log(0.5)), infer_size=64)(f)
        assert np.abs(o.astype(int) - alone.astype(int)).max() <= 1
        assert o.mean() < _enhancer(None, infer_size=64)(f).mean() - 5
