"""ops: the quality score terms match the official definitions; exposure synthesis is sane."""

from __future__ import annotations

import torch
from torch import nn

from psenet_stream import ops


def _official_pool(x):
    return nn.AvgPool2d(25, stride=1)(nn.ReflectionPad2d(12)(x))


def test_separable_box_mean_equals_reflect_pad_avg_pool():
    x = torch.rand(2, 3, 40, 53)
    assert torch.allclose(ops.box_mean(x), _official_pool(x), atol=1e-6)


def test_quality_score_matches_the_official_terms():
    # float64: the contrast term E[x^2] - mu^2 cancels, so float32 differs in the 4th digit
    x = torch.rand(2, 3, 32, 30, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    eps = 1 / 255
    mx, mn = x.amax(1, keepdim=True), x.amin(1, keepdim=True)
    s = (mx - mn + eps) / (mx + eps)
    mu = _official_pool(x).mean(1, keepdim=True)
    e = (mu - 0.5).abs() + eps
    c = _official_pool(x * x).mean(1, keepdim=True) - mu * mu
    assert torch.allclose(ops.quality_score(x), s * c / e, rtol=1e-9, atol=1e-12)


def test_select_best_takes_the_whole_rgb_of_the_winner():
    flat = torch.full((1, 3, 30, 30), 0.02)  # dark and flat: score ~0
    textured = torch.rand(1, 3, 30, 30) * 0.5 + 0.25
    cands = torch.stack([flat, textured], dim=1)
    assert torch.equal(ops.select_best(cands), textured)


def test_expose_round_trip_and_direction():
    x = torch.rand(1, 3, 8, 8) * 0.5 + 0.1
    assert torch.allclose(ops.expose(x, 0.0), x, atol=1e-5)
    assert (ops.expose(x, -1.0) < x).all() and (ops.expose(x, 1.0) > x).all()
    assert ops.expose(torch.ones(1, 3, 2, 2), 2.0).max() <= 1.0
    per_image = ops.expose(torch.stack([x[0], x[0]]), torch.tensor([-1.0, 1.0]))
    assert (per_image[0] < per_image[1]).all()


def test_protect_highlights_only_touches_darkening_gammas_near_white():
    x = torch.tensor([0.2, 0.95, 1.0, 0.95])
    g = torch.tensor([0.3, 0.3, 0.3, 2.0])
    p = ops.protect_highlights(g, x, knee=0.85)
    assert p[0] == 0.3 and 0.3 < p[1] < 1.0 and p[2] == 1.0 and p[3] == 2.0
    assert torch.equal(ops.protect_highlights(g, x, knee=1.0), g)


def test_psnr_and_ssim_identity():
    a = torch.rand(2, 3, 32, 32)
    assert (ops.ssim(a, a) > 0.9999).all()
    assert (ops.psnr(a, a) > 100).all()
    assert (ops.psnr(a, (a + 0.1).clamp(0, 1)) < 25).all()
