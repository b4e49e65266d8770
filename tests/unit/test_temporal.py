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
    r = GammaReuse(every=4, hold=0.0)  # the gamma itself (the level hold is tested below)
    out = np.concatenate([r(net, frames[:5]), r(net, frames[5:])])
    # predicted: 0, 4 (the interval), 6 (the change), 10 (the interval again)
    assert r.predicted == 4 and r.reused == 8 and calls == [2, 2]
    ref = net(frames)
    for i, src in enumerate([0, 0, 0, 0, 4, 4, 6, 6, 6, 6, 10, 10]):
        np.testing.assert_allclose(out[i], ref[src], rtol=1e-6)
    off = GammaReuse(every=1)
    np.testing.assert_allclose(off(net, frames), ref, rtol=1e-6)
    assert off.predicted == 12 and off.reused == 0


def _counting_net(calls):
    def net(x):
        calls.append(len(x))
        return np.exp(x.mean(axis=(1, 2, 3), keepdims=True) * np.ones_like(x))

    return net


def _moved(frame, dx):
    return np.roll(frame, dx, axis=2)


def _smooth_scene(h=18, w=32):
    """Broad shapes, so that a move of a few pixels is motion, not a different picture."""
    x = np.arange(w, dtype=np.float32)[None, None, :]
    y = np.arange(h, dtype=np.float32)[None, :, None]
    phase = np.array([0.0, 1.0, 2.0], np.float32)[:, None, None]
    return (0.5 + 0.3 * np.sin(2 * np.pi * x / w + phase) * np.cos(np.pi * y / h)).astype(np.float32)


@pytest.mark.parametrize(
    ("name", "change"),
    [
        ("cut", lambda base: _scene(7)),  # another scene
        ("brightness", lambda base: np.clip(base * 1.1, 0, 1)),  # a light: the mean moves, the picture does not
        ("motion", lambda base: _moved(base, 3)),  # the picture moves, its mean stays
    ],
)
def test_each_adaptive_trigger_runs_the_network_at_once(name, change):
    from psenet_stream.temporal import GammaReuse

    calls = []
    base = _smooth_scene()
    frames = np.stack([base] * 3 + [change(base)] + [change(base)] * 2).astype(np.float32)
    r = GammaReuse(every=16)
    out = r(_counting_net(calls), frames)
    assert r.predicted == 2 and r.reused == 4  # frame 0 (first) and frame 3 (the change), nothing else
    assert r.triggers["first"] == 1 and r.triggers[name] == 1
    assert sum(r.triggers.values()) == 2
    ref = _counting_net([])(frames)
    np.testing.assert_allclose(out[3:], np.broadcast_to(ref[3], out[3:].shape), rtol=1e-6)  # the new answer is reused after it
    np.testing.assert_allclose(out[:3], np.broadcast_to(ref[0], out[:3].shape), rtol=1e-6)


def test_small_changes_below_the_thresholds_reuse_until_k():
    from psenet_stream.temporal import GammaReuse

    calls = []
    base = _scene(0)
    rng = np.random.default_rng(1)
    # sensor noise (mean |diff| ~0.004) and a slow drift of the level: nothing that triggers
    frames = np.stack([np.clip(base * (1 + 0.0005 * i) + rng.normal(0, 0.005, base.shape), 0, 1) for i in range(12)]).astype(np.float32)
    r = GammaReuse(every=4, motion=0.02, brightness=0.01)
    r(_counting_net(calls), frames)
    assert r.triggers == {"first": 1, "cut": 0, "brightness": 0, "motion": 0, "age": 2}  # frames 0, 4, 8
    assert r.k == 4


def test_a_backlog_raises_k_and_pauses_the_motion_trigger_then_recovers():
    from psenet_stream.temporal import GammaReuse

    calls = []
    net = _counting_net(calls)
    base = _scene(0)
    base = _smooth_scene()
    r = GammaReuse(every=4, max_every=32)
    r(net, base[None].copy())
    for _ in range(2):
        r.note_backlog(1)  # frames waited behind the last one
    assert r.k == 16 and r.boost == 2
    # large motion on every frame: not a reason while behind
    moving = np.stack([_moved(base, (i % 2) * 3) for i in range(1, 11)]).astype(np.float32)
    r(net, moving)
    assert r.triggers["motion"] == 0 and r.predicted == 1
    r(net, _scene(9)[None].copy())  # a cut still runs the network
    r(net, base[None].copy())  # (and back)
    assert r.triggers["cut"] == 2
    for _ in range(5):
        r.note_backlog(0)
    assert r.k == 4 and r.boost == 0
    r(net, _moved(base, 3)[None].astype(np.float32))
    assert r.triggers["motion"] == 1  # caught up: motion counts again
    for _ in range(10):
        r.note_backlog(3)
    assert r.k == 32  # capped at max_every
    off = GammaReuse(every=1)
    off.note_backlog(5)
    assert off.k == 1  # every 1 (the user asked for every frame): never raised


def test_reset_forgets_the_key_frame_and_the_counts():
    from psenet_stream.temporal import GammaReuse

    r = GammaReuse(every=8)
    r(_counting_net([]), np.stack([_scene(0)] * 3))
    r.note_backlog(1)
    r.reset()
    assert r.predicted == r.reused == 0 and r.boost == 0 and sum(r.triggers.values()) == 0
    r(_counting_net([]), _scene(0)[None].copy())
    assert r.triggers["first"] == 1


def test_a_predict_that_raises_leaves_the_reuse_state_as_it_was():
    """A server probes with a predict that raises, then asks again with the real answer."""
    from psenet_stream.temporal import GammaReuse

    class Probe(Exception):
        pass

    def probe(_x):
        raise Probe

    base = _smooth_scene()
    r = GammaReuse(every=4)
    net = _counting_net([])
    with pytest.raises(Probe):
        r(probe, base[None].copy())
    assert r.predicted == 0 and sum(r.triggers.values()) == 0
    out = r(net, base[None].copy())  # the same decision: first frame, the network runs
    assert r.triggers["first"] == 1 and r.predicted == 1
    np.testing.assert_allclose(out, net(base[None].copy()), rtol=1e-6)
    r(net, base[None].copy())  # reused
    with pytest.raises(Probe):
        r(probe, _moved(base, 3)[None].astype(np.float32))  # motion: would run it
    assert r.triggers["motion"] == 0 and r.reused == 1
    r(net, _moved(base, 3)[None].astype(np.float32))
    assert r.triggers["motion"] == 1 and r.predicted == 2


def test_a_reused_gamma_keeps_the_key_frames_output_level():
    """Between two predictions the light dims by less than the brightness trigger: the reused
    gamma is raised so the frame's output level stays where the key frame's was (hold 1),
    moves half way with hold 0.5, and is the key's gamma untouched with hold 0."""
    from psenet_stream.temporal import GammaReuse, _level

    base = _smooth_scene()
    dim = (base * 0.98).astype(np.float32)  # mean luma -0.01: under the 0.015 trigger
    frames = np.stack([base, dim])

    def net(x):  # a fixed, non-uniform gamma (the network's answer for the key frame)
        return np.broadcast_to(np.linspace(0.6, 1.4, x.shape[-1], dtype=np.float32), x.shape).copy()

    g_key = net(frames[:1])[0]
    key_level = _level(base, g_key)
    out = {h: GammaReuse(every=8, hold=h)(net, frames) for h in (0.0, 0.5, 1.0)}
    for h, g in out.items():
        np.testing.assert_allclose(g[0], g_key, rtol=1e-6)  # the key frame: the network's own answer
    np.testing.assert_allclose(out[0.0][1], g_key, rtol=1e-6)
    drift = abs(_level(dim, g_key) - key_level)
    assert drift > 0.005  # without the hold the level moves with the light
    assert abs(_level(dim, out[1.0][1]) - key_level) < 0.1 * drift  # held (exact for a flat frame, close here)
    half = _level(dim, out[0.5][1])
    assert abs(half - key_level) < 0.75 * drift and abs(half - key_level) > 0.25 * drift
    assert np.all(out[1.0][1] > g_key)  # a dimmer frame is brightened: every gamma raised by one factor
    ratio = out[1.0][1] / g_key
    np.testing.assert_allclose(ratio, ratio.flat[0], rtol=1e-5)
