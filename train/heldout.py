"""A quick held-out check of weight files on photos with synthetic exposure errors.

    python -m train.heldout DIR/test runs/x/best.pt [more.pt ...] [--side 512]

For each weight file: PSNR / SSIM of the output against the original photo, per EV, on every
photo of the folder rendered at EV -2.5 .. +1.5 in linear light (``ops.expose``), plus the
identity (the input itself) as the baseline. This is the trainer's own check for choosing
what to ship; the project's evaluation command is ``psenet-stream eval``.
"""

from __future__ import annotations

import argparse
import json

import torch

from psenet_stream.ops import expose, psnr, ssim
from psenet_stream.weights_io import load_model
from train.data import find_images, load_rgb

EVS = (-2.5, -1.5, -1.0, 0.0, 1.0, 1.5, 2.0)


@torch.no_grad()
def heldout(folder: str, weights: list[str], side: int = 512, evs: tuple[float, ...] = EVS, device: str = "cpu") -> dict:
    imgs = []
    for f in find_images(folder):
        x = load_rgb(f, side).float().div(255).unsqueeze(0).to(device)
        imgs.append(x)
    models = {"identity": None}
    for w in weights:
        models[w] = load_model(w)[0].to(device)
    res: dict = {}
    for name, m in models.items():
        per_ev = {}
        for ev in evs:
            ps, ss = [], []
            for ref in imgs:
                inp = ref if ev == 0 else expose(ref, ev)
                out = inp if m is None else m(inp)[0].clamp(0, 1)
                ps.append(float(psnr(out, ref)))
                ss.append(float(ssim(out, ref)))
            per_ev[str(ev)] = {"psnr": sum(ps) / len(ps), "ssim": sum(ss) / len(ss)}
        none = [v["psnr"] for k, v in per_ev.items() if float(k) == 0]
        under = [v["psnr"] for k, v in per_ev.items() if float(k) < 0]
        over = [v["psnr"] for k, v in per_ev.items() if float(k) > 0]
        res[name] = {
            "psnr": sum(v["psnr"] for v in per_ev.values()) / len(per_ev),
            "ssim": sum(v["ssim"] for v in per_ev.values()) / len(per_ev),
            "psnr_under": sum(under) / max(1, len(under)),
            "psnr_over": sum(over) / max(1, len(over)),
            "psnr_none": sum(none) / max(1, len(none)),
            "per_ev": per_ev,
        }
    return {"folder": folder, "photos": len(imgs), "side": side, "evs": list(evs), "results": res}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder")
    ap.add_argument("weights", nargs="+")
    ap.add_argument("--side", type=int, default=512)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    r = heldout(a.folder, a.weights, a.side, device=a.device)
    for name, v in r["results"].items():
        evs = " ".join(f"{k}:{e['psnr']:.2f}" for k, e in v["per_ev"].items())
        print(f"{name:40s} PSNR {v['psnr']:.2f} (none {v['psnr_none']:.2f}, under {v['psnr_under']:.2f}, over {v['psnr_over']:.2f}) SSIM {v['ssim']:.3f} | {evs}")
    if a.json:
        from psenet_stream import guard

        guard.write_text(a.json, json.dumps(r, indent=1), overwrite=True, create_parent=True, what="report")


if __name__ == "__main__":
    main()
