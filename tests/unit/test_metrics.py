"""metrics and flicker: definitions on hand-made inputs; smoothing and scene cuts on a synthetic clip."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from psenet_stream.backends.base import Backend
from psenet_stream.backends.cpu import CpuBackend
from psenet_stream.enhancer import Enhancer
from psenet_stream.evaluation import metrics
from psenet_stream.evaluation.flicker import FlickerMeter, delta_stats, measure_flicker
from psenet_stream.model import PSENet


def test_psnr_ssim_identity_and_known_value():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    assert metrics.psnr(a, a) > 100
    assert metrics.ssim(a, a) == pytest.approx(1.0, abs=1e-5)
    b = a.astype(np.int16)
    b[..., :] += np.where(a < 128, 5, -5).astype(np.int16)  # |error| = 5 everywhere
    b = b.astype(np.uint8)
    assert metrics.psnr(b, a) == pytest.approx(10 * math.log10(255**2 / 25), abs=1e-3)
    assert metrics.ssim(b, a) < 1.0


def test_ssim_matches_skimage():
    skm = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    ref = skm.structural_similarity(a, b, channel_axis=2, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)
    assert metrics.ssim(b, a) == pytest.approx(ref, abs=2e-3)


def test_clipped_fraction_counts_pixels_with_any_channel_at_the_ends():
    img = np.full((10, 10, 3), 128, np.uint8)
    img[0, :, 0] = 255  # 10 pixels, one channel white
    img[1, :5, 2] = 0  # 5 pixels, one channel black
    assert metrics.clipped_fraction(img) == pytest.approx(0.15)
    t = metrics.to_tensor(img)
    assert metrics.clipped_fraction(t) == pytest.approx(0.15)


def test_nr_score_prefers_textured_mid_grey_over_flat_or_dark():
    rng = np.random.default_rng(2)
    flat = np.full((40, 40, 3), 128, np.uint8)
    textured = np.clip(rng.normal(128, 40, (40, 40, 3)), 0, 255).astype(np.uint8)
    dark = (textured // 8).astype(np.uint8)
    # flat scores ~0: float rounding, no clamp (as in the official code)
    assert metrics.nr_score(textured) > metrics.nr_score(dark) > metrics.nr_score(flat) > -1e-6


def test_image_metrics_needs_matching_sizes():
    a = np.zeros((16, 16, 3), np.uint8)
    assert set(metrics.image_metrics(a, a)) == {"psnr", "ssim", "dy", "clipped", "nr_score"}
    assert set(metrics.image_metrics(a, None)) == {"clipped", "nr_score"}
    assert math.isfinite(metrics.nr_score(np.zeros((5, 7, 3), np.uint8)))  # smaller than the 25 px window
    with pytest.raises(ValueError, match="differ"):
        metrics.image_metrics(a, np.zeros((16, 17, 3), np.uint8))


def test_delta_stats():
    s = delta_stats([1.0, 3.0, 2.0, 2.0])  # deltas 2, -1, 0
    assert s["mean_abs_delta"] == pytest.approx(1.0)
    assert s["std_delta"] == pytest.approx(np.std([2.0, -1.0, 0.0]))
    assert delta_stats([5.0])["mean_abs_delta"] == 0.0


def test_flicker_meter_ratio():
    m = FlickerMeter()
    for v in (100, 110, 100, 110):
        m.update(np.full((4, 4, 3), v, np.uint8), np.full((4, 4, 3), 2 * v - 80, np.uint8), np.zeros((1, 3, 2, 2)))
    r = m.result()
    assert r["frames"] == 4
    assert r["input"]["mean_abs_delta"] == pytest.approx(10.0, abs=1e-3)
    assert r["ratio"] == pytest.approx(2.0, abs=1e-3)
    assert r["log_gamma"]["mean_abs_delta"] == 0.0


# --- smoothing and scene cuts on a synthetic clip --------------------------------------


class NoisyGamma(Backend):
    """Gamma from the frame content, plus per-call jitter: a network that flickers."""

    name = "stub"

    def __init__(self, seed=0, jitter=0.1):
        super().__init__(None, {"path": "stub"})
        self.rng = np.random.default_rng(seed)
        self.jitter = jitter

    def predict_gamma(self, x):
        lg = 1.0 - 2.0 * x.mean(axis=(1, 2, 3), keepdims=True) + self.rng.normal(0, self.jitter, (x.shape[0], 1, 1, 1))
        return np.exp(np.broadcast_to(lg, x.shape)).astype(np.float32)


def _static_clip(n=12, seed=0, cut_at=None):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:48, 0:64]
    scene_a = np.stack([xx * 2, yy * 3, 60 + 0 * xx], -1).astype(np.float64)
    scene_b = np.stack([250 - xx * 2, 200 - yy * 2, 230 + 0 * xx], -1).astype(np.float64)
    for t in range(n):
        base = scene_b if cut_at is not None and t >= cut_at else scene_a
        yield np.clip(base + rng.normal(0, 2.0, base.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("backend", ["stub", "net"])
def test_smoothing_reduces_gamma_change_on_a_static_noisy_scene(backend):
    def make(s):
        if backend == "stub":
            return Enhancer(NoisyGamma(), smoothing=s)
        torch.manual_seed(0)
        return Enhancer(CpuBackend(PSENet(), {}), smoothing=s)

    off = measure_flicker(_static_clip(), make(0.0), max_frames=None)
    on = measure_flicker(_static_clip(), make(0.8), max_frames=None)
    assert off["frames"] == on["frames"] == 12
    assert off["log_gamma"]["mean_abs_delta"] > 0
    assert on["log_gamma"]["mean_abs_delta"] < 0.6 * off["log_gamma"]["mean_abs_delta"]
    assert on["scene_cuts"] == 0


def test_scene_cut_resets_the_ema():
    frames = list(_static_clip(cut_at=6))
    enh = Enhancer(NoisyGamma(jitter=0.0), smoothing=0.9)
    res = measure_flicker(iter(frames), enh, max_frames=None)
    assert res["scene_cuts"] == 1
    # right after the cut, gamma is the new scene's own ...
    enh.reset()
    for f in frames[:7]:
        enh(f)
    assert enh.scene_cuts == 1
    fresh = Enhancer(NoisyGamma(jitter=0.0), smoothing=0.0)
    fresh(frames[6])
    np.testing.assert_allclose(enh.last_gamma, fresh.last_gamma, atol=1e-6)
    # ... while without cut detection the EMA would still hold mostly the old scene's
    no_cut = Enhancer(NoisyGamma(jitter=0.0), smoothing=0.9, scene_cut=10.0)
    for f in frames[:7]:
        no_cut(f)
    assert no_cut.scene_cuts == 0
    assert abs(float(no_cut.last_gamma.mean()) - float(fresh.last_gamma.mean())) > 0.5


def test_measure_flicker_respects_max_frames_and_ev():
    enh = Enhancer(NoisyGamma(), smoothing=0.0)
    r = measure_flicker(_static_clip(n=10), enh, max_frames=4, ev=-1.5)
    assert r["frames"] == 4 and r["ev"] == -1.5
    r0 = measure_flicker(_static_clip(n=10), enh, max_frames=4)
    assert r["input"]["mean"] < r0["input"]["mean"]  # the synthetic error darkened the input
