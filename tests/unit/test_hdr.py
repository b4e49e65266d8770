"""psenet_stream/hdr.py and curve.apply_float: the transfer functions against BT.2100 /
BT.2408 reference points, round trips, and the high-bit-depth curve against the reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from psenet_stream import hdr
from psenet_stream.curve import apply_exact, apply_float


def test_reference_points():
    # BT.2408: reference white 203 cd/m² is PQ 58 % and HLG 75 % (on a 1000 cd/m² display)
    assert hdr.nits_to_pq(np.array(203.0)) == pytest.approx(0.58, abs=0.005)
    assert hdr.pq_to_nits(np.array(1.0)) == pytest.approx(10000.0, rel=1e-4)
    grey = np.full((1, 3), 0.75, np.float32)
    assert hdr.hlg_to_nits(grey)[0, 0] == pytest.approx(203.0, rel=0.01)
    assert hdr.hlg_to_nits(np.ones((1, 3), np.float32))[0, 0] == pytest.approx(1000.0, rel=1e-3)


@pytest.mark.parametrize("trc", [hdr.PQ, hdr.HLG])
def test_round_trip_and_rendition(trc):
    rng = np.random.default_rng(0)
    sig = rng.integers(2000, 60000, (16, 16, 3)).astype(np.uint16)
    back = hdr.from_light(hdr.to_light(sig, trc), trc)
    assert np.abs(back.astype(int) - sig.astype(int)).max() <= 8  # float32 maths, 16-bit codes
    r = hdr.rendition(sig, trc)
    assert r.dtype == np.float32 and 0.0 <= r.min() and r.max() <= 1.0


class _Identity:
    class options:
        highlight_knee = 0.95

    def predict(self, frames):
        return [np.zeros((4, 4, 3), np.float32) for _ in frames]  # log gamma 0: gamma 1


class _Brighten(_Identity):
    def predict(self, frames):
        return [np.full((4, 4, 3), 0.7, np.float32) for _ in frames]


@pytest.mark.parametrize("trc", [hdr.PQ, hdr.HLG])
def test_hdr_enhancer_keeps_signal_and_highlights(trc):
    light = np.concatenate([np.full((4, 8, 3), 0.05, np.float32), np.full((4, 8, 3), 4.0, np.float32)])  # dim / 4x white
    sig = hdr.from_light(light, trc)
    same = hdr.HdrEnhancer(_Identity(), trc).enhance_frames(sig[None])[0]
    assert np.abs(same.astype(int) - sig.astype(int)).max() <= 8  # gamma 1 changes nothing
    out = hdr.HdrEnhancer(_Brighten(), trc).enhance_frames(sig[None])[0]
    assert (out[:4] > sig[:4] + 1000).all()  # the dim part brightened
    assert np.abs(out[4:].astype(int) - sig[4:].astype(int)).max() <= 8  # above reference white: untouched
    sdr = hdr.HdrEnhancer(_Identity(), trc, "sdr").enhance_frames(sig[None])[0]
    assert sdr.dtype == np.uint8 and sdr[4:].min() > 235 and sdr[:4].max() < 128


def test_apply_float_matches_the_reference():
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 65536, (20, 30, 3)).astype(np.uint16)
    lg = rng.uniform(-1.5, 1.5, (20, 30, 3)).astype(np.float32)  # same size: no resampling differences
    got = apply_float(frame, lg, 0.95)
    x = torch.from_numpy(frame.astype(np.float32) / 65535).permute(2, 0, 1)[None]
    ref = apply_exact(x, torch.from_numpy(lg).permute(2, 0, 1)[None], 0.95)[0].permute(1, 2, 0).numpy() * 65535
    assert got.dtype == np.uint16
    assert np.abs(got.astype(np.float64) - ref).max() <= 1.0
