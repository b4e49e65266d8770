"""The exposure curve and the resolution it is predicted at.

PSENet predicts a per-pixel, per-channel gamma map and the output is

    Y = 1 - (1 - I) ** gamma            I, Y float in [0, 1]

with gamma kept in log space within ``LOG_GAMMA_RANGE``. The map is predicted at a working
resolution (``working_size``: the long side bounded by ``infer_size``, default 256, the
scale the network was trained at) and upsampled bilinearly, in log space, to the frame.
Highlight protection (``ops.protect_highlights``) pulls a darkening gamma (< 1) toward 1
as I approaches white, so near-white noise is not amplified.

Two implementations of the same step, tested against each other:

- ``apply_exact``: torch, float, any device: the reference.
- ``GammaLUT``: the CPU path. One ``cv2.remap`` into a precomputed (log gamma x I) uint8
  table; within one 8-bit level of ``apply_exact`` and about 5x cheaper than pow per pixel.
- ``apply_float``: high-bit-depth frames (10/12/16-bit video and images, HDR, carried as
  uint16 0..65535, or float32): the maths of ``apply_exact`` in float32 numpy, so no
  precision is lost to an 8-bit table. About 6x the cost of ``GammaLUT`` (720p on the
  2-core test box: 109 vs 17 ms per frame); a 16-bit table was tried and saved only a
  third of it, with large errors where highlight protection is off.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:  # the host path (GammaLUT, apply_float) runs without torch; apply_exact imports it
    import torch

DEFAULT_INFER_SIZE = 256
DEFAULT_HIGHLIGHT_KNEE = 0.95
MIN_SIDE = 16  # the smallest side the network sees (two stride-2 stages + reflect padding)
LOG_GAMMA_RANGE = (-4.0, 4.0)  # gamma in [0.018, 54.6]; beyond that the curve is flat anyway


def fit_long_side(h: int, w: int, long_side: int | float) -> tuple[int, int]:
    """(h, w) scaled so the long side is at most ``long_side`` (never enlarged; each side >= 1)."""
    s = min(1.0, float(long_side) / max(h, w))
    return max(1, round(h * s)), max(1, round(w * s))


def shrink_to_long_side(img: np.ndarray, long_side: int | None) -> np.ndarray:
    """(H, W, C) uint8 image with its long side bounded by ``long_side`` (cv2 INTER_AREA);
    returned unchanged when it is already small enough or ``long_side`` is None / 0."""
    h, w = img.shape[:2]
    if not long_side or max(h, w) <= long_side:
        return img
    sh, sw = fit_long_side(h, w, long_side)
    return cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA)


def working_size(h: int, w: int, infer_size: int | str) -> tuple[int, int]:
    """(h, w) the network runs at for an h x w frame: long side ``infer_size`` ('full': the
    frame's own size), tiny frames enlarged so the short side is at least ``MIN_SIDE``."""
    sh, sw = (h, w) if infer_size == "full" else fit_long_side(h, w, float(infer_size))
    if min(sh, sw) < MIN_SIDE:  # tiny frames: upscale just for the network
        k = MIN_SIDE / min(sh, sw)
        sh, sw = max(MIN_SIDE, round(sh * k)), max(MIN_SIDE, round(sw * k))
    return sh, sw


def apply_exact(x: torch.Tensor, log_gamma_small: torch.Tensor, knee: float) -> torch.Tensor:
    """The curve at full resolution: x (N, 3, H, W) float in [0, 1], log gamma (N, 3, h, w)
    float -> Y (N, 3, H, W) in [0, 1], x's dtype. Log gamma is upsampled bilinearly
    (``align_corners=False``), clamped to ``LOG_GAMMA_RANGE``, protected above ``knee``
    (>= 1: no protection)."""
    import torch
    from torch.nn import functional as F

    from psenet_stream.ops import apply_gamma, protect_highlights

    lg = log_gamma_small.to(x)
    if lg.shape[2:] != x.shape[2:]:
        lg = F.interpolate(lg, size=x.shape[2:], mode="bilinear", align_corners=False)
    g = protect_highlights(torch.exp(lg.clamp(*LOG_GAMMA_RANGE)), x, knee)
    return apply_gamma(x, g)


def curve_table(log_gamma: np.ndarray, x: np.ndarray, knee: float) -> np.ndarray:
    """round(255 * Y) as uint8 for log gamma and inputs x in [0, 1] (broadcast), in float64:
    ops.protect_highlights and ops.apply_gamma in numpy, so the host path needs no torch
    (tests/unit/test_enhancer.py checks the table against the torch functions)."""
    g = np.exp(log_gamma) + np.zeros_like(x)
    if knee < 1.0:
        t = np.clip((x - knee) / (1.0 - knee), 0.0, 1.0)
        g = np.where(g < 1.0, g + (1.0 - g) * (t * t * (3.0 - 2.0 * t)), g)
    y = 1.0 - np.power(1.0 - x, g)
    return np.clip(np.round(y * 255.0), 0, 255).astype(np.uint8)


class GammaLUT:
    """Y for every (log gamma level, 8-bit input) pair, as a uint8 image cv2.remap reads."""

    # Rows of the table. The remap reads it with nearest-neighbour rounding along log gamma
    # (cheaper than bilinear, ~4x at 720p); with 2048 levels over LOG_GAMMA_RANGE the
    # quantisation moves Y by at most 0.19 of an 8-bit level, so the result stays within
    # one level of apply_exact.
    LEVELS = 2048

    def __init__(self, knee: float):
        lo, hi = LOG_GAMMA_RANGE
        self.table = curve_table(np.linspace(lo, hi, self.LEVELS)[:, None], np.arange(256)[None, :] / 255.0, knee)
        self.scale = (self.LEVELS - 1) / (hi - lo)
        self.offset = -lo * self.scale
        self._local = threading.local()  # per-thread scratch maps (apply may run in several threads)

    def apply(self, frame: np.ndarray, log_gamma_small: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """frame (H, W, 3) uint8 in [0, 255], log gamma (h, w, 3) float32 -> (H, W, 3) uint8
        (written into ``out`` when given).

        The two float maps of the remap are kept per thread and per size and refilled in
        place: allocating them afresh costs more than the remap (page faults on ~11 MB at
        720p, measured 6.3 -> 2.4 ms per frame with the output preallocated too)."""
        h, w = frame.shape[:2]
        mapx, mapy = self._maps(h, w)
        idx = log_gamma_small * np.float32(self.scale) + np.float32(self.offset)
        if idx.shape[:2] != (h, w):
            cv2.resize(idx, (w, h), dst=mapy, interpolation=cv2.INTER_LINEAR)
        else:
            mapy[...] = idx
        np.copyto(mapx, frame.reshape(h, w * 3), casting="unsafe")
        if out is None:
            out = np.empty((h, w, 3), np.uint8)
        # x (the 8-bit input) is integral, y (log gamma) rounds to the nearest of LEVELS rows
        res = cv2.remap(self.table, mapx, mapy.reshape(h, w * 3), cv2.INTER_NEAREST, dst=out.reshape(h, w * 3), borderMode=cv2.BORDER_REPLICATE)
        if res.__array_interface__["data"][0] != out.__array_interface__["data"][0]:  # cv2 made its own (out not contiguous)
            out[...] = res.reshape(h, w, 3)
        return out

    def _maps(self, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        """This thread's scratch maps for an h x w frame: (h, 3w) float32 input levels and
        (h, w, 3) float32 table rows."""
        local = self._local
        maps = getattr(local, "maps", None)
        if maps is None or maps[0].shape != (h, w * 3):
            maps = local.maps = (np.empty((h, w * 3), np.float32), np.empty((h, w, 3), np.float32))
        return maps


def apply_float(frame: np.ndarray, log_gamma_small: np.ndarray, knee: float) -> np.ndarray:
    """The exact curve for a high-bit-depth frame: (H, W, C) uint16 in [0, 65535] (or
    float32 in [0, 1]), log gamma (h, w, C) float32 -> the same dtype. The maths of
    ``apply_exact`` in float32 numpy (numpy, not torch: torch's thread pool costs 10x on a
    busy small CPU)."""
    scale = 65535.0 if frame.dtype == np.uint16 else 1.0
    h, w = frame.shape[:2]
    lg = log_gamma_small.astype(np.float32, copy=False)
    if lg.shape[:2] != (h, w):
        lg = cv2.resize(lg, (w, h), interpolation=cv2.INTER_LINEAR)  # bilinear, pixel centres (align_corners=False)
        if lg.ndim == 2:
            lg = lg[:, :, None]
    x = frame.astype(np.float32) * np.float32(1.0 / scale)
    g = np.exp(np.clip(lg, *LOG_GAMMA_RANGE))
    if knee < 1.0:  # ops.protect_highlights
        t = np.clip((x - np.float32(knee)) * np.float32(1.0 / (1.0 - knee)), 0.0, 1.0)
        g = np.where(g < 1.0, g + (1.0 - g) * (t * t * (3.0 - 2.0 * t)), g)
    y = np.clip(1.0 - np.power(1.0 - x, g), 0.0, 1.0)
    if frame.dtype == np.uint16:
        return (y * np.float32(65535.0) + np.float32(0.5)).astype(np.uint16)
    return y.astype(frame.dtype, copy=False)

