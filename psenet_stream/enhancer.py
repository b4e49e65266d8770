"""The Enhancer: frames in, exposure-corrected frames out.

    >>> from psenet_stream import Enhancer
    >>> enh = Enhancer.from_pretrained()          # shipped weights, best backend installed
    >>> out = enh(rgb)                             # H x W x 3 uint8 -> same shape and dtype

How a frame is processed (DESIGN.md "The flow of a frame"):

1. The frame is downscaled to the working resolution (``infer_size``: long side in pixels,
   default 256, the scale the network was trained at; ``"full"`` keeps the paper's
   full-resolution behaviour) and the backend predicts gamma there.
2. gamma is post-processed at that small size, in log space: ``strength`` scales log gamma
   (0 = identity, 1 = the model), and ``smoothing`` is an exponential moving average over
   frames that restarts on a scene cut.
3. log gamma is upsampled bilinearly to full resolution and the curve
   Y = 1 - (1 - I) ** gamma is applied there, with highlight protection: where gamma < 1,
   gamma is pulled toward 1 as I approaches white, so near-white noise is not amplified
   (the blotches of official PSENet issue #2).

On the CPU, step 3 is one ``cv2.remap`` into a precomputed (log gamma x I) table, which is
exact to within one 8-bit level and about 5x cheaper than evaluating pow per pixel; the
exact torch form is ``apply_exact`` and both are tested against each other.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
from torch.nn import functional as F

from psenet_stream import colour
from psenet_stream.errors import UsageError
from psenet_stream.ops import apply_gamma, protect_highlights

log = logging.getLogger("psenet_stream")

DEFAULT_INFER_SIZE = 256
DEFAULT_HIGHLIGHT_KNEE = 0.95
MIN_SIDE = 16  # the smallest side the network sees (two stride-2 stages + reflect padding)
LOG_GAMMA_RANGE = (-4.0, 4.0)  # gamma in [0.018, 54.6]; beyond that the curve is flat anyway


@dataclass
class Options:
    infer_size: int | str = DEFAULT_INFER_SIZE
    strength: float = 1.0
    smoothing: float = 0.0  # EMA weight of the previous frame's log gamma, 0 = off
    scene_cut: float = 0.12  # mean |small frame difference| above which smoothing restarts
    # >= 1 disables highlight protection. 0.95 keeps near-white noise at 1.9 LSB from a 1.1 LSB input
    # (43-46 LSB unprotected) and costs <= 0.13 dB on over-exposed inputs (docs/EVALUATION.md)
    highlight_knee: float = DEFAULT_HIGHLIGHT_KNEE

    def validate(self) -> None:
        if isinstance(self.infer_size, str):
            if self.infer_size != "full":
                try:
                    self.infer_size = int(self.infer_size)
                except ValueError:
                    raise UsageError(f"bad infer size {self.infer_size!r}", "use a long side in pixels (e.g. 256) or 'full'") from None
        if isinstance(self.infer_size, int) and self.infer_size < MIN_SIDE:
            raise UsageError(f"infer size {self.infer_size} is too small", f"use at least {MIN_SIDE} or 'full'")
        if not 0.0 <= self.strength <= 4.0:
            raise UsageError(f"strength {self.strength} out of range", "use a value between 0 (off) and 1 (full); up to 4 exaggerates")
        if not 0.0 <= self.smoothing < 1.0:
            raise UsageError(f"smoothing {self.smoothing} out of range", "use a value in [0, 1): 0 is off, 0.8 is strong")


def working_size(h: int, w: int, infer_size: int | str) -> tuple[int, int]:
    """(h, w) the network runs at for an h x w frame."""
    if infer_size == "full":
        sh, sw = h, w
    else:
        s = min(1.0, float(infer_size) / max(h, w))
        sh, sw = max(1, round(h * s)), max(1, round(w * s))
    if min(sh, sw) < MIN_SIDE:  # tiny frames: upscale just for the network
        k = MIN_SIDE / min(sh, sw)
        sh, sw = max(MIN_SIDE, round(sh * k)), max(MIN_SIDE, round(sw * k))
    return sh, sw


class GammaLUT:
    """Y for every (log gamma level, 8-bit input) pair, as a uint8 image cv2.remap reads."""

    # Rows of the table. The remap reads it with nearest-neighbour rounding along log gamma
    # (cheaper than bilinear, ~4x at 720p); with 2048 levels over LOG_GAMMA_RANGE the
    # quantisation moves Y by at most 0.19 of an 8-bit level, so the result stays within
    # one level of apply_exact.
    LEVELS = 2048

    def __init__(self, knee: float):
        lo, hi = LOG_GAMMA_RANGE
        lg = torch.linspace(lo, hi, self.LEVELS, dtype=torch.float64)[:, None]
        i = (torch.arange(256, dtype=torch.float64) / 255.0)[None, :]
        g = protect_highlights(torch.exp(lg).expand(-1, 256), i.expand(self.LEVELS, -1), knee)
        self.table = (apply_gamma(i, g) * 255.0).round().clamp(0, 255).to(torch.uint8).numpy()
        self.scale = (self.LEVELS - 1) / (hi - lo)
        self.offset = -lo * self.scale

    def apply(self, frame: np.ndarray, log_gamma_small: np.ndarray) -> np.ndarray:
        """frame (H, W, 3) uint8, log gamma (h, w, 3) float32 -> (H, W, 3) uint8."""
        h, w = frame.shape[:2]
        idx = log_gamma_small * np.float32(self.scale) + np.float32(self.offset)
        if idx.shape[:2] != (h, w):
            idx = cv2.resize(idx, (w, h), interpolation=cv2.INTER_LINEAR)
        mapy = idx.reshape(h, w * 3)
        mapx = frame.reshape(h, w * 3).astype(np.float32)
        # x (the 8-bit input) is integral, y (log gamma) rounds to the nearest of LEVELS rows
        out = cv2.remap(self.table, mapx, mapy, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
        return out.reshape(h, w, 3)


def apply_exact(x: torch.Tensor, log_gamma_small: torch.Tensor, knee: float) -> torch.Tensor:
    """The exact form of step 3: x (N, 3, H, W) float in [0, 1]."""
    lg = log_gamma_small.to(x)
    if lg.shape[2:] != x.shape[2:]:
        lg = F.interpolate(lg, size=x.shape[2:], mode="bilinear", align_corners=False)
    g = protect_highlights(torch.exp(lg.clamp(*LOG_GAMMA_RANGE)), x, knee)
    return apply_gamma(x, g)


class _Done:
    """A plan whose frame a full-frame backend has already finished."""

    __slots__ = ("frame",)

    def __init__(self, frame: np.ndarray):
        self.frame = frame


class Enhancer:
    """Exposure correction for frames, batches and tensors. Keeps temporal state for video."""

    def __init__(self, backend, **options: Any):
        self.backend = backend
        self.options = Options(**options)
        self.options.validate()
        self._lut: GammaLUT | None = None
        self.reset()

    # --- construction ---------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, weights: str | None = None, backend: str = "auto", **options: Any) -> "Enhancer":
        """Load weights (the shipped default when None) onto a backend ('auto' picks the best)."""
        from psenet_stream import backends
        from psenet_stream.weights_io import load_model

        model, meta = load_model(weights)
        bopts = {k: options.pop(k) for k in ("batch", "threads", "compile") if k in options}
        be = backends.create(backend, model, meta, **{k: v for k, v in bopts.items() if v is not None})
        return cls(be, **options)

    @property
    def meta(self) -> dict[str, Any]:
        return self.backend.meta

    def reset(self) -> None:
        """Forget temporal state (call between unrelated clips)."""
        self._prev_lg: np.ndarray | torch.Tensor | None = None
        self._prev_small: np.ndarray | torch.Tensor | None = None
        self._cuts = 0
        self._cuts_dev: torch.Tensor | None = None  # counted on the GPU without a sync
        self._last_gamma: np.ndarray | torch.Tensor | None = None

    @property
    def scene_cuts(self) -> int:
        """Scene cuts seen since ``reset`` (each restarts the temporal smoothing)."""
        return self._cuts + (int(self._cuts_dev.item()) if self._cuts_dev is not None else 0)

    @property
    def last_gamma(self) -> np.ndarray | None:
        """The processed log gamma of the last batch, (N, 3, h, w) float32 (for flicker metrics)."""
        lg = self._last_gamma
        if torch.is_tensor(lg):
            lg = self._last_gamma = lg.float().cpu().numpy()
        return lg

    # --- the gamma post-processing, shared by every backend ----------------------------
    def _post(self, gamma, small):
        """gamma, small frames (N, 3, h, w) float32 -> processed log gamma, same shape.

        numpy arrays are processed on the host; torch tensors where they are (the cuda
        backend passes GPU tensors, so nothing leaves the device and nothing waits for it).
        """
        if torch.is_tensor(gamma):
            return self._post_torch(gamma, small)
        o = self.options
        if torch.is_tensor(self._prev_lg):  # the other kind of backend ran last: carry the state over
            self._prev_lg, self._prev_small = self._prev_lg.float().cpu().numpy(), self._prev_small.float().cpu().numpy()
        lg = np.log(np.maximum(gamma, 1e-6, dtype=np.float32))
        if o.strength != 1.0:
            lg *= np.float32(o.strength)
        np.clip(lg, *LOG_GAMMA_RANGE, out=lg)
        if o.smoothing > 0:
            a = np.float32(o.smoothing)
            for i in range(lg.shape[0]):
                prev, ps = self._prev_lg, self._prev_small
                cut = prev is None or prev.shape != lg[i].shape or float(np.abs(small[i] - ps).mean()) > o.scene_cut
                if cut:
                    self._cuts += prev is not None
                else:
                    lg[i] = a * prev + (1 - a) * lg[i]
                self._prev_lg, self._prev_small = lg[i].copy(), small[i]
        self._last_gamma = lg
        return lg

    def _post_torch(self, gamma: torch.Tensor, small: torch.Tensor) -> torch.Tensor:
        """``_post`` for tensors on any device: same maths, no host synchronisation.

        The scene-cut test of every frame is computed at once (each frame against the
        one before it); only the moving average itself is a loop over the batch.
        """
        o = self.options
        lg = torch.log(gamma.float().clamp_min(1e-6))
        if o.strength != 1.0:
            lg.mul_(o.strength)
        lg.clamp_(*LOG_GAMMA_RANGE)
        if o.smoothing > 0:
            a = float(o.smoothing)
            small = small.float()
            prev, ps = self._prev_lg, self._prev_small
            if prev is not None and not torch.is_tensor(prev):
                prev, ps = torch.from_numpy(prev).to(lg.device), torch.from_numpy(ps).to(lg.device)
            have = prev is not None and tuple(prev.shape) == tuple(lg.shape[1:]) and prev.device == lg.device
            if prev is not None and not have:  # size changed: a cut, counted
                self._cuts += 1
            before = torch.cat([ps[None].to(small), small[:-1]]) if have else torch.cat([small[:1], small[:-1]])
            cut = (small - before).abs().mean(dim=(1, 2, 3)) > o.scene_cut
            if not have:
                cut[0] = True
            cur = prev if have else lg[0]
            for i in range(lg.shape[0]):
                if have or i > 0:
                    cur = torch.where(cut[i], lg[i], torch.lerp(lg[i], cur, a))
                    lg[i] = cur
                else:
                    cur = lg[0]
            counted = cut.sum() - (0 if have else 1)
            self._cuts_dev = counted if self._cuts_dev is None else self._cuts_dev + counted
            self._prev_lg, self._prev_small = lg[-1].clone(), small[-1].clone()
        self._last_gamma = lg
        return lg

    # --- public entry points ------------------------------------------------------------
    def __call__(self, x):
        if torch.is_tensor(x):
            if x.dtype == torch.uint8 and x.shape[-1:] == (3,):
                return self.enhance_frames(x[None])[0] if x.dim() == 3 else self.enhance_frames(x)
            return self.enhance_tensor(x)
        x = np.asarray(x)
        if x.dtype != np.uint8:
            raise UsageError(f"expected uint8 RGB frames, got {x.dtype}", "convert with (img * 255).round().astype(np.uint8), or pass a float torch tensor")
        if x.ndim == 3:
            return self.enhance_frames(x[None])[0]
        return self.enhance_frames(x)

    def enhance_frames(self, frames, out=None):
        """(N, H, W, 3) uint8 RGB -> (N, H, W, 3) uint8 RGB; frames are processed in order.

        ``out``: an array of the same shape and dtype to write into (saves an allocation
        per call in tight loops). With the cuda backend ``frames`` may also be a uint8
        tensor already on the GPU: the result is then a tensor there, and nothing is
        copied to or from the host.
        """
        if torch.is_tensor(frames):
            return self._enhance_device(frames, out)
        self._check_frames(frames)
        if self.backend.full_frame:
            _, h, w, _ = frames.shape
            sh, sw = working_size(h, w, self.options.infer_size)
            return self.backend.enhance_uint8(frames, (sh, sw), self._post, self.options.highlight_knee, out=out)
        plans = self.predict(frames)
        out = np.empty_like(frames) if out is None else out
        for i, plan in enumerate(plans):
            out[i] = self.apply(frames[i], plan)
        return out

    def _enhance_device(self, frames: torch.Tensor, out=None) -> torch.Tensor:
        if not self.backend.full_frame or frames.dtype != torch.uint8 or frames.dim() != 4 or frames.shape[-1] != 3:
            raise UsageError(
                f"expected (N, H, W, 3) uint8 frames, got a {tuple(frames.shape)} {frames.dtype} tensor for backend {self.backend.name}",
                "pass a numpy array (any backend), a uint8 CUDA tensor (cuda backend), or a float (N, 3, H, W) tensor to enhance_tensor",
            )
        _, h, w, _ = frames.shape
        sh, sw = working_size(h, w, self.options.infer_size)
        return self.backend.enhance_uint8(frames, (sh, sw), self._post, self.options.highlight_knee, out=out)

    def enhance_yuv420p(self, frames: np.ndarray, colorspace: int | None = None, full_range: bool = False, out=None) -> np.ndarray:
        """(N, H * 3 / 2, W) uint8 yuv420p (PyAV's layout) -> the same, enhanced.

        ``colorspace`` (AVColorSpace; None/2: BT.601) and ``full_range`` give the matrix, as
        the frames' tags do; the output uses the same. A backend that converts on its own
        device (cuda) moves only yuv420p; any other converts on the CPU with the same maths.
        """
        if frames.ndim != 3 or frames.dtype != np.uint8 or frames.shape[1] % 3 or (frames.shape[1] // 3) % 2 or frames.shape[2] % 2:
            raise UsageError(f"expected (N, H*3/2, W) uint8 yuv420p frames with even H and W, got {frames.shape} {frames.dtype}", "pass frames from VideoFrame.to_ndarray() of yuv420p video")
        _, hh, w = frames.shape
        sh, sw = working_size(hh * 2 // 3, w, self.options.infer_size)
        if getattr(self.backend, "supports_yuv", False):
            return self.backend.enhance_yuv420p(frames, (sh, sw), self._post, self.options.highlight_knee, colorspace, full_range, out=out)
        rgb = colour.yuv420p_to_rgb_np(frames, colorspace, full_range)
        res = colour.rgb_to_yuv420p_batch_np(self.enhance_frames(rgb), colorspace, full_range)
        if out is None:
            return res
        out[...] = res
        return out

    @staticmethod
    def _check_frames(frames) -> None:
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise UsageError(f"expected (N, H, W, 3) uint8 RGB frames, got shape {frames.shape} {frames.dtype}", "pass H x W x 3 uint8 RGB images")

    def predict(self, frames: np.ndarray) -> list:
        """The stateful half: the network and temporal smoothing, on small copies of frames.

        Returns one plan per frame for ``apply``. Splitting the two lets a pipeline run the
        full-resolution curve (``apply``, stateless) in another thread than the network.
        A full-frame backend (cuda) does all the work here; its plans are the finished frames.
        """
        self._check_frames(frames)
        _, h, w, _ = frames.shape
        sh, sw = working_size(h, w, self.options.infer_size)
        if self.backend.full_frame:
            done = self.backend.enhance_uint8(frames, (sh, sw), self._post, self.options.highlight_knee)
            return [_Done(f) for f in done]
        if (sh, sw) == (h, w):
            small = frames
        else:
            interp = cv2.INTER_AREA if sh < h else cv2.INTER_LINEAR
            small = np.stack([cv2.resize(f, (sw, sh), interpolation=interp) for f in frames])
        small = small.transpose(0, 3, 1, 2).astype(np.float32) * np.float32(1 / 255)
        lg = self._post(self.backend.predict_gamma(small), small)
        return list(np.ascontiguousarray(lg.transpose(0, 2, 3, 1)))

    def apply(self, frame: np.ndarray, plan) -> np.ndarray:
        """The stateless half: the curve at full resolution for one (H, W, 3) uint8 frame."""
        if isinstance(plan, _Done):
            return plan.frame
        return self._get_lut().apply(np.ascontiguousarray(frame), plan)

    def enhance_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) or (3, H, W) float in [0, 1] -> the same, exact (no lookup table)."""
        squeeze = x.dim() == 3
        if squeeze:
            x = x[None]
        if x.dim() != 4 or x.shape[1] != 3 or not x.is_floating_point():
            raise UsageError(f"expected a float (N, 3, H, W) tensor, got {tuple(x.shape)} {x.dtype}", "scale uint8 images to [0, 1] floats first")
        h, w = x.shape[2:]
        sh, sw = working_size(h, w, self.options.infer_size)
        xf = x.float().clamp(0, 1)
        small = xf if (sh, sw) == (h, w) else F.interpolate(xf, size=(sh, sw), mode="bilinear", align_corners=False, antialias=sh < h)
        small_np = small.detach().cpu().numpy()
        lg = self._post(self.backend.predict_gamma(small_np), small_np)
        y = apply_exact(xf, torch.from_numpy(lg).to(x.device), self.options.highlight_knee).to(x.dtype)
        return y[0] if squeeze else y

    def _get_lut(self) -> GammaLUT:
        lut = self._lut
        if lut is None:  # benign race: two threads may both build it once
            lut = self._lut = GammaLUT(self.options.highlight_knee)
        return lut

    def describe(self) -> str:
        o = self.options
        return f"backend {self.backend.describe()}, infer size {o.infer_size}, strength {o.strength:g}, smoothing {o.smoothing:g}"
