"""The training loop: Adam + ReduceLROnPlateau, pseudo-GT per step, checkpoints, resume.

A run folder holds ``config.json``, ``log.jsonl`` (one JSON record per log interval and per
held-out check), ``last.pt`` (model + everything needed to resume bit-exactly: optimizer,
scheduler, RNG, step, the delayed batch) and ``best.pt`` (the model with the best held-out
PSNR so far; no training state). Both are psenet-stream weight files (weights_io), readable
with ``load_model`` and carrying the full config in their meta.
"""

from __future__ import annotations

import json
import math
import platform
import time
from pathlib import Path
from typing import Any

import torch

from psenet_stream import guard
from psenet_stream.commands._common import StatusLine
from psenet_stream.errors import InputError, UserError
from psenet_stream.model import PSENet
from psenet_stream.ops import psnr
from psenet_stream.synthesis import CAMERA, LINEAR_ONLY
from psenet_stream.weights_io import read_weights, save_weights
from train.config import TrainConfig
from train.data import Sampler, detect_layout, find_images, load_rgb, split_holdout, validation_set
from train.losses import pairs_loss, total_loss
from train.pseudo_gt import pseudo_gt
from train.references import make_references

# settings that may differ when resuming (everything else comes from the checkpoint)
RESUME_OVERRIDES = ("out", "steps", "epochs", "minutes", "resume", "val_every", "log_every", "threads", "device")


def _load_set(files: list[Path], max_side: int) -> list[torch.Tensor]:
    return [load_rgb(f, max_side) for f in files]


def _manifest_sha(data_dir: Path) -> str | None:
    """sha256 of the data MANIFEST's file list (path + sha256 of each file), if there is one.

    Content-based, so rebuilding the same data folder (psenet-stream data --force) keeps it."""
    import hashlib

    for p in (data_dir / "MANIFEST.json", data_dir.parent / "MANIFEST.json"):
        if p.is_file():
            try:
                files = json.loads(p.read_text())["files"]
                return hashlib.sha256(json.dumps(sorted((f["path"], f["sha256"]) for f in files)).encode()).hexdigest()
            except (ValueError, KeyError, TypeError):
                return hashlib.sha256(p.read_bytes()).hexdigest()
    return None


@torch.no_grad()
def evaluate(model: torch.nn.Module, pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """Mean PSNR (dB) of the model's output against the well-exposed originals."""
    if not pairs:
        return float("nan")
    model.eval()
    dev = next(model.parameters()).device
    vals = [float(psnr(model(x.to(dev))[0].clamp(0, 1), ref.to(dev))) for x, ref in pairs]
    model.train()
    return sum(vals) / len(vals)


class Trainer:
    def __init__(self, cfg: TrainConfig, progress: bool = True):
        self.progress_enabled = progress
        resume_meta = None
        if cfg.resume:
            sd, resume_meta = read_weights(cfg.resume)
            if "train_state" not in resume_meta:
                raise UserError(
                    f"{cfg.resume} has no training state", "resume from a last.pt written by psenet-stream train (best.pt is weights only)"
                )
            saved = TrainConfig.from_dict(resume_meta["config"])
            for k in RESUME_OVERRIDES:
                setattr(saved, k, getattr(cfg, k))
            cfg = saved
        self.cfg = cfg
        torch.set_num_threads(int(cfg.threads))
        torch.manual_seed(cfg.seed)
        self.gen = torch.Generator().manual_seed(cfg.seed)

        # data
        data_dir = Path(cfg.data_dir).expanduser()
        self.layout, files = detect_layout(data_dir)
        if cfg.val_dir:
            val_files = find_images(Path(cfg.val_dir).expanduser())
            if not val_files:
                raise InputError(f"no images in the validation folder {cfg.val_dir}", "pass a folder of photos to --val, or leave it out")
            train_files = files
        else:
            train_files, val_files = split_holdout(files, cfg.val_count)
        if not train_files:
            raise InputError(f"no training images left in {data_dir}", "add photos, or lower --val-count")
        self.train_files, self.val_files = train_files, val_files
        synth = cfg.synth == "on" or (cfg.synth == "auto" and self.layout == "folder")
        self.sampler = Sampler(
            _load_set(train_files, cfg.max_side), crop=cfg.crop, scale=cfg.scale, synth=synth, ev_under=cfg.ev_under, ev_over=cfg.ev_over,
            p_clean=cfg.p_clean, hflip=cfg.hflip, vflip=cfg.vflip, p_over=cfg.p_over,
            camera=CAMERA if cfg.family == "camera" else LINEAR_ONLY,
        )  # fmt: skip
        self.val_pairs = validation_set(_load_set(val_files, max(cfg.max_side, cfg.val_side)), cfg.val_side, cfg.val_evs)
        self.data_desc = {
            "dir": str(data_dir.resolve()),
            "layout": self.layout,
            "synthetic_exposure": synth,
            "train_files": [str(f.relative_to(data_dir)) if f.is_relative_to(data_dir) else str(f) for f in train_files],
            "val_files": [f.name for f in val_files],
            "val_evs": list(cfg.val_evs),
            "manifest_sha256": _manifest_sha(data_dir),
        }

        # model and optimisation
        self.model = PSENet(head=cfg.head)
        if cfg.init and not resume_meta:
            sd0, _ = read_weights(cfg.init)
            missing, unexpected = self.model.load_state_dict(sd0, strict=False)
            if unexpected or any(not k.startswith("head.") for k in missing):
                raise InputError(f"--init {cfg.init} does not match the network", "pass weights written by psenet-stream train")
        if cfg.head_only:
            if self.model.head is None:
                raise InputError("--head-only needs the exposure head", "add --head")
            for name, p in self.model.named_parameters():
                p.requires_grad_(name.startswith("head."))
        if cfg.device == "cuda" and not torch.cuda.is_available():
            raise UserError("--device cuda: this torch build sees no CUDA GPU", "train with --device cpu, or install a CUDA build of torch")
        self.device = torch.device(cfg.device)
        self.model.to(self.device).train()
        self.opt = torch.optim.Adam([p for p in self.model.parameters() if p.requires_grad], lr=cfg.lr, betas=cfg.betas)
        self.sched = torch.optim.lr_scheduler.ReduceLROnPlateau(self.opt, mode="min", factor=0.5, patience=cfg.patience)
        self.step = 0
        self.pending: tuple[torch.Tensor, torch.Tensor] | None = None  # (x_{n-1}, pgt_{n-1}) for strategy "delay"
        self.epoch_sum, self.epoch_n = 0.0, 0
        self.best_psnr, self.best_step = -math.inf, 0
        self.elapsed = 0.0
        self.images = 0
        self.history: list[dict] = []
        if resume_meta:
            self.model.load_state_dict(sd, strict=True)
            self.model.to(self.device)
            st = resume_meta["train_state"]
            self.opt.load_state_dict(st["optimizer"])
            self.sched.load_state_dict(st["scheduler"])
            self.gen.set_state(st["rng"])
            torch.set_rng_state(st["torch_rng"])
            self.step = int(st["step"])
            self.pending = (st["pending_x"], st["pending_pgt"]) if st.get("pending_x") is not None else None
            self.epoch_sum, self.epoch_n = float(st["epoch_sum"]), int(st["epoch_n"])
            self.best_psnr, self.best_step = float(st["best_psnr"]), int(st["best_step"])
            self.elapsed, self.images = float(st["elapsed"]), int(st["images"])
        self.out = Path(cfg.out)
        self.out.mkdir(parents=True, exist_ok=True)

    # --- one optimizer step -------------------------------------------------------------

    @torch.no_grad()
    def _make_target(self, x: torch.Tensor, previous: torch.Tensor | None = None) -> torch.Tensor:
        if previous is None:
            previous = self.model(x)[0]
        refs = make_references(x, self.cfg.n_refs, self.gen, self.cfg.log_gamma_bright, self.cfg.log_gamma_dark)
        return pseudo_gt(x, previous, refs, self.cfg.mu)

    def _pairs_step(self) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
        """Objective "pairs": restore the photo from its synthetic exposure error."""
        cfg = self.cfg
        x, photo = (t.to(self.device, non_blocking=True) for t in self.sampler.pairs(cfg.batch, self.gen))
        y, gamma = self.model(x)
        loss, l1, tv = pairs_loss(y, photo, gamma, cfg.alpha, cfg.tv)
        return loss, gamma, {"l1": float(l1.detach()), "tv": float(tv.detach())}

    def train_step(self) -> dict[str, float] | None:
        """Draw a batch and (usually) update once. Returns the loss terms, or None for the very
        first batch of a delayed run (it is stored, not trained on: the official behaviour)."""
        cfg = self.cfg
        if cfg.objective != "paper":
            loss, gamma, terms = self._pairs_step()
            self._update(loss, cfg.batch)
            return {"loss": float(loss.detach()), **terms, "gamma_mean": float(gamma.detach().mean())}
        x = self.sampler.batch(cfg.batch, self.gen).to(self.device)
        if cfg.strategy == "delay":
            pgt = self._make_target(x)
            prev, self.pending = self.pending, (x, pgt)
            if prev is None:
                return None
            x, pgt = prev
            y, gamma = self.model(x)
        else:  # "stale": the current weights' output on this batch is the previous-output candidate;
            y, gamma = self.model(x)  # the training forward gives it for free (same weights, same input)
            pgt = self._make_target(x, y.detach())
        loss, mse, tv = total_loss(y, pgt, gamma, cfg.alpha, cfg.tv)
        self._update(loss, x.shape[0])
        return {"loss": float(loss.detach()), "mse": float(mse.detach()), "tv": float(tv.detach()), "gamma_mean": float(gamma.detach().mean())}

    def _update(self, loss: torch.Tensor, images: int) -> None:
        """One optimizer step; the plateau scheduler sees the epoch-mean loss."""
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.step += 1
        self.images += images
        self.epoch_sum += float(loss.detach())
        self.epoch_n += 1
        if self.step % self.cfg.steps_per_epoch == 0:
            self.sched.step(self.epoch_sum / max(1, self.epoch_n))
            self.epoch_sum, self.epoch_n = 0.0, 0

    # --- checkpoints ----------------------------------------------------------------------

    def meta(self, with_state: bool, val_psnr: float | None = None) -> dict[str, Any]:
        m: dict[str, Any] = {
            "source": "psenet-stream train",
            "config": self.cfg.to_dict(),
            "step": self.step,
            "epoch": self.step / self.cfg.steps_per_epoch,
            "seed": self.cfg.seed,
            "data": self.data_desc,
            "torch": str(torch.__version__),
            "python": platform.python_version(),
            "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
            "threads": torch.get_num_threads(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "train_seconds": round(self.elapsed, 1),
            "images_per_s": round(self.images / self.elapsed, 2) if self.elapsed > 0 else None,
            "val_psnr": val_psnr,
            "best_val_psnr": self.best_psnr if self.best_psnr > -math.inf else None,
            "best_step": self.best_step,
            "lr": self.opt.param_groups[0]["lr"],
        }
        if with_state:
            m["train_state"] = {
                "optimizer": self.opt.state_dict(),
                "scheduler": self.sched.state_dict(),
                "rng": self.gen.get_state(),
                "torch_rng": torch.get_rng_state(),
                "step": self.step,
                "pending_x": self.pending[0] if self.pending else None,
                "pending_pgt": self.pending[1] if self.pending else None,
                "epoch_sum": self.epoch_sum,
                "epoch_n": self.epoch_n,
                "best_psnr": self.best_psnr,
                "best_step": self.best_step,
                "elapsed": self.elapsed,
                "images": self.images,
            }
        return m

    def _cpu_state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu() for k, v in self.model.state_dict().items()}

    def save_last(self, val_psnr: float | None = None) -> None:
        save_weights(self.out / "last.pt", self._cpu_state(), self.meta(True, val_psnr))

    def check(self) -> float:
        """Held-out PSNR; writes best.pt when it improves (or when there is no held-out set)."""
        v = evaluate(self.model, self.val_pairs)
        improved = (math.isnan(v) and self.best_step < self.step) or v > self.best_psnr
        if improved:
            self.best_psnr, self.best_step = (v if not math.isnan(v) else -math.inf), self.step
            save_weights(self.out / "best.pt", self._cpu_state(), self.meta(False, v))
        self.log({"step": self.step, "val_psnr": v, "best_psnr": self.best_psnr, "best_step": self.best_step})
        return v

    def log(self, rec: dict) -> None:
        rec = {"t": round(self.elapsed, 2), **rec}
        self.history.append(rec)
        with open(self.out / "log.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")

    # --- the loop -------------------------------------------------------------------------

    def fit(self) -> dict[str, Any]:
        cfg = self.cfg
        total = cfg.total_steps
        guard.write_text(self.out / "config.json", json.dumps(self.cfg.to_dict(), indent=1), overwrite=True, what="training config")
        if self.step == 0 and self.val_pairs:
            base = sum(float(psnr(x, r)) for x, r in self.val_pairs) / len(self.val_pairs)
            self.log({"step": 0, "val_input_psnr": base, "n_train": len(self.train_files), "n_val_pairs": len(self.val_pairs)})
        # on a terminal: one line rewritten in place (5 Hz); elsewhere (a log file): a plain line every 15 s
        bar = StatusLine(self.progress_enabled, interval=0.2, plain_interval=15.0, width=150)
        deadline = time.time() + cfg.minutes * 60 if cfg.minutes else None
        window: list[tuple[float, int]] = []
        acc: dict[str, float] = {}
        val = float("nan")
        try:
            while self.step < total:
                t0 = time.time()
                terms = self.train_step()
                dt = time.time() - t0
                self.elapsed += dt
                if terms is None:
                    continue
                window = (window + [(dt, cfg.batch)])[-20:]
                ips = sum(b for _, b in window) / max(1e-9, sum(d for d, _ in window))
                for k, v in terms.items():
                    acc[k] = acc.get(k, 0.0) + v
                acc["n"] = acc.get("n", 0) + 1
                if self.step % cfg.log_every == 0:
                    n = acc.pop("n")
                    self.log(
                        {
                            "step": self.step,
                            **{k: v / n for k, v in acc.items()},
                            "lr": self.opt.param_groups[0]["lr"],
                            "images_per_s": round(ips, 2),
                        }
                    )
                    acc = {}
                last_val = self.step % cfg.val_every == 0 or self.step == total
                if last_val:
                    val = self.check()
                    self.save_last(val)
                bar.update(
                    f"step {self.step}/{total} ep {self.step // cfg.steps_per_epoch} loss {terms['loss']:.5f} lr {self.opt.param_groups[0]['lr']:.1e} "
                    f"{ips:.1f} img/s | "
                    + (f"held-out {val:.2f} dB (best {self.best_psnr:.2f} @ {self.best_step})" if not math.isnan(val) else "held-out -"),
                    force=last_val,
                )
                if deadline and time.time() > deadline:
                    break
        except KeyboardInterrupt:
            bar.close()
            self.save_last()
            raise
        bar.close()
        if not self.history or self.history[-1].get("step") != self.step or "val_psnr" not in self.history[-1]:
            val = self.check()
        self.save_last(val)
        return {
            "step": self.step,
            "seconds": self.elapsed,
            "images_per_s": self.images / self.elapsed if self.elapsed else 0.0,
            "best_psnr": self.best_psnr,
            "best_step": self.best_step,
            "last_psnr": val,
            "out": str(self.out),
        }


def run(cfg: TrainConfig, progress: bool = True) -> dict[str, Any]:
    return Trainer(cfg, progress=progress).fit()
