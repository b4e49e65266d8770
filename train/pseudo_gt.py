"""Pseudo ground truth: per pixel, the best-scoring of {input, previous output, references}.

Progressive strategy ("previous output" candidate)
--------------------------------------------------
The paper (Sec. 3.2, Fig. 8) says the candidate set holds the model's output *from the
previous epoch*. The official code does not cache anything per epoch: it recomputes the
output with the *current* weights and trains with a one-batch delay (the official
framework.py; the stored batch is never reset, so only the run's very first batch is skipped):

    step n:  pgt_n = select(x_n, model_{W_n}(x_n), refs_n)            # no gradient
             loss  = MSE(model_{W_n}(x_{n-1}), pgt_{n-1}) + alpha TV  # the batch before
             store (x_n, pgt_n)

so the "previous output" is one optimizer step stale, not one epoch. This trainer implements
that scheme (``strategy="delay"``, the default, because it is what produced the released models),
and a simpler equivalent (``strategy="stale"``): the pseudo-GT of batch n is built from the
current model's output on batch n (detached, i.e. no gradient through the target; the
training forward is reused, so it costs one forward pass less) and the same batch is trained
on immediately. Both take the "previous output" from the weights one update before the one
being made. An epoch-level cache is not used: with fresh random crops and exposure errors at
every step there is no fixed training image whose last-epoch output could be stored.
"""

from __future__ import annotations

import torch

from psenet_stream.ops import select_best


def candidates(x: torch.Tensor, previous: torch.Tensor, refs: torch.Tensor) -> torch.Tensor:
    """(B, 2 + 2N, 3, H, W) in the official order: input, previous output, references."""
    return torch.cat([x.unsqueeze(1), previous.unsqueeze(1), refs], dim=1)


def pseudo_gt(x: torch.Tensor, previous: torch.Tensor, refs: torch.Tensor, mu: float = 0.5) -> torch.Tensor:
    """The pseudo-GT image (B, 3, H, W): hard per-pixel argmax of the quality score (ops.select_best)."""
    return select_best(candidates(x, previous, refs), target=mu)
