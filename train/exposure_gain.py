"""Fit the exposure gain (psenet_stream/exposure.py) of a weight file, with its network frozen.

    python -m train.exposure_gain DIR/train --weights psenet_stream/weights/default.pt --out runs/gain/default.pt

Every training photo is rendered at EV 0 (three times: a third of all samples, so the gain
learns to stay at 1 on footage that is fine) and at 9 exposure errors in each of the two
families of the evaluation (linear light with a hard clip, and the camera-like one of
psenet_stream/synthesis.py), each jittered by up to 0.25 EV. The product path (an Enhancer on
the cpu backend at its defaults, no temporal state) enhances each input once; the head is
then fitted on (features of the working-size input, the output, the photo), the last two at
32 × 32 px (the gain is global), by Adam on the mean squared error in sRGB of srgb(w * linear(Y))
against the photo. Nothing of DIR/test is read.

The output is the weight file with ``meta["exposure_gain"]`` added (the network's state_dict
is copied unchanged).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from psenet_stream.curve import working_size
from psenet_stream.exposure import FEATURES, features
from psenet_stream.ops import linear_to_srgb, srgb_to_linear
from train.data import find_images, load_rgb

FAMILY_EVS = (-3.0, -1.75, -0.75, 0.5, 1.0, 1.5, 2.0, 2.5)
CLEAN_COPIES = 3
FIT_LO = 0.2  # the bound while fitting; the shipped bound (lo) and dead zone are applied after



def _render(job: tuple[list[tuple[int, Path]], str, int, int]) -> dict[str, list]:
    """One worker's share of the photos: (features, output, photo, tag) per sample."""
    pairs, weights, side, seed = job
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    from psenet_stream.enhancer import Enhancer
    from psenet_stream.evaluation.photos import synthesize

    enh = Enhancer.from_pretrained(weights, backend="cpu", threads=1, exposure_gain=False)
    plan = [("linear", 0.0)] * CLEAN_COPIES + [(f, e) for f in ("linear", "camera") for e in FAMILY_EVS]
    feats, outs, gts, tags = [], [], [], []
    for k, path in pairs:
        rng = np.random.default_rng(seed * 100_000 + k)
        gt = load_rgb(path, side).permute(1, 2, 0).contiguous().numpy()
        h, w = gt.shape[:2]
        sh, sw = working_size(h, w, enh.options.infer_size)
        for j, (family, ev) in enumerate(plan):
            if ev:
                ev = float(ev + rng.uniform(-0.25, 0.25))
            x = synthesize(gt, ev, family, seed=seed * 100_000 + k * 100 + j) if ev else gt
            y = enh(x)
            small = cv2.resize(x, (sw, sh), interpolation=cv2.INTER_AREA) if (sh, sw) != (h, w) else x
            feats.append(features(small.transpose(2, 0, 1)[None].astype(np.float32) / 255.0)[0])
            outs.append(cv2.resize(y, (32, 32), interpolation=cv2.INTER_AREA))  # the gain is global: a coarse view is enough
            gts.append(cv2.resize(gt, (32, 32), interpolation=cv2.INTER_AREA))
            tags.append((path.name, family, ev))
    return {"features": feats, "outputs": outs, "photos": gts, "tags": tags}


def build_samples(folder: str, weights: str, side: int = 384, seed: int = 0, workers: int = 2, log=print) -> dict[str, list]:
    """Render every training photo through the plan above, in ``workers`` processes."""
    from multiprocessing import get_context

    files = list(enumerate(find_images(folder)))
    jobs = [(files[i::workers], weights, side, seed) for i in range(workers)]
    with get_context("spawn").Pool(workers) as pool:
        parts = pool.map(_render, jobs)
    log(f"{len(files)} photos rendered")
    return {k: [x for p in parts for x in p[k]] for k in ("features", "outputs", "photos", "tags")}


def fit(
    samples: dict[str, list],
    hidden: int = 16,
    lo: float = 0.5,
    hi: float = 1.0,
    deadzone: float = 0.3,
    steps: int = 1000,
    lr: float = 1e-2,
    clean_weight: float = 30.0,
    seed: int = 0,
    log=print,
) -> dict:
    """Adam on the sRGB MSE of the gained outputs (EV 0 samples weighted ``clean_weight``
    times: harm to good footage costs more than a missed correction); returns the parameters
    for exposure.ExposureGain."""
    torch.manual_seed(seed)
    f = torch.from_numpy(np.stack(samples["features"]).astype(np.float32))
    mu, sd = f.mean(0), f.std(0) + 1e-3
    fn = (f - mu) / sd
    lin = srgb_to_linear(torch.from_numpy(np.stack(samples["outputs"]).astype(np.float32) / 255.0))
    gs = torch.from_numpy(np.stack(samples["photos"]).astype(np.float32) / 255.0)
    sw = torch.tensor([clean_weight if float(t[2]) == 0 else 1.0 for t in samples["tags"]])
    sw = sw / sw.mean()
    l1, l2 = torch.nn.Linear(FEATURES, hidden), torch.nn.Linear(hidden, 1)
    torch.nn.init.zeros_(l2.weight)
    torch.nn.init.zeros_(l2.bias)
    params = [*l1.parameters(), *l2.parameters()]
    opt = torch.optim.Adam(params, lr=lr)
    bounds = (float(np.log(FIT_LO)), float(np.log(hi)))
    for step in range(steps):
        lw = l2(torch.nn.functional.leaky_relu(l1(fn), 0.01))[:, 0].clamp(*bounds)
        per = ((linear_to_srgb(lin * lw.exp().view(-1, 1, 1, 1)) - gs) ** 2).mean(dim=(1, 2, 3))
        loss = (per * sw).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 250 == 0 or step == steps - 1:
            log(f"step {step}: mse {loss.item():.5f}")
    return {
        "mu": mu.tolist(),
        "sd": sd.tolist(),
        "w1": l1.weight.detach().T.tolist(),
        "b1": l1.bias.detach().tolist(),
        "w2": l2.weight.detach()[0].tolist(),
        "b2": float(l2.bias.detach()[0]),
        "lo": lo,
        "hi": hi,
        "deadzone": deadzone,
        "clean_weight": clean_weight,
        "final_mse": loss.item(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", help="folder of training photos (never the test folder)")
    ap.add_argument("--weights", required=True, help="the weight file whose network is frozen")
    ap.add_argument("--out", required=True, help="where to write the weight file with the gain")
    ap.add_argument("--side", type=int, default=384)
    ap.add_argument("--hidden", type=int, default=16)
    ap.add_argument("--lo", type=float, default=0.5, help="smallest gain the product applies (linear light)")
    ap.add_argument("--deadzone", type=float, default=0.3, help="added to the log gain before the bounds (small corrections are dropped)")
    ap.add_argument("--hi", type=float, default=1.0, help="largest gain")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--clean-weight", type=float, default=30.0, help="weight of the EV 0 samples in the loss")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--samples", help="cache the rendered samples in this .npz (reused when it exists)")
    a = ap.parse_args()
    t0 = time.time()
    cache = Path(a.samples) if a.samples else None
    if cache and cache.exists():
        d = np.load(cache, allow_pickle=True)
        samples = {k: list(d[k]) for k in ("features", "outputs", "photos", "tags")}
    else:
        samples = build_samples(a.data, a.weights, a.side, a.seed, a.workers)
        if cache:
            np.savez(cache, **{k: np.array(v, dtype=object) for k, v in samples.items()})
    params = fit(samples, a.hidden, a.lo, a.hi, a.deadzone, a.steps, clean_weight=a.clean_weight, seed=a.seed)
    from psenet_stream.weights_io import read_weights, save_weights

    sd, meta = read_weights(a.weights)
    params |= {
        "fitted_on": str(a.data),
        "samples": len(samples["features"]),
        "command": "python -m train.exposure_gain " + " ".join(f"{k}={v}" for k, v in vars(a).items()),
        "seconds": round(time.time() - t0, 1),
    }
    meta = dict(meta) | {"exposure_gain": params}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    save_weights(a.out, sd, meta)
    print(json.dumps({k: params[k] for k in ("samples", "final_mse", "seconds")}))


if __name__ == "__main__":
    main()
