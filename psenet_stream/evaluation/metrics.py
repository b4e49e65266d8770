"""Image quality metrics for evaluation: full-reference, clipping and the paper's own score.

All functions take uint8 (H, W, 3) RGB images or float (N, 3, H, W) tensors in [0, 1] and
return plain Python floats (per image) so results can go straight into JSON.

- ``psnr`` / ``ssim``: against a reference, on RGB in [0, 1] (ops.psnr / ops.ssim: data
  range 1, SSIM with the 11x11 Gaussian window, averaged over channels), as the official
  test pipeline does with piq's defaults.
- ``clipped_fraction``: the fraction of pixels with any channel at 0 or 255, i.e. detail
  that is lost for good (the paper's curve maps white to white and black to black).
- ``nr_score``: the mean over pixels of the paper's no-reference quality score
  (ops.quality_score: saturation x contrast / |mean - 0.5|), the quantity PSENet's
  pseudo ground truth maximises. Higher is "better exposed" by the paper's own measure;
  it is not a fidelity metric and can be gamed by over-contrasted output.
"""

from __future__ import annotations

import numpy as np
import torch

from psenet_stream import ops

__all__ = ["clipped_fraction", "image_metrics", "luma_mean", "nr_score", "psnr", "ssim", "to_tensor"]


def to_tensor(img: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (H, W, 3) / (N, H, W, 3) RGB, or a float tensor, -> float32 (N, 3, H, W) in [0, 1]."""
    if torch.is_tensor(img):
        t = img.float()
        return t[None] if t.dim() == 3 else t
    a = np.asarray(img)
    if a.dtype != np.uint8:
        raise TypeError(f"expected uint8 RGB, got {a.dtype}")
    if a.ndim == 3:
        a = a[None]
    return torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2))).float().div_(255.0)


def psnr(out, ref) -> float:
    """PSNR in dB of one image against its reference (data range 1)."""
    return float(ops.psnr(to_tensor(out), to_tensor(ref))[0])


def ssim(out, ref) -> float:
    """SSIM of one image against its reference (Gaussian 11x11, sigma 1.5, RGB mean)."""
    return float(ops.ssim(to_tensor(out), to_tensor(ref))[0])


def clipped_fraction(img) -> float:
    """Fraction of pixels with any channel at 0 or 255 (for floats: <= 0.5/255 or >= 254.5/255)."""
    if torch.is_tensor(img):
        q = (img.float() * 255.0).round()
        q = q[None] if q.dim() == 3 else q
        clip = ((q <= 0) | (q >= 255)).any(dim=1)
        return float(clip.float().mean())
    a = np.asarray(img)
    if a.dtype != np.uint8:
        raise TypeError(f"expected uint8 RGB, got {a.dtype}")
    return float(((a == 0) | (a == 255)).any(axis=-1).mean())


def _score_map(t: torch.Tensor) -> torch.Tensor:
    # the 25x25 reflect-padded window needs a side > 12 px; smaller images use a smaller window
    size = min(ops.PATCH, 2 * min(t.shape[-2:]) - 1)
    return ops.quality_score(t, size=size)


def nr_score(img) -> float:
    """Mean of the paper's per-pixel no-reference quality score (ops.quality_score)."""
    return float(_score_map(to_tensor(img)).mean())


def luma_mean(img) -> float:
    """Mean BT.709 luma of an image in [0, 1] (computed on the gamma-encoded values)."""
    return float(ops.luma(to_tensor(img)).mean())


def image_metrics(out: np.ndarray, ref: np.ndarray | None) -> dict[str, float]:
    """All the per-image numbers the evaluation reports; psnr/ssim only with a reference."""
    o = to_tensor(out)
    m = {"clipped": clipped_fraction(out), "nr_score": float(_score_map(o).mean())}
    if ref is not None:
        r = to_tensor(ref)
        if r.shape != o.shape:
            raise ValueError(f"output {tuple(o.shape)} and reference {tuple(r.shape)} differ in size")
        m["psnr"] = float(ops.psnr(o, r)[0])
        m["dy"] = 255.0 * float(ops.luma(o).mean() - ops.luma(r).mean())  # brightness error, 8-bit levels
        m["ssim"] = float(ops.ssim(o, r)[0])
    return m
