"""Synthetic references for the pseudo-GT: 2N inverse-gamma renditions of each input.

Reference = 1 - (1 - I) ** gamma (the network's own output mapping). N are brighter, with
log gamma stratified over [0, 3]: [0, 3] cut into N equal bins and reference i drawn
uniformly inside bin i. N are darker, with log gamma stratified the same way over [-2, 0].
(The official code stratifies only the brighter side; for N > 1 its darker side multiplies
instead of adding the bin offset, so its darker references are not stratified. For N = 1 both
are U(0,3) and U(-2,0), and N = 1 is what every shipped official config uses.)
Drawn fresh per image and per training step.
"""

from __future__ import annotations

import torch

from psenet_stream.ops import apply_gamma


def stratified(batch: int, n: int, lo: float, hi: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """(batch, n): column i uniform in [lo + i (hi-lo)/n, lo + (i+1) (hi-lo)/n)."""
    u = torch.rand(batch, n, generator=generator)
    i = torch.arange(n, dtype=u.dtype)
    return lo + (i + u) * ((hi - lo) / n)


def sample_log_gammas(
    batch: int, n: int, generator: torch.Generator | None = None, bright: float = 3.0, dark: float = -2.0
) -> torch.Tensor:
    """(batch, 2n) log gammas: n brighter (in [0, bright]) then n darker (in [dark, 0])."""
    return torch.cat([stratified(batch, n, 0.0, bright, generator), stratified(batch, n, dark, 0.0, generator)], dim=1)


def make_references(
    x: torch.Tensor, n: int, generator: torch.Generator | None = None, bright: float = 3.0, dark: float = -2.0
) -> torch.Tensor:
    """x (B, 3, H, W) -> references (B, 2n, 3, H, W)."""
    g = sample_log_gammas(x.shape[0], n, generator, bright, dark).exp().to(x.device, x.dtype)
    return apply_gamma(x.unsqueeze(1), g[:, :, None, None, None])
