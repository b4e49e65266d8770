"""The exposure gain: one global number per frame, after the curve, that can lower white.

The curve Y = 1 - (1 - I)^gamma keeps white at white whatever gamma is. An over-exposed
frame whose highlights the camera clipped therefore keeps them at 255, and everything near
them stays too bright: on the 30 held-out photos of the evaluation, the best single gain
per photo (an oracle) would take the over-exposed group from 16.9 to 26.4 dB.

``ExposureGain`` predicts that gain blind, from global statistics of the working-size input
(per-channel means, the luma's spread, the shares of luma above and below fixed levels, the
share of clipped pixels, the mean luma) with a two-layer MLP, and applies it in linear
light after the curve:

    Y' = srgb(w * linear(Y)),   log w = clamp(MLP(features) + deadzone, log lo, log hi)

as one 256-entry lookup table per frame (cv2.LUT on the host, a gather on a device). It
was fitted with the network frozen (``train/exposure_gain.py``), on the training photos only,
with a third of the samples at EV 0, so that on footage that is fine it answers w = 1.

For video the log gain is smoothed over time (an EMA with the stabilizer's factor), and a
scene cut restarts it, as the gamma post-processing does.

The parameters live in the weight file's metadata (``meta["exposure_gain"]``), so the
network's state_dict and the official checkpoints are untouched; a weight file without them
gets no gain (w = 1).
"""

from __future__ import annotations

from typing import Any

import numpy as np

HIGH = (0.5, 0.7, 0.85, 0.95, 0.99)
LOW = (0.05, 0.15, 0.3)
FEATURES = 3 + 1 + len(HIGH) + len(LOW) + 2
_LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)  # BT.709
_CLIPPED = 254.0 / 255.0
_STEPS = 512  # gain tables are cached per 1/_STEPS of log w


def features(small: np.ndarray) -> np.ndarray:
    """(N, 3, h, w) float32 in [0, 1] -> (N, FEATURES) float32. Once per frame on the hot path:
    counts rather than means of booleans, one luma pass (~4x cheaper than the plain form)."""
    x = np.ascontiguousarray(small, dtype=np.float32)  # the Enhancer's small frames are a transposed view
    n = x.shape[0]
    flat = x.reshape(n, 3, -1)
    p = flat.shape[2]
    y = flat[:, 0] * _LUMA[0]
    y += flat[:, 1] * _LUMA[1]
    y += flat[:, 2] * _LUMA[2]
    out = np.empty((n, FEATURES), np.float32)
    out[:, :3] = flat.mean(axis=2)
    out[:, 3] = y.std(axis=1)
    col = 4
    for t in HIGH:
        out[:, col] = np.count_nonzero(y > t, axis=1) / p
        col += 1
    for t in LOW:
        out[:, col] = np.count_nonzero(y < t, axis=1) / p
        col += 1
    out[:, col] = np.count_nonzero(flat.max(axis=1) >= _CLIPPED, axis=1) / p
    out[:, col + 1] = y.mean(axis=1)
    return out


def features_torch(small):
    """``features`` for a (N, 3, h, w) float tensor, where it is (a device backend's small frames)."""
    import torch

    x = small.float()
    n = x.shape[0]
    flat = x.reshape(n, 3, -1)
    y = (torch.tensor(_LUMA, device=x.device).view(1, 3, 1) * flat).sum(1)
    cols = [flat.mean(2), y.std(1, unbiased=False, keepdim=True)]
    cols += [(y > t).float().mean(1, keepdim=True) for t in HIGH]
    cols += [(y < t).float().mean(1, keepdim=True) for t in LOW]
    cols += [(flat.amax(1) >= _CLIPPED).float().mean(1, keepdim=True), y.mean(1, keepdim=True)]
    return torch.cat(cols, 1)


def srgb_to_linear(v: np.ndarray) -> np.ndarray:
    return np.where(v <= 0.04045, v / 12.92, ((np.maximum(v, 0) + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(v: np.ndarray) -> np.ndarray:
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * np.maximum(v, 1e-12) ** (1 / 2.4) - 0.055)


def gain_table(log_w: float) -> np.ndarray:
    """The 256-entry uint8 table of Y -> srgb(w * linear(Y))."""
    v = np.arange(256, dtype=np.float64) / 255.0
    return (np.clip(linear_to_srgb(srgb_to_linear(v) * np.exp(log_w)), 0, 1) * 255.0).round().astype(np.uint8)


def apply_gain_float(frame: np.ndarray, log_w: float) -> np.ndarray:
    """The gain exactly, on a uint16 (or float [0, 1]) frame; same dtype back."""
    if not log_w:
        return frame
    scale = 65535.0 if frame.dtype == np.uint16 else 1.0
    y = linear_to_srgb(srgb_to_linear(frame.astype(np.float32) / np.float32(scale)) * np.float32(np.exp(log_w)))
    y = np.clip(y, 0.0, 1.0)
    if frame.dtype == np.uint16:
        return (y * 65535.0 + 0.5).astype(np.uint16)
    return y.astype(frame.dtype)


class Plan:
    """One frame's plan for ``Enhancer.apply`` when a gain is on: its (h, w, 3) float32
    log-gamma map, its log gain and that gain's uint8 table (None: the identity)."""

    __slots__ = ("log_gamma", "log_w", "table")

    def __init__(self, log_gamma: np.ndarray, log_w: float, table: np.ndarray | None):
        self.log_gamma, self.log_w, self.table = log_gamma, float(log_w), table


class ExposureGain:
    """The fitted head and its temporal state; ``__call__(small) -> log w`` per frame (N,)."""

    def __init__(self, params: dict[str, Any], *, strength: float = 1.0, smoothing: float = 0.0, scene_cut: float = 0.12):
        self.mu = np.asarray(params["mu"], np.float32)
        self.sd = np.asarray(params["sd"], np.float32)
        self.w1 = np.asarray(params["w1"], np.float32)
        self.b1 = np.asarray(params["b1"], np.float32)
        self.w2 = np.asarray(params["w2"], np.float32)
        self.b2 = np.asarray(params["b2"], np.float32)
        self.lo, self.hi = float(np.log(params["lo"])), float(np.log(params["hi"]))
        # added to the head's answer before the bounds: small corrections are not made at all
        self.deadzone = float(params.get("deadzone", 0.0))
        if self.w1.shape != (self.mu.size, self.b1.size) or self.mu.size != FEATURES or self.w2.shape != (self.b1.size,):
            raise ValueError(f"exposure gain parameters have the wrong shapes: w1 {self.w1.shape}, w2 {self.w2.shape}, mu {self.mu.shape}")
        self.strength = float(strength)
        self.smoothing = float(smoothing)
        self.scene_cut = float(scene_cut)
        self._tables: dict[int, np.ndarray] = {}
        self._device_params: dict = {}
        self.reset()

    @property
    def parameters(self) -> int:
        return self.w1.size + self.b1.size + self.w2.size + self.b2.size

    def reset(self) -> None:
        self._prev: float | None = None
        self._prev_small: np.ndarray | None = None

    def predict(self, small: np.ndarray) -> np.ndarray:
        """Log gains for (N, 3, h, w) float32 frames, without temporal state."""
        f = (features(small) - self.mu) / self.sd
        h = f @ self.w1 + self.b1
        h = np.where(h > 0, h, 0.01 * h)
        return np.clip(h @ self.w2 + self.b2 + self.deadzone, self.lo, self.hi) * self.strength

    def predict_torch(self, small):
        """``predict`` on a device tensor, without a host synchronisation."""
        import torch

        dev = small.device
        t = self._device_params.get(dev)
        if t is None:  # uploaded once per device, not per batch
            t = self._device_params[dev] = {k: torch.from_numpy(getattr(self, k)).to(dev) for k in ("mu", "sd", "w1", "b1", "w2")}
        f = (features_torch(small) - t["mu"]) / t["sd"]
        h = torch.nn.functional.leaky_relu(f @ t["w1"] + t["b1"], 0.01)
        return (h @ t["w2"] + float(self.b2 + self.deadzone)).clamp(self.lo, self.hi) * self.strength

    @staticmethod
    def apply_torch(y, log_w):
        """The gain exactly on float (N, 3, H, W) in [0, 1], with (N,) log gains."""
        from psenet_stream.ops import linear_to_srgb, srgb_to_linear

        return linear_to_srgb(srgb_to_linear(y.clamp(0, 1)) * log_w.float().exp().view(-1, 1, 1, 1))

    def tables_torch(self, log_w):
        """(N,) log gains on a device -> (N, 256) uint8 tables there."""
        import torch

        from psenet_stream.ops import linear_to_srgb, srgb_to_linear

        v = torch.arange(256, device=log_w.device, dtype=torch.float32) / 255.0
        srgb = linear_to_srgb(srgb_to_linear(v)[None] * log_w.float().exp()[:, None])
        return (srgb * 255.0).round().to(torch.uint8)

    def _torch_call(self, small):
        import torch

        lw = self.predict_torch(small)
        if self.smoothing <= 0:
            return lw
        a = self.smoothing
        prev, ps = self._prev, self._prev_small
        if prev is not None and not torch.is_tensor(prev):
            prev = torch.tensor(float(prev), device=lw.device)
        if ps is not None and not torch.is_tensor(ps):
            ps = torch.from_numpy(ps).to(small.device)
        out = []
        for i in range(lw.shape[0]):
            if prev is None or ps is None or ps.shape != small[i].shape:
                cur = lw[i]
            else:
                cut = (small[i].float() - ps.float()).abs().mean() > self.scene_cut
                cur = torch.where(cut, lw[i], a * prev + (1 - a) * lw[i])
            out.append(cur)
            prev, ps = cur, small[i]
        self._prev, self._prev_small = prev, ps
        return torch.stack(out)

    def __call__(self, small):
        if not isinstance(small, np.ndarray):
            return self._torch_call(small)
        if self._prev is not None and not isinstance(self._prev, float):  # a device run came before
            self._prev, self._prev_small = float(self._prev), self._prev_small.float().cpu().numpy()
        lw = self.predict(small)
        if self.smoothing <= 0:
            return lw
        a = self.smoothing
        for i in range(len(lw)):
            prev, ps = self._prev, self._prev_small
            cut = prev is None or ps is None or ps.shape != small[i].shape or float(np.abs(small[i] - ps).mean()) > self.scene_cut
            if not cut:
                lw[i] = a * prev + (1 - a) * lw[i]
            self._prev, self._prev_small = float(lw[i]), small[i]
        return lw

    def table(self, log_w: float) -> np.ndarray | None:
        """The uint8 lookup table for a log gain, or None when it is the identity."""
        k = round(float(log_w) * _STEPS)
        if k == 0:
            return None
        t = self._tables.get(k)
        if t is None:
            if len(self._tables) > 4096:
                self._tables.clear()
            t = self._tables[k] = gain_table(k / _STEPS)
        return t
