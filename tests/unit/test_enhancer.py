"""Enhancer: the uint8 and tensor APIs, strength, the LUT against the exact curve, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from psenet_stream.backends.base import Backend
from psenet_stream.backends.cpu import CpuBackend
from psenet_stream.enhancer import LOG_GAMMA_RANGE, Enhancer, GammaLUT, apply_exact
from psenet_stream.errors import PsenetError
from psenet_stream.model import PSENet


class ContentGamma(Backend):
    """A deterministic stand-in for the network: brightens dark pixels, darkens bright ones."""

    name = "stub"

    def __init__(self):
        super().__init__(None, {"path": "stub"})

    def predict_gamma(self, x: np.ndarray) -> np.ndarray:
        return np.exp(1.5 - 3.0 * x).astype(np.float32)  # log gamma from +1.5 (black) to -1.5 (white)


def _net_enhancer(**opts) -> Enhancer:
    torch.manual_seed(0)
    return Enhancer(CpuBackend(PSENet(), {"path": "random-init"}), **opts)


def _frame(h=48, w=64, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = (xx / max(w - 1, 1) * 200 + yy / max(h - 1, 1) * 40)[..., None] + rng.integers(0, 16, (h, w, 3))
    return np.clip(base, 0, 255).astype(np.uint8)


@pytest.fixture(params=["stub", "net"])
def make(request):
    if request.param == "stub":
        return lambda **o: Enhancer(ContentGamma(), **o)
    return _net_enhancer


@pytest.mark.parametrize("shape", [(48, 64), (241, 321), (2, 2), (1, 7), (31, 17)])
def test_uint8_api_keeps_shape_and_dtype(make, shape):
    img = _frame(*shape)
    out = make()(img)
    assert out.shape == img.shape and out.dtype == np.uint8


def test_batch_equals_single_frames_without_smoothing(make):
    enh = make(smoothing=0.0)
    frames = np.stack([_frame(seed=s) for s in range(3)])
    batch = enh(frames)
    singles = np.stack([enh(f) for f in frames])
    assert batch.shape == frames.shape
    np.testing.assert_array_equal(batch, singles)


def test_grayscale_like_input_stays_grey_for_a_per_pixel_curve():
    g = _frame()[..., :1]
    img = np.repeat(g, 3, axis=2)
    out = Enhancer(ContentGamma())(img)
    assert np.abs(out[..., 0].astype(int) - out[..., 1]).max() <= 1
    assert np.abs(out[..., 0].astype(int) - out[..., 2]).max() <= 1


def test_strength_zero_is_identity(make):
    img = _frame()
    out = make(strength=0.0)(img)
    assert np.abs(out.astype(int) - img).max() <= 1


def test_strength_blends_monotonically():
    img = _frame()
    dark = img < 100  # the stub brightens there
    prev = img[dark].astype(int)
    for s in (0.25, 0.5, 1.0, 2.0):
        cur = Enhancer(ContentGamma(), strength=s)(img)[dark].astype(int)
        assert (cur >= prev - 1).all()  # one LSB of LUT rounding
        assert cur.mean() > prev.mean()
        prev = cur


@pytest.mark.parametrize("knee", [0.85, 1.0])
def test_lut_matches_exact_curve_for_the_same_log_gamma(knee):
    rng = np.random.default_rng(1)
    h, w = 37, 53
    frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    frame[0, :, :] = 255  # white and black rows: the ends of the table
    frame[1, :, :] = 0
    lg = rng.uniform(*LOG_GAMMA_RANGE, size=(h, w, 3)).astype(np.float32)
    lut = GammaLUT(knee).apply(frame, lg)
    x = torch.from_numpy(frame).permute(2, 0, 1)[None].double() / 255
    exact = apply_exact(x, torch.from_numpy(lg).permute(2, 0, 1)[None].double(), knee)
    exact8 = (exact[0].permute(1, 2, 0) * 255).round().numpy()
    assert np.abs(lut.astype(int) - exact8).max() <= 1


@pytest.mark.parametrize("knee", [0.95, 0.7, 1.0])
def test_lut_table_equals_the_torch_curve(knee):
    """GammaLUT's table is built in numpy (the host path runs without torch): every entry
    equals round(255 * Y) of ops.protect_highlights + ops.apply_gamma in float64 torch."""
    from psenet_stream.ops import apply_gamma, protect_highlights

    lo, hi = LOG_GAMMA_RANGE
    lg = torch.linspace(lo, hi, GammaLUT.LEVELS, dtype=torch.float64)[:, None]
    i = (torch.arange(256, dtype=torch.float64) / 255.0)[None, :]
    g = protect_highlights(torch.exp(lg).expand(-1, 256), i.expand(GammaLUT.LEVELS, -1), knee)
    ref = (apply_gamma(i, g) * 255.0).round().clamp(0, 255).to(torch.uint8).numpy()
    assert np.array_equal(GammaLUT(knee).table, ref)


def test_lut_matches_exact_with_upsampled_log_gamma():
    frame = _frame(64, 96)
    lg_small = np.linspace(-1.0, 1.0, 16 * 24 * 3, dtype=np.float32).reshape(16, 24, 3)
    lut = GammaLUT(0.85).apply(frame, lg_small)
    x = torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255
    exact = apply_exact(x, torch.from_numpy(lg_small).permute(2, 0, 1)[None], 0.85)
    exact8 = (exact[0].permute(1, 2, 0) * 255).round().numpy()
    assert np.abs(lut.astype(int) - exact8).max() <= 1


def test_uint8_path_agrees_with_tensor_path(make):
    img = _frame()
    enh = make()
    out8 = enh(img)
    t = torch.from_numpy(img).permute(2, 0, 1).float() / 255
    ot = enh.enhance_tensor(t)
    ref = (ot.permute(1, 2, 0) * 255).round().numpy()
    assert np.abs(out8.astype(int) - ref).max() <= 2  # LUT rounding + resize differences


def test_tensor_input_returns_tensor(make):
    enh = make()
    x = torch.rand(2, 3, 20, 30)
    y = enh(x)
    assert torch.is_tensor(y) and y.shape == x.shape and y.dtype == x.dtype
    assert 0.0 <= float(y.min()) and float(y.max()) <= 1.0
    y1 = enh(x[0])
    assert y1.shape == x[0].shape


@pytest.mark.parametrize("bad", [np.zeros((8, 8, 3), np.float32), np.zeros((8, 8, 3), np.int64)])
def test_bad_dtype_is_a_user_error(bad):
    with pytest.raises(PsenetError, match="expected uint8"):
        Enhancer(ContentGamma())(bad)


def test_uint16_frames_are_high_bit_depth():
    """16-bit frames (10/12-bit video, 16-bit images) come back 16-bit, through the float curve."""
    x = (np.arange(64 * 64 * 3, dtype=np.uint32).reshape(64, 64, 3) * 7 % 30000).astype(np.uint16)
    y = Enhancer(ContentGamma())(x)
    assert y.dtype == np.uint16 and y.shape == x.shape
    y8 = Enhancer(ContentGamma())((x // 257).astype(np.uint8))
    assert np.abs(y.astype(np.float64) / 257 - y8).mean() < 1.0  # the same correction, at more precision


@pytest.mark.parametrize("shape", [(8, 8), (8, 8, 4), (2, 8, 8, 1)])
def test_bad_shape_is_a_user_error(shape):
    with pytest.raises(PsenetError, match="expected"):
        Enhancer(ContentGamma())(np.zeros(shape, np.uint8))


@pytest.mark.parametrize(
    "opts, match",
    [
        ({"strength": -1}, "strength"),
        ({"smoothing": 1.0}, "smoothing"),
        ({"infer_size": 4}, "too small"),
        ({"infer_size": "big"}, "bad infer size"),
    ],
)
def test_bad_options_are_user_errors(opts, match):
    with pytest.raises(PsenetError, match=match):
        Enhancer(ContentGamma(), **opts)
