"""temporal.GammaPost's exposure stabilizer: holds the output level through an exposure hunt,
follows a cut at once, and computes the same on the host (numpy) and on a device (torch)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from psenet_stream.temporal import GammaPost

LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32).reshape(3, 1, 1)


def _scene(seed=0, h=18, w=32):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.2, 0.8, (3, h, w)).astype(np.float32)


def _level(small, lg):
    return float((LUMA * (1 - (1 - small) ** np.exp(lg))).sum(0).mean())


def _hunt(post, n=40, wobble=0.25):
    """A static scene whose network answer wobbles frame to frame (as under a hunting camera)."""
    small = _scene()
    levels = []
    for i in range(n):
        gamma = np.full((1, 3, *small.shape[1:]), np.exp(wobble * np.sin(i)), np.float32)
        lg = post(gamma, small[None].copy())
        levels.append(_level(small, lg[0]))
    return np.abs(np.diff(levels)).mean()


def test_stabilizer_holds_the_level_through_a_wobble():
    off = _hunt(GammaPost())
    on = _hunt(GammaPost(stabilize=0.9))
    assert on < off / 4


def test_stabilizer_follows_a_cut_at_once():
    post = GammaPost(stabilize=0.95)
    a, b = _scene(0), _scene(1) * 0.3  # a different, much darker scene
    g = np.ones((1, 3, *a.shape[1:]), np.float32)
    for _ in range(10):
        post(g, a[None].copy())
    lg = post(g * 0.5, b[None].copy())  # at the cut the network's answer is taken as it is
    assert post.scene_cuts == 1
    np.testing.assert_allclose(lg[0], np.log(0.5), atol=1e-6)


@pytest.mark.parametrize("batches", [[6], [1, 1, 1, 1, 1, 1], [2, 4]])
def test_numpy_and_torch_paths_agree(batches):
    rng = np.random.default_rng(3)
    smalls = np.stack([_scene(0) * s for s in (1, 1.02, 0.97, 1.0, 0.3, 0.31)])  # a cut at frame 4
    gammas = np.exp(rng.normal(0, 0.3, (6, 3, *smalls.shape[2:]))).astype(np.float32)
    host, dev = GammaPost(smoothing=0.4, stabilize=0.9), GammaPost(smoothing=0.4, stabilize=0.9)
    i, outs_h, outs_d = 0, [], []
    for n in batches:
        outs_h.append(host(gammas[i : i + n].copy(), smalls[i : i + n].copy()))
        outs_d.append(dev(torch.from_numpy(gammas[i : i + n].copy()), torch.from_numpy(smalls[i : i + n].copy())).numpy())
        i += n
    np.testing.assert_allclose(np.concatenate(outs_h), np.concatenate(outs_d), atol=2e-5)
    assert host.scene_cuts == dev.scene_cuts == 1


def test_gamma_reuse_runs_the_network_only_when_needed():
    from psenet_stream.temporal import GammaReuse

    calls = []

    def net(x):
        calls.append(len(x))
        return np.exp(x.mean(axis=(1, 2, 3), keepdims=True) * np.ones_like(x))

    base = _scene(0)
    frames = np.stack([base] * 6 + [base * 0.5] + [base * 0.5 + 0.001] * 5)  # a brightness change at 6
    r = GammaReuse(every=4)
    out = np.concatenate([r(net, frames[:5]), r(net, frames[5:])])
    # predicted: 0, 4 (the interval), 6 (the change), 10 (the interval again)
    assert r.predicted == 4 and r.reused == 8 and calls == [2, 2]
    ref = net(frames)
    for i, src in enumerate([0, 0, 0, 0, 4, 4, 6, 6, 6, 6, 10, 10]):
        np.testing.assert_allclose(out[i], ref[src], rtol=1e-6)
    off = GammaReuse(every=1)
    np.testing.assert_allclose(off(net, frames), ref, rtol=1e-6)
    assert off.predicted == 12 and off.reused == 0
