"""Cross-stream batching with per-stream temporal state (psenet_stream/serve/batching.py), on the
real shipped weights and the cpu backend."""

from __future__ import annotations

import numpy as np
import pytest

from psenet_stream.enhancer import Enhancer
from psenet_stream.serve.batching import CrossStreamPredictor, StreamState


@pytest.fixture(scope="module")
def enhancer():
    return Enhancer.from_pretrained(backend="cpu", threads=1, infer_size=64)


class Calls:
    """Records the batch shapes the backend is called with (the real backend still runs)."""

    def __init__(self, backend):
        self.shapes: list[tuple] = []
        self._real = backend.predict_gamma
        backend.predict_gamma = self

    def __call__(self, x):
        self.shapes.append(tuple(x.shape))
        return self._real(x)


def scene(h, w, level, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = level * (0.5 + 0.3 * np.sin(xx / 9.0 + seed)[..., None] * np.cos(yy / 7.0)[..., None]) + rng.normal(0, 2, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def test_frames_of_every_stream_and_size_go_in_one_backend_call(enhancer):
    pred = CrossStreamPredictor(enhancer)
    calls = Calls(enhancer.backend)
    try:
        frames = [scene(360, 640, 60, 1), scene(240, 320, 40, 2), scene(720, 1280, 80, 3)]
        states = [StreamState(infer_size=64) for _ in frames]
        plans = pred.predict(list(zip(states, frames)))
    finally:
        enhancer.backend.predict_gamma = calls._real
    assert len(calls.shapes) == 1 and calls.shapes[0][0] == 3  # one call, three streams
    assert calls.shapes[0][2:] == (36, 64)  # the working size most frames have (16:9)
    assert [p.shape for p in plans] == [(36, 64, 3), (48, 64, 3), (36, 64, 3)]  # back at each one's own size
    outs = [pred.apply(f, p) for f, p in zip(frames, plans)]
    assert [o.shape for o in outs] == [f.shape for f in frames]
    for f, o in zip(frames, outs):
        assert o.mean() > f.mean() + 5  # dark frames are brightened
    # a frame whose working size is the batch's gets exactly what the Enhancer alone gives it
    solo = Enhancer(enhancer.backend, infer_size=64, exposure_gain=False)  # the test's StreamStates carry no gain
    np.testing.assert_allclose(plans[0], solo.predict(frames[0][None])[0], atol=1e-5)
    np.testing.assert_array_equal(outs[0], solo.apply(frames[0], solo.predict(frames[0][None])[0]))


def test_each_stream_keeps_its_own_smoothing_and_scene_cuts(enhancer):
    pred = CrossStreamPredictor(enhancer)
    a, b = StreamState(infer_size=64, smoothing=0.8), StreamState(infer_size=64, smoothing=0.8)
    steady = [scene(120, 160, 50, 7) for _ in range(6)]
    cutting = [scene(120, 160, 30 if i % 2 else 200, 9) for i in range(6)]  # a cut every frame
    together = [pred.predict([(a, c), (b, s)]) for c, s in zip(cutting, steady)]
    assert a.scene_cuts == 5 and b.scene_cuts == 0
    # b's result is what it gets alone: nothing of a's history leaked into it
    alone = StreamState(infer_size=64, smoothing=0.8)
    for (_, pb), s in zip(together, steady):
        np.testing.assert_allclose(pb, pred.predict([(alone, s)])[0], atol=1e-5)


def test_gamma_reuse_is_per_stream(enhancer):
    pred = CrossStreamPredictor(enhancer)
    calls = Calls(enhancer.backend)
    try:
        still, moving = StreamState(infer_size=64, gamma_every=4), StreamState(infer_size=64, gamma_every=4)
        f = scene(120, 160, 50, 3)
        for i in range(8):
            pred.predict([(still, f), (moving, scene(120, 160, 40 + 20 * (i % 2), i))])
    finally:
        enhancer.backend.predict_gamma = calls._real
    assert still.reuse.predicted == 2 and still.reuse.reused == 6  # every 4th frame of a still picture
    assert moving.reuse.predicted == 8 and moving.reuse.reused == 0  # every frame of a changing one
    assert [s[0] for s in calls.shapes] == [2, 1, 1, 1, 2, 1, 1, 1]  # only the frames that need it


def test_per_stream_strength(enhancer):
    pred = CrossStreamPredictor(enhancer)
    f = scene(90, 160, 50, 4)
    off, full = StreamState(infer_size=64, strength=0.0), StreamState(infer_size=64, strength=1.0)
    p_off, p_full = pred.predict([(off, f), (full, f)])
    assert np.abs(pred.apply(f, p_off).astype(int) - f).max() <= 1  # strength 0: the identity
    assert pred.apply(f, p_full).mean() > f.mean() + 5


def test_full_frame_backends_get_one_gamma_post_per_stream_in_a_batch():
    """The hook a full-frame (GPU) backend calls for a batch splits it by stream: the same as
    each stream's GammaPost on its own frame, for numpy and for torch tensors."""
    import torch

    from psenet_stream.serve.batching import _PerFramePost
    from psenet_stream.temporal import GammaPost

    rng = np.random.default_rng(0)
    gamma = rng.uniform(0.3, 3.0, (2, 3, 9, 16)).astype(np.float32)
    small = rng.uniform(0, 1, (2, 3, 9, 16)).astype(np.float32)
    for kind in (np.asarray, torch.from_numpy):
        posts = [GammaPost(strength=0.5, smoothing=0.5), GammaPost(strength=1.0, stabilize=0.9)]
        ref = [GammaPost(strength=0.5, smoothing=0.5), GammaPost(strength=1.0, stabilize=0.9)]
        got = _PerFramePost(posts)(kind(gamma), kind(small))
        want = np.concatenate([np.asarray(r(gamma[i : i + 1], small[i : i + 1])) for i, r in enumerate(ref)])
        np.testing.assert_allclose(np.asarray(got), want, atol=1e-5)
    # a backend that runs the batch in chunks (cuda's ring) calls the hook once per chunk, in order
    posts = [GammaPost(strength=0.5), GammaPost(strength=1.0), GammaPost(strength=2.0)]
    g3, s3 = np.concatenate([gamma, gamma[:1]]), np.concatenate([small, small[:1]])
    hook = _PerFramePost(posts)
    chunks = np.concatenate([hook(g3[:2], s3[:2]), hook(g3[2:], s3[2:])])
    want = np.concatenate([GammaPost(strength=k)(g3[i : i + 1], s3[i : i + 1]) for i, k in enumerate((0.5, 1.0, 2.0))])
    np.testing.assert_allclose(chunks, want, atol=1e-5)
