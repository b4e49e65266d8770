"""The backend interface: every backend predicts the gamma map of a batch of small frames.

The enhancer owns everything around the network (working resolution, strength, temporal
smoothing, highlight protection, applying the curve); a backend only has to turn a
float32 (N, 3, h, w) batch in [0, 1] into gamma of the same shape. A backend that keeps
frames on its own device (cuda) also overrides ``enhance_uint8`` to do the whole frame
there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np

if TYPE_CHECKING:
    import torch


class Backend:
    name = "base"
    device = "cpu"
    #: True when enhance_uint8 runs the whole frame on the backend's device
    full_frame = False

    def __init__(self, model: "torch.nn.Module", meta: dict[str, Any]):
        self.model = model
        self.meta = meta

    def predict_gamma(self, x: np.ndarray) -> np.ndarray:
        """float32 (N, 3, h, w) in [0, 1] -> gamma float32 (N, 3, h, w)."""
        raise NotImplementedError

    def enhance_uint8(
        self, frames: np.ndarray, small_size: tuple[int, int], gamma_hook: Callable[[Any, Any], Any], knee: float = 0.95, out: np.ndarray | None = None
    ) -> np.ndarray:  # pragma: no cover - only full-frame backends
        """Whole frames: downscale, network, ``gamma_hook(gamma, small) -> log gamma``, curve."""
        raise NotImplementedError

    def describe(self) -> str:
        return f"{self.name} ({self.device})"

    def close(self) -> None:
        pass
