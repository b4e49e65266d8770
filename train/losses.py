"""Training loss: MSE(Y, pseudo-GT) + alpha * TV(gamma)."""

from __future__ import annotations

import torch
from torch.nn import functional as F

LOG_EPS = 1e-3


def tv_l1(g: torch.Tensor) -> torch.Tensor:
    """Paper Eq. 9: mean |d gamma / dy| + mean |d gamma / dx| (L1 forward differences)."""
    return (g[..., 1:, :] - g[..., :-1, :]).abs().mean() + (g[..., :, 1:] - g[..., :, :-1]).abs().mean()


def tv_log2(g: torch.Tensor) -> torch.Tensor:
    """Official code: squared forward differences of log(gamma + 1e-3), mean over H plus mean over W."""
    lg = torch.log(g + LOG_EPS)
    return ((lg[..., 1:, :] - lg[..., :-1, :]) ** 2).mean() + ((lg[..., :, 1:] - lg[..., :, :-1]) ** 2).mean()


TV = {"l1": tv_l1, "log2": tv_log2}


def total_loss(
    y: torch.Tensor, target: torch.Tensor, gamma: torch.Tensor, alpha: float, tv: str = "log2"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, mse, tv)."""
    mse = F.mse_loss(y, target)
    t = TV[tv](gamma)
    return mse + alpha * t, mse, t


def pairs_loss(
    y: torch.Tensor, photo: torch.Tensor, gamma: torch.Tensor, alpha: float, tv: str = "log2"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, l1, tv): L1 between the output and the well-exposed photo, plus alpha * TV(gamma).

    L1 rather than MSE: it does not let the few clipped pixels of an over-exposed input, which
    no curve can restore, dominate the gradient."""
    l1 = (y - photo).abs().mean()
    t = TV[tv](gamma)
    return l1 + alpha * t, l1, t
