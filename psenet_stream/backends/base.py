"""The backend interface: what every backend does, and what some declare they can do more.

Every backend predicts the gamma map of a batch of small frames:

    predict_gamma(x)   x float32 (N, 3, h, w) in [0, 1]  ->  gamma float32 (N, 3, h, w), > 0

The Enhancer owns everything around the network (working resolution, strength, temporal
smoothing, highlight protection, the curve). A backend that keeps frames on its own
device declares it in ``capabilities`` and then also implements:

    enhance_uint8(frames, small_size, post, knee, out=None)
        frames (N, H, W, 3) uint8 RGB in [0, 255] (numpy, or a uint8 tensor on the backend's
        device when ``device_frames``) -> the same shape and kind, enhanced; the backend
        downscales to ``small_size`` = (h, w), runs the network, hands (gamma, small) to
        ``post`` (a ``GammaHook``) for log gamma, and applies the curve with ``knee``.
    enhance_yuv420p(frames, small_size, post, knee, colorspace, full_range, out=None)
        only when ``yuv420p``: (N, H * 3 / 2, W) uint8 yuv420p in and out (colour.py's layout).

``post`` is a value the backend is given, never a method it calls back into.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from psenet_stream.errors import BackendError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do beyond ``predict_gamma``."""

    full_frame: bool = False  # enhance_uint8: whole frames on the backend's device
    yuv420p: bool = False  # enhance_yuv420p: yuv420p in and out, colour conversion on the device
    device_frames: bool = False  # enhance_uint8 also takes uint8 tensors already on the device


@runtime_checkable
class GammaHook(Protocol):
    """Gamma post-processing a full-frame backend applies between network and curve
    (``temporal.GammaPost``): (gamma, small) (N, 3, h, w) float -> log gamma, same shape and kind."""

    def __call__(self, gamma: Any, small: Any) -> Any: ...


class Backend:
    """Base class: ``name``, ``device``, ``capabilities``, ``batch`` (frames per call it
    prefers, None when it has no preference), ``predict_gamma``, ``describe``, ``close``."""

    name = "base"
    device = "cpu"
    capabilities = Capabilities()
    batch: int | None = None

    def __init__(self, model: "torch.nn.Module", meta: dict[str, Any]):
        self.model = model
        self.meta = meta

    def predict_gamma(self, x: np.ndarray) -> np.ndarray:
        """float32 (N, 3, h, w) in [0, 1] -> gamma float32 (N, 3, h, w), > 0."""
        raise NotImplementedError

    def enhance_uint8(
        self, frames: Any, small_size: tuple[int, int], post: GammaHook, knee: float = 0.95, out: Any = None
    ) -> Any:  # pragma: no cover - only full-frame backends
        """Whole frames (see the module docstring); only when ``capabilities.full_frame``."""
        raise NotImplementedError(f"backend {self.name} does not process whole frames")

    def enhance_yuv420p(
        self, frames: np.ndarray, small_size: tuple[int, int], post: GammaHook, knee: float, colorspace: int | None, full_range: bool, out: Any = None
    ) -> np.ndarray:  # pragma: no cover - only yuv420p backends
        """yuv420p frames (see the module docstring); only when ``capabilities.yuv420p``."""
        raise NotImplementedError(f"backend {self.name} does not take yuv420p frames")

    def describe(self) -> str:
        return f"{self.name} ({self.device})"

    def close(self) -> None:
        pass


class CacheUnusable(BackendError):
    """A model cache (ONNX export, TensorRT engines) cannot be written. ``backends.create``
    falls back to a backend that needs none, in memory: cuda for tensorrt, else cpu."""

    cache_unusable = True
