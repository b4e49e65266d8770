"""The reference backend: the network in torch fp32 on the CPU."""

from __future__ import annotations

import numpy as np
import torch

from psenet_stream.backends.base import Backend


class CpuBackend(Backend):
    """The reference: torch fp32 on the CPU; ``threads`` sets torch's intra-op threads.

    ``predict_gamma``: float32 (N, 3, h, w) in [0, 1] -> gamma float32 (N, 3, h, w), > 0.
    Every other backend is tested against it."""

    name = "cpu"
    device = "cpu"

    def __init__(self, model, meta, threads: int | None = None):
        super().__init__(model.float().eval(), meta)
        if threads:
            torch.set_num_threads(threads)

    @torch.inference_mode()
    def predict_gamma(self, x: np.ndarray) -> np.ndarray:
        return self.model.gamma(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()
