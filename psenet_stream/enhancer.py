"""The Enhancer: frames in, exposure-corrected frames out.

    >>> from psenet_stream import Enhancer
    >>> enh = Enhancer.from_pretrained()          # shipped weights, best backend installed
    >>> out = enh(rgb)                             # (H, W, 3) uint8 -> same shape and dtype

How a frame is processed (docs/ARCHITECTURE.md "The flow of a frame"):

1. The frame is downscaled to the working resolution (``infer_size``: long side in pixels,
   default 256, the scale the network was trained at; ``"full"`` keeps the paper's
   full-resolution behaviour) and the backend predicts gamma there (``curve.working_size``).
2. gamma is post-processed at that small size, in log space (``temporal.GammaPost``):
   ``strength`` scales log gamma (0 = identity, 1 = the model), and ``smoothing`` is an
   exponential moving average over frames that restarts on a scene cut.
3. log gamma is upsampled bilinearly to full resolution and the curve
   Y = 1 - (1 - I) ** gamma is applied there, with highlight protection: where gamma < 1,
   gamma is pulled toward 1 as I approaches white, so near-white noise is not amplified.

On the host, step 3 is ``curve.GammaLUT`` (one cv2.remap into a table, within one 8-bit
level of the exact ``curve.apply_exact``). A full-frame backend (cuda, tensorrt) does all
three steps on its device and is given the ``GammaPost`` as a value. Which of the two
paths a frame takes is decided once, when the Enhancer is built.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from psenet_stream import colour
from psenet_stream.backends.base import Backend
from psenet_stream.curve import (  # noqa: F401  (LOG_GAMMA_RANGE, MIN_SIDE re-exported)
    DEFAULT_HIGHLIGHT_KNEE,
    DEFAULT_INFER_SIZE,
    LOG_GAMMA_RANGE,
    MIN_SIDE,
    GammaLUT,
    apply_exact,
    apply_float,
    working_size,
)
from psenet_stream.errors import UsageError
from psenet_stream.exposure import ExposureGain, Plan, apply_gain_float
from psenet_stream.temporal import GammaPost, GammaReuse
from psenet_stream.tensors import is_tensor

if TYPE_CHECKING:  # numpy frames on a host backend (onnx) never import torch; tensors bring it
    import torch

log = logging.getLogger("psenet_stream")


@dataclass
class Options:
    """What the Enhancer does to every frame; checked by ``validate`` (UsageError, a ValueError)."""

    infer_size: int | str = DEFAULT_INFER_SIZE  # long side the network runs at, or "full"
    strength: float = 1.0  # 0 = identity, 1 = the model's correction, up to 4 exaggerates
    smoothing: float = 0.0  # EMA weight of the previous frame's log gamma, in [0, 1); 0 = off
    stabilize: float = 0.0  # EMA weight of the global output level (temporal.GammaPost), in [0, 1); 0 = off
    gamma_every: int = 1  # host backends: run the network at most every this many frames when nothing changes (temporal.GammaReuse)
    scene_cut: float = 0.12  # mean |small frame difference| above which smoothing restarts
    # >= 1 disables highlight protection. 0.95 keeps near-white noise at 1.9 LSB from a 1.1 LSB input
    # (43-46 LSB unprotected) and costs <= 0.13 dB on over-exposed inputs (docs/EVALUATION.md)
    highlight_knee: float = DEFAULT_HIGHLIGHT_KNEE
    # the weight file's global exposure gain after the curve (psenet_stream/exposure.py), when it has one
    exposure_gain: bool = True

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
        if not isinstance(self.gamma_every, int) or not 1 <= self.gamma_every <= 64:
            raise UsageError(f"gamma_every {self.gamma_every!r} out of range", "use a whole number from 1 (every frame) to 64")
        if not 0.0 <= self.stabilize < 1.0:
            raise UsageError(f"stabilize {self.stabilize} out of range", "use a value in [0, 1): 0 is off, 0.9 holds the exposure steady")


def _lut_inplace(a: np.ndarray, table: np.ndarray) -> None:
    """a[...] = table[a] (uint8), in place when OpenCV can write there."""
    if a.flags.c_contiguous:
        cv2.LUT(a, table, dst=a)
    else:
        a[...] = cv2.LUT(np.ascontiguousarray(a), table)


class _GainHook:
    """The GammaPost a full-frame backend calls, wrapped so the exposure gain sees the same
    small frames; ``apply_rgb`` / ``apply_yuv420p`` then put the gains on the finished frames."""

    def __init__(self, post: GammaPost, gain: ExposureGain):
        self.post, self.gain, self.log_w = post, gain, []

    def __call__(self, gamma, small):
        self.log_w.append(self.gain(small))
        return self.post(gamma, small)

    def _gains(self):
        if self.log_w and is_tensor(self.log_w[0]):
            import torch

            return torch.cat([x.reshape(-1) for x in self.log_w])
        return np.concatenate([np.asarray(x, np.float32).reshape(-1) for x in self.log_w])

    def apply_rgb(self, frames):
        lw = self._gains()
        if is_tensor(frames):
            import torch

            tables = self.gain.tables_torch(torch.as_tensor(lw, device=frames.device))
            base = (torch.arange(frames.shape[0], device=frames.device) * 256).view(-1, 1, 1, 1)
            frames.copy_(tables.reshape(-1)[frames.long() + base])
            return frames
        lw = lw.cpu().numpy() if is_tensor(lw) else lw
        for f, w in zip(frames, lw):
            t = self.gain.table(float(w))
            if t is not None:
                _lut_inplace(f, t)
        return frames

    def apply_yuv420p(self, frames, full_range: bool):
        """A gain in linear light is, to the precision of a pure power law, a scale of R'G'B':
        luma goes through the gain's table, chroma is scaled by w ** (1 / 2.4) around 128."""
        lw = self._gains()
        lw = lw.cpu().numpy() if is_tensor(lw) else lw
        tensor = is_tensor(frames)
        host = frames.cpu().numpy() if tensor else frames
        h = host.shape[1] * 2 // 3
        for f, w in zip(host, lw):
            t = self.gain.table(float(w))
            if t is None:
                continue
            if not full_range:  # 16..235 luma, 16..240 chroma
                v = np.clip((np.arange(256) - 16) / 219.0, 0, 1)
                t = np.clip(np.round(16.0 + 219.0 * t[np.round(v * 255).astype(np.intp)].astype(np.float32) / 255.0), 0, 255).astype(
                    np.uint8
                )
            _lut_inplace(f[:h], t)
            c = f[h:].astype(np.float32) - 128.0
            c *= np.float32(np.exp(float(w) / 2.4))
            f[h:] = np.clip(np.round(c + 128.0), 0, 255).astype(np.uint8)
        if tensor:
            import torch

            frames.copy_(torch.from_numpy(host))
        return frames


class _Done:
    """A plan whose frame a full-frame backend has already finished."""

    __slots__ = ("frame",)

    def __init__(self, frame: np.ndarray):
        self.frame = frame


class Enhancer:
    """Exposure correction for frames, batches and tensors. Keeps temporal state for video.

    ``backend``: a ``backends.base.Backend`` (``from_pretrained`` builds one by name).
    ``options``: the fields of ``Options`` (infer_size, strength, smoothing, stabilize, scene_cut,
    highlight_knee). Frames of one Enhancer are processed in order; call ``reset`` between
    unrelated clips. Not thread-safe: one thread calls it at a time (the pipeline's main
    thread), except ``apply``, which is stateless.
    """

    def __init__(self, backend: Backend, **options: Any):
        self.backend = backend
        self.options = Options(**options)
        self.options.validate()
        o = self.options
        self.post = GammaPost(strength=o.strength, smoothing=o.smoothing, stabilize=o.stabilize, scene_cut=o.scene_cut)
        from psenet_stream.defaults import REUSE_BRIGHTNESS, REUSE_HOLD, REUSE_MOTION

        self.reuse = GammaReuse(every=o.gamma_every, motion=REUSE_MOTION, brightness=REUSE_BRIGHTNESS, cut=o.scene_cut, hold=REUSE_HOLD)
        self._lut: GammaLUT | None = None
        self.gain = self.make_gain(o.strength, o.stabilize)
        caps = backend.capabilities
        # the path is picked once: whole frames on the backend's device, or network on the
        # host's small copies and the curve by the lookup table
        self._full_frame = caps.full_frame
        self._enhance_host_batch = self._enhance_on_device if caps.full_frame else self._enhance_split
        self.supports_yuv420p = caps.yuv420p  # enhance_yuv420p runs on the backend's device
        self.preferred_batch: int | None = backend.batch if caps.full_frame else None  # a GPU's own batch size

    # --- construction ---------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, weights: str | None = None, backend: str = "auto", **options: Any) -> "Enhancer":
        """Load weights (the shipped default when None) onto a backend ('auto' picks the best).

        ``batch``, ``threads`` and ``compile`` go to the backend (those it takes); the rest
        are ``Options``. With ``backend="onnx"`` and an ONNX file stamped for these weights
        beside them (as the shipped ones are), torch is not imported at all
        (``backends.onnx.shipped_model``)."""
        from psenet_stream import backends

        bopts = {k: options.pop(k) for k in ("batch", "threads", "compile") if k in options}
        bopts = {k: v for k, v in bopts.items() if v is not None}
        if (backend or "").lower() == "onnx" and not backends.onnx_reason():
            from psenet_stream.backends.onnx import shipped_model

            found = shipped_model(weights)
            if found is not None:
                onnx_path, meta = found
                return cls(backends.create("onnx", None, meta, onnx_path=onnx_path, **bopts), **options)
        from psenet_stream.weights_io import load_model

        model, meta = load_model(weights)
        be = backends.create(backend, model, meta, **bopts)
        return cls(be, **options)

    @property
    def meta(self) -> dict[str, Any]:
        """The weight file's metadata (path, sha256, training config, ...)."""
        return self.backend.meta

    def reset(self) -> None:
        """Forget temporal state (call between unrelated clips)."""
        self.post.reset()
        self.reuse.reset()
        if self.gain is not None:
            self.gain.reset()

    def note_backlog(self, waiting: int) -> None:
        """A live pipeline's report of the frames waiting behind the one just enhanced: a
        backlog runs the network less often (``GammaReuse.note_backlog``) before frames drop."""
        self.reuse.note_backlog(waiting)

    @property
    def scene_cuts(self) -> int:
        """Scene cuts seen since ``reset`` (each restarts the temporal smoothing)."""
        return self.post.scene_cuts

    @property
    def last_gamma(self) -> np.ndarray | None:
        """The processed log gamma of the last batch, (N, 3, h, w) float32 (for flicker metrics)."""
        return self.post.last_log_gamma

    # --- public entry points ------------------------------------------------------------
    def __call__(self, x: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Enhance one frame or a batch of frames, in order (video state is kept between calls).

        Accepted inputs, returned in the same shape, dtype and kind:

        - ``(H, W, 3)`` or ``(N, H, W, 3)`` uint8 RGB in [0, 255]: a numpy array (or anything
          ``np.asarray`` takes), or a torch uint8 tensor on the CPU (any backend) or on the
          backend's device (cuda);
        - the same as uint16 numpy arrays in [0, 65535] (10/12/16-bit video and images): the
          curve is then applied in float (``curve.apply_float``), not by the 8-bit table;
        - ``(3, H, W)`` or ``(N, 3, H, W)`` float torch tensor in [0, 1] (``enhance_tensor``,
          the exact curve, no lookup table).

        Raises ``UsageError`` (a ValueError) naming the accepted shapes for anything else.

            >>> out = enh(rgb)                 # (720, 1280, 3) uint8 -> (720, 1280, 3) uint8
            >>> batch = enh(torch_frames)      # (8, 720, 1280, 3) uint8 CPU tensor -> same
        """
        if is_tensor(x):
            import torch

            if x.dtype == torch.uint8 and x.shape[-1:] == (3,):
                return self.enhance_frames(x[None])[0] if x.dim() == 3 else self.enhance_frames(x)
            return self.enhance_tensor(x)
        x = np.asarray(x)
        if x.dtype not in (np.uint8, np.uint16):
            raise UsageError(
                f"expected uint8 (or 16-bit uint16) RGB frames, got {x.dtype}",
                "convert with (img * 255).round().astype(np.uint8), or pass a float torch tensor",
            )
        if x.ndim == 3:
            return self.enhance_frames(x[None])[0]
        return self.enhance_frames(x)

    def enhance_frames(self, frames: np.ndarray | torch.Tensor, out: np.ndarray | torch.Tensor | None = None) -> np.ndarray | torch.Tensor:
        """(N, H, W, 3) uint8 RGB in [0, 255] -> (N, H, W, 3) uint8 RGB; frames in order.

        ``out``: an array of the same shape and dtype to write into (saves an allocation
        per call in tight loops). With a backend that declares ``device_frames`` (cuda),
        ``frames`` may also be a uint8 tensor on its device: the result is then a tensor
        there, and nothing is copied to or from the host.
        """
        if is_tensor(frames):
            return self._enhance_tensor_frames(frames, out)
        self._check_frames(frames)
        if frames.dtype == np.uint16:  # high bit depth: the network on a float copy, the exact curve on the host
            return self._enhance_split(frames, out)
        return self._enhance_host_batch(frames, out)

    def _enhance_split(self, frames: np.ndarray, out: np.ndarray | None) -> np.ndarray:
        plans = self.predict(frames)
        # C order whatever the input's layout: the curve and the gain's table write in place only there
        out = np.empty(frames.shape, frames.dtype) if out is None else out
        for i, plan in enumerate(plans):  # (cv2's remap spreads each frame over the cores itself)
            self.apply(frames[i], plan, out=out[i])
        return out

    def _enhance_on_device(self, frames, out=None):
        _, h, w, _ = frames.shape
        sh, sw = working_size(h, w, self.options.infer_size)
        if self.gain is None:
            return self.backend.enhance_uint8(frames, (sh, sw), self.post, self.options.highlight_knee, out=out)
        hook = _GainHook(self.post, self.gain)
        return hook.apply_rgb(self.backend.enhance_uint8(frames, (sh, sw), hook, self.options.highlight_knee, out=out))

    def _enhance_tensor_frames(self, frames: torch.Tensor, out=None) -> torch.Tensor:
        import torch

        host = frames.device.type == "cpu" and not self.backend.capabilities.device_frames
        if host and frames.dtype == torch.uint8 and frames.dim() == 4 and frames.shape[-1] == 3:
            # a CPU uint8 tensor on a host backend: the numpy path, sharing memory both ways
            res = self._enhance_host_batch(frames.contiguous().numpy(), None if out is None else out.numpy())
            return out if out is not None else torch.from_numpy(res)
        if not self.backend.capabilities.device_frames or frames.dtype != torch.uint8 or frames.dim() != 4 or frames.shape[-1] != 3:
            raise UsageError(
                f"expected (N, H, W, 3) uint8 frames, got a {tuple(frames.shape)} {frames.dtype} tensor for backend {self.backend.name}",
                "pass (N, H, W, 3) / (H, W, 3) uint8 RGB as a numpy array or CPU tensor (any backend) or CUDA tensor (cuda backend), or a float (N, 3, H, W) tensor in [0, 1]",
            )
        return self._enhance_on_device(frames, out)

    def enhance_yuv420p(self, frames: np.ndarray, colorspace: int | None = None, full_range: bool = False, out=None) -> np.ndarray:
        """(N, H * 3 / 2, W) uint8 yuv420p (PyAV's layout, colour.py) -> the same, enhanced.

        ``colorspace`` (AVColorSpace; None/2: BT.601) and ``full_range`` give the matrix, as
        the frames' tags do; the output uses the same. A backend that declares ``yuv420p``
        (cuda) moves only yuv420p; any other converts on the CPU with the same maths.
        """
        if frames.ndim != 3 or frames.dtype != np.uint8 or frames.shape[1] % 3 or (frames.shape[1] // 3) % 2 or frames.shape[2] % 2:
            raise UsageError(
                f"expected (N, H*3/2, W) uint8 yuv420p frames with even H and W, got {frames.shape} {frames.dtype}",
                "pass frames from VideoFrame.to_ndarray() of yuv420p video",
            )
        _, hh, w = frames.shape
        sh, sw = working_size(hh * 2 // 3, w, self.options.infer_size)
        if self.supports_yuv420p:
            if self.gain is None:
                return self.backend.enhance_yuv420p(
                    frames, (sh, sw), self.post, self.options.highlight_knee, colorspace, full_range, out=out
                )
            hook = _GainHook(self.post, self.gain)
            res = self.backend.enhance_yuv420p(frames, (sh, sw), hook, self.options.highlight_knee, colorspace, full_range, out=out)
            return hook.apply_yuv420p(res, full_range)
        rgb = colour.yuv420p_to_rgb_np(frames, colorspace, full_range)
        res = colour.rgb_to_yuv420p_batch_np(self.enhance_frames(rgb), colorspace, full_range)
        if out is None:
            return res
        out[...] = res
        return out

    @staticmethod
    def _check_frames(frames) -> None:
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype not in (np.uint8, np.uint16):
            raise UsageError(
                f"expected (N, H, W, 3) uint8 RGB frames (or uint16 for high bit depth), got shape {frames.shape} {frames.dtype}",
                "pass H x W x 3 uint8 RGB images",
            )

    def predict(self, frames) -> list:
        """The stateful half: the network and temporal smoothing, on small copies of frames.

        ``frames`` (N, H, W, 3) uint8 RGB, or a sequence of (H, W, 3) frames of one size (no
        batch copy is made). Returns one plan per frame for ``apply`` (an (h, w, 3) float32
        log-gamma map). Splitting the two lets a pipeline run the full-resolution curve
        (``apply``, stateless) in another thread than the network. A full-frame backend does
        all the work here; its plans are the finished frames.
        """
        if isinstance(frames, np.ndarray):
            self._check_frames(frames)
        else:
            for f in frames:
                self._check_frames(f[None] if isinstance(f, np.ndarray) and f.ndim == 3 else np.asarray(f))
            if len({f.shape for f in frames}) > 1:
                raise UsageError("frames of one call must have one size", "enhance frames of different sizes in separate calls")
        high = frames[0].dtype == np.uint16  # 10/12/16-bit: the curve is applied at full precision (apply_float)
        if self._full_frame and not high:
            batch = frames if isinstance(frames, np.ndarray) else np.stack(frames)
            return [_Done(f) for f in self._enhance_on_device(batch)]
        h, w = frames[0].shape[:2]
        sh, sw = working_size(h, w, self.options.infer_size)
        if (sh, sw) == (h, w):
            small = np.stack(frames) if not isinstance(frames, np.ndarray) else frames
        else:  # once, from the frame, by area (each small pixel the mean of its block)
            interp = cv2.INTER_AREA if sh < h else cv2.INTER_LINEAR
            small = np.empty((len(frames), sh, sw, 3), frames[0].dtype)
            for i, f in enumerate(frames):
                cv2.resize(f, (sw, sh), dst=small[i], interpolation=interp)
        small = small.transpose(0, 3, 1, 2).astype(np.float32) * np.float32(1 / (65535 if high else 255))
        lg = self.post(self.reuse(self.backend.predict_gamma, small), small)
        maps = np.ascontiguousarray(lg.transpose(0, 2, 3, 1))
        if self.gain is None:
            return list(maps)
        return [Plan(m, w, self.gain.table(w)) for m, w in zip(maps, self.gain(small))]

    def apply(self, frame: np.ndarray, plan, out: np.ndarray | None = None) -> np.ndarray:
        """The stateless half: the curve at full resolution for one (H, W, 3) uint8 frame
        (a lookup table; into ``out`` when given), or uint16 (high bit depth: the exact curve
        in float, ``apply_float``)."""
        if isinstance(plan, _Done):
            if out is None:
                return plan.frame
            out[...] = plan.frame
            return out
        gain = None
        if isinstance(plan, Plan):
            plan, gain = plan.log_gamma, plan
        if frame.dtype == np.uint16:
            res = apply_float(frame, plan, self.options.highlight_knee)
            if gain is not None:
                res = apply_gain_float(res, gain.log_w)
            if out is None:
                return res
            out[...] = res
            return out
        res = self._get_lut().apply(frame, plan, out=out)
        if gain is not None and gain.table is not None:
            _lut_inplace(res, gain.table)
        return res

    def enhance_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) or (3, H, W) float in [0, 1] -> the same shape and dtype, exact (no lookup table)."""
        import torch
        from torch.nn import functional as F

        squeeze = x.dim() == 3
        if squeeze:
            x = x[None]
        if x.dim() != 4 or x.shape[1] != 3 or not x.is_floating_point():
            raise UsageError(
                f"expected a float (N, 3, H, W) tensor, got {tuple(x.shape)} {x.dtype}", "scale uint8 images to [0, 1] floats first"
            )
        h, w = x.shape[2:]
        sh, sw = working_size(h, w, self.options.infer_size)
        xf = x.float().clamp(0, 1)
        small = xf if (sh, sw) == (h, w) else F.interpolate(xf, size=(sh, sw), mode="bilinear", align_corners=False, antialias=sh < h)
        small_np = small.detach().cpu().numpy()
        lg = self.post(self.backend.predict_gamma(small_np), small_np)
        y = apply_exact(xf, torch.from_numpy(lg).to(x.device), self.options.highlight_knee)
        if self.gain is not None:
            y = self.gain.apply_torch(y, torch.from_numpy(self.gain(small_np)).to(y.device))
        y = y.to(x.dtype)
        return y[0] if squeeze else y

    def make_gain(self, strength: float = 1.0, smoothing: float = 0.0) -> ExposureGain | None:
        """A fresh exposure gain with its own temporal state (None when the weight file has
        none or ``exposure_gain`` is off): one per stream."""
        params = self.backend.meta.get("exposure_gain") if self.options.exposure_gain else None
        # it follows the global level as slowly as the stabilizer does, and restarts on a cut
        return ExposureGain(params, strength=strength, smoothing=smoothing, scene_cut=self.options.scene_cut) if params else None

    def _get_lut(self) -> GammaLUT:
        lut = self._lut
        if lut is None:  # benign race: two threads may both build it once
            lut = self._lut = GammaLUT(self.options.highlight_knee)
        return lut

    @property
    def backend_description(self) -> str:
        """The backend in words, e.g. 'onnx (onnxruntime CPU, 2 threads, …)'."""
        return self.backend.describe()

    def describe(self) -> str:
        o = self.options
        return f"backend {self.backend.describe()}, infer size {o.infer_size}, strength {o.strength:g}, smoothing {o.smoothing:g}, stabilize {o.stabilize:g}"
