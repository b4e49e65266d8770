"""Camera-like exposure errors, for training on photo pairs and for the second evaluation family.

A well-exposed sRGB photo ``x`` (float in [0, 1], (N, 3, H, W)) stands in for the scene. A
camera that mis-exposes it by ``ev`` stops records, in order:

1. scene radiance in linear light, scaled by ``2 ** ev``: L = srgb_to_linear(x) * 2**ev;
2. sensor noise that grows as exposure drops (Poisson-Gaussian, in linear light):
   L + sqrt(L / photons + read**2) * n, n ~ N(0, 1); at a fixed photon count per white
   level, a stop less light halves the signal but only divides the shot noise by sqrt(2);
3. a mild white-balance error: per-channel linear gains exp(N(0, wb)) with green fixed at 1;
4. the tone curve: a hard clip at white (``"clip"``, what ``ops.expose`` and ``eval``'s linear
   family do), or a soft highlight shoulder (``"shoulder"``: identity below ``knee``, then
   knee + (1 - knee) * (1 - exp(-(L - knee) / (1 - knee))), slope 1 at the knee and 1 at
   infinity, as camera picture profiles roll highlights off);
5. sRGB encoding and 8-bit quantisation;
6. lossy compression: JPEG at ``jpeg`` quality (a stand-in for H.264's DCT blocks and
   ringing at a similar quality), or none.

EV 0 means "leave it alone": the photo itself is the input and the target (``degrade``
returns it unchanged), so "do no harm" is learned and measured on the real photo.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from psenet_stream.ops import linear_to_srgb, srgb_to_linear

Curve = Literal["clip", "shoulder"]
CURVES: tuple[str, ...] = ("clip", "shoulder")


@dataclass(frozen=True)
class Degradation:
    """One camera's exposure error. ``photons`` 0 means no noise; ``jpeg`` 0 means no compression."""

    ev: float
    curve: Curve = "clip"
    knee: float = 0.8  # linear level where the shoulder starts (curve "shoulder")
    photons: float = 0.0  # photo-electrons at the white level (higher: cleaner)
    read: float = 0.0  # read noise, linear units
    wb: tuple[float, float, float] = (1.0, 1.0, 1.0)  # linear gains
    jpeg: int = 0  # JPEG quality 1..100, 0 for none

    def __post_init__(self) -> None:
        if self.curve not in CURVES:
            raise ValueError(f"Invalid curve ({self.curve!r}). Supported values are {', '.join(CURVES)}.")
        if not 0.05 <= self.knee < 1.0:
            raise ValueError(f"knee must be in [0.05, 1), got {self.knee}")
        if not 0 <= self.jpeg <= 100:
            raise ValueError(f"jpeg quality must be 0 (none) or 1..100, got {self.jpeg}")


def shoulder(lin: torch.Tensor, knee: float) -> torch.Tensor:
    """Soft highlight roll-off of linear values (identity below ``knee``, asymptote 1)."""
    k = float(knee)
    over = (lin - k).clamp_min(0.0)
    return torch.where(lin <= k, lin, k + (1.0 - k) * (1.0 - torch.exp(-over / (1.0 - k))))


def _jpeg(img: torch.Tensor, quality: int) -> torch.Tensor:
    import cv2

    arr = (img.permute(1, 2, 0).numpy() * 255.0).round().clip(0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(arr[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # cv2 reports no reason; the degradation is optional, keep the uncompressed pixels
        return img
    dec = cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1]
    return torch.from_numpy(np.ascontiguousarray(dec)).permute(2, 0, 1).float().div_(255.0)


def degrade(x: torch.Tensor, d: Degradation, generator: torch.Generator | None = None) -> torch.Tensor:
    """Apply ``d`` to photos ``x`` (N, 3, H, W) float in [0, 1]; returns the same shape, 8-bit
    values in [0, 1]. Deterministic for a given ``generator`` state. EV 0 returns ``x``."""
    if d.ev == 0:
        return x
    lin = srgb_to_linear(x.float()) * (2.0 ** float(d.ev))
    if d.photons > 0 or d.read > 0:
        var = lin.clamp_min(0.0) / d.photons if d.photons > 0 else torch.zeros_like(lin)
        var = var + d.read**2
        noise = torch.randn(lin.shape, generator=generator, dtype=lin.dtype)
        lin = lin + var.sqrt() * noise
    if d.wb != (1.0, 1.0, 1.0):
        lin = lin * torch.tensor(d.wb, dtype=lin.dtype).reshape(1, 3, 1, 1)
    lin = lin.clamp_min(0.0)
    lin = shoulder(lin, d.knee) if d.curve == "shoulder" else lin.clamp(max=1.0)
    y = (linear_to_srgb(lin) * 255.0).round() / 255.0
    if d.jpeg:
        y = torch.stack([_jpeg(img, d.jpeg) for img in y])
    return y


@dataclass(frozen=True)
class CameraModel:
    """How random degradations are drawn: the ranges of every camera property."""

    p_shoulder: float = 0.5  # share of soft-shoulder tone curves (the rest hard-clip)
    knee: tuple[float, float] = (0.55, 0.9)
    p_noise: float = 0.7
    photons: tuple[float, float] = (300.0, 8000.0)  # log-uniform
    read: tuple[float, float] = (0.0005, 0.004)  # log-uniform
    p_wb: float = 0.5
    wb_sigma: float = 0.04  # log-gain standard deviation per channel (about +-4 %, cut at 2 sigma)
    p_jpeg: float = 0.5
    jpeg: tuple[int, int] = (40, 95)

    def sample(self, ev: float, g: torch.Generator) -> Degradation:
        """A random camera for exposure error ``ev`` (EV 0 gives the identity)."""

        def u(lo: float = 0.0, hi: float = 1.0) -> float:
            return lo + (hi - lo) * float(torch.rand((), generator=g))

        def logu(lo: float, hi: float) -> float:
            return float(np.exp(u(np.log(lo), np.log(hi))))

        curve: Curve = "shoulder" if u() < self.p_shoulder else "clip"
        knee = u(*self.knee)
        photons, read = (logu(*self.photons), logu(*self.read)) if u() < self.p_noise else (0.0, 0.0)
        if u() < self.p_wb:
            n = torch.randn(2, generator=g).clamp_(-2.0, 2.0).mul_(self.wb_sigma).exp_().tolist()
            wb = (float(n[0]), 1.0, float(n[1]))
        else:
            wb = (1.0, 1.0, 1.0)
        jpeg = round(u(*self.jpeg)) if u() < self.p_jpeg else 0
        return Degradation(ev=float(ev), curve=curve, knee=knee, photons=photons, read=read, wb=wb, jpeg=jpeg)


LINEAR_ONLY = CameraModel(p_shoulder=0.0, p_noise=0.0, p_wb=0.0, p_jpeg=0.0)
CAMERA = CameraModel()


def camera_expose(img: np.ndarray, ev: float, seed: int) -> np.ndarray:
    """The evaluation's camera-like family: uint8 (H, W, 3) RGB -> uint8, one fixed random
    camera per (photo, EV, seed)."""
    g = torch.Generator().manual_seed(int(seed))
    d = CAMERA.sample(ev, g)
    x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).unsqueeze(0).double().div(255.0)
    y = degrade(x, d, g)
    return (y[0].permute(1, 2, 0) * 255.0).round().clamp(0, 255).to(torch.uint8).numpy()
