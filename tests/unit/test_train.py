"""The trainer: references, pseudo-GT, TV, a tiny run, checkpoints and exact resume."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from train.losses import tv_l1, tv_log2
from train.pseudo_gt import pseudo_gt
from train.references import make_references, sample_log_gammas, stratified

# --- references ----------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_references_are_stratified_on_both_sides(n):
    g = torch.Generator().manual_seed(0)
    lg = sample_log_gammas(4000, n, g)
    assert lg.shape == (4000, 2 * n)
    bright, dark = lg[:, :n], lg[:, n:]
    for i in range(n):
        lo, hi = 3.0 * i / n, 3.0 * (i + 1) / n
        col = bright[:, i]
        assert col.min() >= lo and col.max() <= hi, f"bright ref {i} outside its bin [{lo}, {hi}]"
        assert col.min() < lo + 0.05 * (hi - lo) and col.max() > hi - 0.05 * (hi - lo), "bin not covered"
        lo, hi = -2.0 + 2.0 * i / n, -2.0 + 2.0 * (i + 1) / n
        col = dark[:, i]
        # the official code's darker side puts ref i in [bin_start_i, 0] for N > 1: this must not
        assert col.min() >= lo and col.max() <= hi, f"dark ref {i} outside its bin [{lo}, {hi}]"
        assert col.min() < lo + 0.05 * (hi - lo) and col.max() > hi - 0.05 * (hi - lo), "bin not covered"
    # together the bins cover the whole ranges uniformly
    assert abs(float(bright.mean()) - 1.5) < 0.05 and abs(float(dark.mean()) + 1.0) < 0.05


def test_stratified_uniform_within_bins():
    s = stratified(20000, 4, -2.0, 0.0, torch.Generator().manual_seed(1))
    for i in range(4):
        frac = (s[:, i] - (-2.0 + 0.5 * i)) / 0.5  # position inside the bin, should be U(0, 1)
        assert abs(float(frac.mean()) - 0.5) < 0.02 and abs(float(frac.var()) - 1 / 12) < 0.01


def test_references_brighter_and_darker_and_fresh():
    x = torch.rand(3, 3, 16, 16) * 0.9 + 0.05
    g = torch.Generator().manual_seed(0)
    r = make_references(x, 2, g)
    assert r.shape == (3, 4, 3, 16, 16)
    assert (r[:, :2] >= x.unsqueeze(1) - 1e-6).all(), "log gamma in [0, 3] must brighten"
    assert (r[:, 2:] <= x.unsqueeze(1) + 1e-6).all(), "log gamma in [-2, 0] must darken"
    assert not torch.equal(r, make_references(x, 2, g)), "references are drawn fresh every call"
    # per image: different images get different gammas
    flat = torch.full((2, 3, 4, 4), 0.5)
    rr = make_references(flat, 1, g)
    assert not torch.allclose(rr[0], rr[1])


# --- pseudo-GT -----------------------------------------------------------------------------


def _textured(h, w, mean, amp, seed):
    rng = np.random.default_rng(seed)
    t = torch.from_numpy(rng.uniform(-amp, amp, size=(3, h, w)).astype(np.float32))
    base = torch.tensor([mean * 1.3, mean, mean * 0.7]).reshape(3, 1, 1)  # colourful: saturation > 0
    return (base + t).clamp(0, 1)


def test_pseudo_gt_picks_the_best_candidate_per_pixel():
    h, w = 64, 128
    good = _textured(h, w, 0.5, 0.2, 0)  # well exposed, contrasty, colourful
    dark = torch.full((3, h, w), 0.02)  # flat and black: zero contrast -> score 0
    # input: good on the left half, flat on the right; previous output: the reverse
    x = torch.where(torch.arange(w) < w // 2, good, dark).unsqueeze(0)
    prev = torch.where(torch.arange(w) >= w // 2, good, dark).unsqueeze(0)
    refs = torch.stack([torch.full((3, h, w), 0.9), torch.full((3, h, w), 0.05)]).unsqueeze(0)  # flat: score 0
    out = pseudo_gt(x, prev, refs, mu=0.5)
    assert out.shape == (1, 3, h, w)
    m = 13  # the 25x25 windows straddle the seam within 12 px of it
    assert torch.equal(out[..., : w // 2 - m], x[..., : w // 2 - m])
    assert torch.equal(out[..., w // 2 + m :], prev[..., w // 2 + m :])
    # every output pixel is one candidate's full RGB triplet (hard selection, shared by channels)
    cands = torch.cat([x, prev, refs[0]], 0)  # (4, 3, H, W)
    match = (cands == out).all(dim=1)  # (4, H, W)
    assert match.any(dim=0).all()


def test_pseudo_gt_well_exposed_level_mu():
    h, w = 48, 48
    mid = _textured(h, w, 0.5, 0.1, 1)
    bright = _textured(h, w, 0.8, 0.1, 2)
    one = torch.zeros(1, 0, 3, h, w)
    assert torch.equal(pseudo_gt(mid[None], bright[None], one, mu=0.5), mid[None])
    assert torch.equal(pseudo_gt(mid[None], bright[None], one, mu=0.8), bright[None])


# --- TV --------------------------------------------------------------------------------------


def test_tv_forms():
    g = torch.ones(1, 1, 4, 4)
    assert float(tv_l1(g)) == 0 and float(tv_log2(g)) == 0
    g[..., 2:] = 2.0  # a vertical edge: one of 3 column differences per row
    assert math.isclose(float(tv_l1(g)), 1 / 3, rel_tol=1e-6)
    assert math.isclose(float(tv_log2(g)), (math.log(2.001) - math.log(1.001)) ** 2 / 3, rel_tol=1e-5)
    gt = g.transpose(-1, -2)  # same edge, horizontal: same value (mean over H + mean over W)
    assert math.isclose(float(tv_l1(gt)), float(tv_l1(g)), rel_tol=1e-6)
    # log2 is scale-invariant-ish, l1 is not
    assert math.isclose(float(tv_log2(g * 10)), float(tv_log2(g)), rel_tol=0.01)
    assert math.isclose(float(tv_l1(g * 10)), 10 * float(tv_l1(g)), rel_tol=1e-6)


# --- a tiny run ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory):
    import cv2

    d = tmp_path_factory.mktemp("photos")
    for i in range(5):
        img = (_textured(80, 96, 0.45 + 0.05 * i, 0.25, 10 + i).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        img = cv2.GaussianBlur(img, (5, 5), 0)
        sub = d / ("a" if i % 2 else "b")
        sub.mkdir(exist_ok=True)
        cv2.imwrite(str(sub / f"p{i}.png"), img[:, :, ::-1])
    return d


def _cfg(photo_dir, out, **kw):
    from train.config import TrainConfig

    base = {"data_dir": str(photo_dir), "out": str(out), "val_count": 1, "batch": 4, "crop": 64, "steps": 6, "steps_per_epoch": 3}
    base.update({"val_every": 3, "threads": 1, "seed": 3, "val_side": 64, "val_evs": (-2.0, 1.0)})
    base.update(kw)
    return TrainConfig(**base)


def test_tiny_run_learns_writes_config_and_resumes_exactly(photo_dir, tmp_path):
    from psenet_stream.weights_io import load_model, read_weights
    from train.loop import Trainer

    # learning: with the batch and pseudo-GT held fixed, the optimizer drives the loss down
    t = Trainer(_cfg(photo_dir, tmp_path / "learn", steps=40, lr=5e-3, strategy="stale", log_every=5), progress=False)
    g = torch.Generator().manual_seed(99)
    x = t.sampler.batch(8, g)
    with torch.no_grad():
        target = pseudo_gt(x, x, make_references(x, 1, g))
    t.sampler.batch = lambda n, gen: x
    t._make_target = lambda xx, previous=None: target

    def loss():
        with torch.no_grad():
            return float(torch.nn.functional.mse_loss(t.model(x)[0], target))

    before = loss()
    res = t.fit()
    assert res["step"] == 40
    assert loss() < 0.75 * before
    logged = [r["loss"] for r in t.history if "loss" in r]
    assert logged[-1] < logged[0]

    # checkpoints carry the config; best.pt and last.pt load as ordinary weight files
    _, meta = read_weights(tmp_path / "learn" / "last.pt")
    assert meta["config"]["lr"] == 5e-3 and meta["config"]["crop"] == 64 and meta["step"] == 40
    assert meta["seed"] == 3 and meta["data"]["layout"] == "folder" and len(meta["data"]["val_files"]) == 1
    _, bmeta = load_model(tmp_path / "learn" / "best.pt")
    assert "train_state" not in bmeta and bmeta["config"]["alpha"] == 50.0

    # resume: 3 + 3 steps == 6 steps, bit for bit (default "delay" strategy: the stored batch too)
    full = Trainer(_cfg(photo_dir, tmp_path / "full"), progress=False)
    full.fit()
    half = Trainer(_cfg(photo_dir, tmp_path / "half", steps=3), progress=False)
    half.fit()
    resumed = Trainer(_cfg(photo_dir, tmp_path / "half2", steps=6, resume=str(tmp_path / "half" / "last.pt")), progress=False)
    assert resumed.step == 3
    resumed.fit()
    assert resumed.step == 6
    for (k, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k
    assert torch.equal(full.gen.get_state(), resumed.gen.get_state())
    assert full.opt.state_dict()["state"][0]["step"] == resumed.opt.state_dict()["state"][0]["step"]
    assert torch.equal(full.pending[0], resumed.pending[0])


def test_train_command_errors_on_empty_or_missing_folder(tmp_path, capsys):
    from psenet_stream.cli import main

    for d in (tmp_path / "nope", tmp_path):
        with pytest.raises(SystemExit) as e:
            main(["train", "--data", str(d), "--out", str(tmp_path / "run")])
        assert e.value.code == 3
        err = capsys.readouterr().err
        assert err.startswith("error: ") and "hint: " in err and "Traceback" not in err


def test_sampler_crops_flips_and_exposure(photo_dir):
    from train.data import Sampler, detect_layout, load_rgb

    layout, files = detect_layout(photo_dir)
    assert layout == "folder" and len(files) == 5
    imgs = [load_rgb(f, 64) for f in files]
    assert max(imgs[0].shape[1:]) == 64 and imgs[0].dtype == torch.uint8
    s = Sampler(imgs, crop=32, p_clean=0.0, ev_under=(-3.0, -2.0), ev_over=(-3.0, -2.0))
    b = s.batch(6, torch.Generator().manual_seed(0))
    assert b.shape == (6, 3, 32, 32) and b.min() >= 0 and b.max() <= 1
    s.synth = False
    clean = s.batch(6, torch.Generator().manual_seed(0))  # same crops, no exposure error
    assert float(b.mean()) < 0.6 * float(clean.mean())  # -2..-3 EV in linear light is much darker
    assert torch.equal(b > 0.999, clean > 0.999) or float(b.max()) < 1  # never brighter
    ev = Sampler(imgs, p_clean=0.25).evs(4000, torch.Generator().manual_seed(0))
    assert 0.2 < float((ev == 0).float().mean()) < 0.3
    under, over = ev[ev < 0], ev[ev > 0]
    assert under.min() >= -3 and under.max() <= -0.5 and over.min() >= 0.5 and over.max() <= 2


def test_benchmark_layouts_are_detected(tmp_path, photo_dir):
    import shutil

    from train.data import detect_layout

    src = next(photo_dir.rglob("*.png"))
    for layout, rel in {
        "sice": "sice/train_data/a.png",
        "afifi": "afifi/training/INPUT_IMAGES/a_N1.5.png",
        "lol": "lol/our485/low/1.png",
    }.items():
        root = tmp_path / layout
        (root / rel).parent.mkdir(parents=True)
        shutil.copy(src, root / rel)
        (root / "ignored.png").write_bytes(src.read_bytes())  # not part of the training split
        got, files = detect_layout(root)
        assert got == layout and [f.name for f in files] == [(root / rel).name]


# --- the pairs objective and its camera synthesis ------------------------------------------


def test_degrade_ev0_is_the_photo_and_the_shoulder_is_soft():
    from psenet_stream.synthesis import Degradation, degrade, shoulder

    x = torch.rand(2, 3, 16, 16)
    assert torch.equal(degrade(x, Degradation(0.0, photons=100, jpeg=50)), x)
    lin = torch.linspace(0, 4, 401)
    s = shoulder(lin, 0.7)
    assert torch.equal(s[lin <= 0.7], lin[lin <= 0.7])  # identity below the knee
    assert float(s.max()) < 1.0 and bool((s[1:] >= s[:-1]).all())  # monotone, never reaches white
    slope = torch.diff(s) / torch.diff(lin)
    assert float((slope[69] - slope[70]).abs()) < 0.02  # no kink at the knee
    # hard clip vs shoulder on an over-exposed photo: the shoulder keeps highlight gradations
    grad = torch.linspace(0.3, 1, 64).reshape(1, 1, 1, 64).expand(1, 3, 8, 64)
    clip = degrade(grad, Degradation(1.5, curve="clip"))
    soft = degrade(grad, Degradation(1.5, curve="shoulder", knee=0.6))
    assert int((clip == 1).sum()) > int((soft == 1).sum())


def test_noise_grows_as_exposure_drops():
    from psenet_stream.ops import srgb_to_linear
    from psenet_stream.synthesis import Degradation, degrade

    flat = torch.full((1, 3, 64, 64), 0.5)
    rel = []
    for ev in (-1.0, -3.0):
        g = torch.Generator().manual_seed(0)
        y = degrade(flat, Degradation(ev, photons=2000, read=0.002), g)
        lin = srgb_to_linear(y)
        rel.append(float(lin.std() / lin.mean()))  # noise relative to the signal
    assert rel[1] > 1.5 * rel[0]


def test_camera_model_is_seeded_and_covers_every_property():
    from psenet_stream.synthesis import CAMERA, LINEAR_ONLY

    a = [CAMERA.sample(-1.0, torch.Generator().manual_seed(s)) for s in range(200)]
    b = [CAMERA.sample(-1.0, torch.Generator().manual_seed(s)) for s in range(200)]
    assert a == b
    assert {d.curve for d in a} == {"clip", "shoulder"}
    assert any(d.jpeg for d in a) and any(not d.jpeg for d in a)
    assert any(d.photons for d in a) and any(d.wb != (1.0, 1.0, 1.0) for d in a)
    assert all(0.9 < d.wb[0] < 1.1 for d in a)  # mild white-balance shifts only
    lin = LINEAR_ONLY.sample(2.0, torch.Generator().manual_seed(0))
    assert (lin.curve, lin.photons, lin.jpeg, lin.wb) == ("clip", 0.0, 0, (1.0, 1.0, 1.0))


def test_sampler_pairs_keep_a_share_of_ev0_with_the_photo_as_target(photo_dir):
    from psenet_stream.synthesis import CAMERA
    from train.data import Sampler, find_images, load_rgb

    imgs = [load_rgb(f) for f in find_images(photo_dir)]
    s = Sampler(imgs, crop=32, p_clean=0.3, camera=CAMERA, ev_under=(-3, -0.25), ev_over=(0.25, 2.5))
    x, y = s.pairs(64, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (64, 3, 32, 32) and x.dtype == y.dtype == torch.float32
    same = [(x[i] == y[i]).all() for i in range(64)]
    assert 10 <= sum(same) <= 30  # about 30 % EV 0: input == target
    brighter = [float(x[i].mean() - y[i].mean()) for i in range(64) if not same[i]]
    assert min(brighter) < -0.05 and max(brighter) > 0.05  # both under- and over-exposure
    x2, y2 = s.pairs(64, torch.Generator().manual_seed(0))
    assert torch.equal(x, x2) and torch.equal(y, y2)


def test_pairs_objective_learns_to_restore_the_photo(photo_dir, tmp_path):
    objective = "pairs"
    from train.loop import Trainer

    t = Trainer(_cfg(photo_dir, tmp_path / objective, objective=objective, steps=60, lr=1e-2, log_every=5), progress=False)
    assert t.cfg.alpha == 0.01 and 0.0 in t.cfg.val_evs
    g = torch.Generator().manual_seed(5)
    fixed = t.sampler.pairs(8, g)
    t.sampler.pairs = lambda n, gen: fixed

    def err():
        with torch.no_grad():
            return float((t.model(fixed[0])[0] - fixed[1]).abs().mean())

    before = err()
    t.fit()
    assert err() < 0.85 * before
    assert [r for r in t.history if "l1" in r]


def test_objective_and_family_are_validated(photo_dir, tmp_path):
    with pytest.raises(ValueError, match="objective"):
        _cfg(photo_dir, tmp_path, objective="hybrid")
    with pytest.raises(ValueError, match="family"):
        _cfg(photo_dir, tmp_path, objective="pairs", family="film")
    assert _cfg(photo_dir, tmp_path).alpha == 50.0  # the paper objective keeps its default
