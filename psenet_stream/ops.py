"""Tensor operations shared by the model, the enhancer and the trainer.

Everything here is plain torch on NCHW float tensors in [0, 1] unless said otherwise.
"""

from __future__ import annotations


import torch
from torch.nn import functional as F

EPS_SCORE = 1.0 / 255.0  # official iqa.py: added to E and to both terms of S
PATCH = 25  # official iqa.py: 25x25 local windows


def apply_gamma(x: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """PSENet's output mapping Y = 1 - (1 - x) ** gamma. gamma > 1 brightens, < 1 darkens."""
    return 1.0 - torch.pow(1.0 - x, gamma)


def protect_highlights(gamma: torch.Tensor, x: torch.Tensor, knee: float = 0.95) -> torch.Tensor:
    """Pull darkening gammas (< 1) back to 1 as x approaches white.

    The slope of 1 - (1 - x) ** g is g (1 - x) ** (g - 1), unbounded as x -> 1 when g < 1:
    near-white noise and compression blocks are amplified into blotches (official PSENet
    issue #2). Blending g toward 1 with a smoothstep over [knee, 1] keeps the slope finite,
    and leaves brightening gammas and everything below the knee untouched.
    ``knee >= 1`` disables the protection.
    """
    if knee >= 1.0:
        return gamma
    t = ((x - knee) / (1.0 - knee)).clamp(0.0, 1.0)
    w = t * t * (3.0 - 2.0 * t)
    return torch.where(gamma < 1.0, gamma + (1.0 - gamma) * w, gamma)


# --- the paper's no-reference quality score (well-exposedness, local contrast, saturation) ---


def box_mean(x: torch.Tensor, size: int = PATCH) -> torch.Tensor:
    """Mean over size x size windows with reflect padding, same size out.

    Separable: two 1-D average pools instead of one 2-D pool, ~10x faster on the CPU and
    equal to ReflectionPad2d(size // 2) + AvgPool2d(size, stride=1) up to float rounding.
    """
    p = size // 2
    x = F.pad(x, (p, p, p, p), mode="reflect")
    x = F.avg_pool2d(x, (size, 1), stride=1)
    return F.avg_pool2d(x, (1, size), stride=1)


def quality_score(x: torch.Tensor, target: float = 0.5, size: int = PATCH) -> torch.Tensor:
    """Per-pixel well-exposedness x contrast x saturation score, (N, 1, H, W).

    S = (max_c - min_c + eps) / (max_c + eps), per pixel;
    E = |pool(mean_c x) - target| + eps;  C = mean_c pool(x_c^2) - pool(mean_c x)^2;
    score = S * C / E.  Exactly the official iqa.py terms, including where they differ
    from the paper (plain RGB mean as grey, variance pooled over colour and space).
    """
    mx = x.amax(dim=1, keepdim=True)
    mn = x.amin(dim=1, keepdim=True)
    sat = (mx - mn + EPS_SCORE) / (mx + EPS_SCORE)
    pooled = box_mean(torch.cat([x, x * x], dim=1), size)
    c = x.shape[1]
    mu = pooled[:, :c].mean(dim=1, keepdim=True)
    contrast = pooled[:, c:].mean(dim=1, keepdim=True) - mu * mu
    expo = (mu - target).abs() + EPS_SCORE
    return sat * contrast / expo


def select_best(candidates: torch.Tensor, target: float = 0.5) -> torch.Tensor:
    """Pseudo ground truth: per pixel, the RGB of the best-scoring candidate.

    candidates: (N, K, 3, H, W). Returns (N, 3, H, W). Hard argmax per pixel, shared by
    the three channels (paper Eq. 5, official framework.py).
    """
    n, k, c, h, w = candidates.shape
    scores = quality_score(candidates.reshape(n * k, c, h, w), target).reshape(n, k, 1, h, w)
    best = scores.argmax(dim=1, keepdim=True)  # (N, 1, 1, H, W)
    return torch.gather(candidates, 1, best.expand(n, 1, c, h, w)).squeeze(1)


# --- colour ------------------------------------------------------------------------------


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    x = x.clamp(0.0, 1.0)
    return torch.where(x <= 0.0031308, x * 12.92, 1.055 * x.clamp_min(1e-12) ** (1 / 2.4) - 0.055)


def expose(x: torch.Tensor, ev: float | torch.Tensor) -> torch.Tensor:
    """Simulate an exposure error of ``ev`` stops on sRGB images, in linear light.

    ev may be a float or a per-image tensor of shape (N,). Over-exposure clips at white,
    as a real sensor does.
    """
    if not torch.is_tensor(ev):
        ev = torch.tensor(float(ev), dtype=x.dtype, device=x.device)
    gain = torch.pow(2.0, ev.to(x.dtype)).reshape(-1, *([1] * (x.dim() - 1))) if ev.dim() else 2.0**ev
    return linear_to_srgb(srgb_to_linear(x) * gain)



def luma(x: torch.Tensor) -> torch.Tensor:
    """BT.709 luma of (N, 3, H, W) RGB, (N, 1, H, W)."""
    w = torch.tensor([0.2126, 0.7152, 0.0722], dtype=x.dtype, device=x.device).reshape(1, 3, 1, 1)
    return (x * w).sum(dim=1, keepdim=True)


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PSNR in dB per image for (N, C, H, W) tensors in [0, 1]."""
    mse = ((a - b) ** 2).flatten(1).mean(dim=1).clamp_min(1e-12)
    return 10.0 * torch.log10(1.0 / mse)


def _gauss_window(size: int = 11, sigma: float = 1.5, device=None, dtype=None) -> torch.Tensor:
    g = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(g**2) / (2 * sigma**2))
    g = (g / g.sum()).to(device=device, dtype=dtype)
    return g


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """SSIM per image (Wang et al. 2004: 11x11 Gaussian, sigma 1.5, K1 .01, K2 .03, range 1),
    averaged over channels, computed on valid windows (no padding), like skimage/piq."""
    c1, c2 = 0.01**2, 0.03**2
    g = _gauss_window(device=a.device, dtype=a.dtype)
    ch = a.shape[1]
    kh = g.reshape(1, 1, -1, 1).repeat(ch, 1, 1, 1)
    kw = g.reshape(1, 1, 1, -1).repeat(ch, 1, 1, 1)

    def blur(t):
        return F.conv2d(F.conv2d(t, kh, groups=ch), kw, groups=ch)

    mu_a, mu_b = blur(a), blur(b)
    saa = blur(a * a) - mu_a**2
    sbb = blur(b * b) - mu_b**2
    sab = blur(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (saa + sbb + c2))
    return s.flatten(1).mean(dim=1)


__all__ = [
    "apply_gamma",
    "protect_highlights",
    "box_mean",
    "quality_score",
    "select_best",
    "srgb_to_linear",
    "linear_to_srgb",
    "expose",
    "luma",
    "psnr",
    "ssim",
]
