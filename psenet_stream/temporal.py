"""Gamma post-processing between the network and the curve: strength, temporal smoothing
and scene cuts, in numpy (host backends) and torch (device backends), with one state.

For a batch of N frames in order, with gamma (N, 3, h, w) from the network and the small
frames (N, 3, h, w) float in [0, 1] it was predicted from:

    lg   = clamp(strength * log(max(gamma, 1e-6)), LOG_GAMMA_RANGE)
    lg_i = smoothing * lg_{i-1} + (1 - smoothing) * lg_i        (an EMA over frames)

Then, with ``stabilize`` > 0, the global exposure is held steady while local detail stays
per frame: the output's mean luma at the small size, L_i (BT.709, of 1 - (1 - small)^gamma),
is followed by a slow level T_i = stabilize * T_{i-1} + (1 - stabilize) * L_i, and every
log gamma of frame i is shifted by one number so the frame lands on that level:

    lg_i += log( log(1 - T_i) / log(1 - L_i) )       (L, T clamped to [0.02, 0.98])

(for a flat frame this is exact: 1 - (1 - I)^(gamma k) with k = log(1 - T) / log(1 - L)
maps the output level L to T). A camera hunting its exposure, or a frame-to-frame wobble of
the network, moves L but not T; a real change of the scene moves T within a few frames.

Both filters restart (and ``scene_cuts`` counts one) when the mean absolute difference of a
small frame from the one before exceeds ``scene_cut``, or when the size changes, so a cut or
a light switched on is followed at once. ``strength`` 0 is the identity curve, 1 the
model's; ``smoothing`` and ``stabilize`` 0 are off.

A ``GammaPost`` is what a backend receives (typed by ``backends.base.GammaHook``): a value,
not a method of the Enhancer, so a backend never calls back up into it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from psenet_stream.curve import LOG_GAMMA_RANGE
from psenet_stream.defaults import REUSE_BRIGHTNESS, REUSE_HOLD, REUSE_MOTION
from psenet_stream.tensors import is_tensor

if TYPE_CHECKING:  # torch is imported only by the torch path (_torch), never for numpy frames
    import torch

_LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)  # BT.709
_LEVEL_STRIDE = 2  # the output level is a mean: every 2nd pixel each way gives the same flicker as all (measured; 4 added 0.03 levels)


def _level(sub: np.ndarray, gamma: np.ndarray) -> float:
    """Mean BT.709 luma of the curve's output, 1 - (1 - sub)^gamma, for (3, h, w) arrays."""
    return float((_LUMA.reshape(3, 1, 1) * (1.0 - np.maximum(1.0 - sub, 0.0) ** gamma)).sum(0).mean())


def _level_shift(target: float, level: float) -> float:
    """The log-gamma shift that moves a flat frame's output level from ``level`` to ``target``
    (both clamped to [0.02, 0.98]): log(log(1 - T) / log(1 - L)). The stabilizer and the
    reuse's level hold both use it."""
    t, c = np.clip([target, level], 0.02, 0.98)
    return float(np.log(np.log1p(-t) / np.log1p(-c)))


def _hold_factor(target: float, level: float, hold: float) -> float:
    """The factor on gamma that moves a flat frame's output level from ``level`` towards
    ``target`` (``hold`` 1: all the way)."""
    return float(np.exp(hold * _level_shift(target, level)))


class GammaPost:
    """Stateful gamma post-processing; ``__call__(gamma, small) -> log gamma`` (same shape, float32).

    numpy arrays are processed on the host, torch tensors where they are (a GPU backend
    passes device tensors: nothing leaves the device and nothing waits for it). The state
    carries over when a run switches between the two kinds.
    """

    def __init__(self, *, strength: float = 1.0, smoothing: float = 0.0, stabilize: float = 0.0, scene_cut: float = 0.12):
        self.strength = float(strength)
        self.smoothing = float(smoothing)
        self.stabilize = float(stabilize)
        self.scene_cut = float(scene_cut)
        self.reset()

    def reset(self) -> None:
        """Forget the temporal state (call between unrelated clips)."""
        self._prev_lg: np.ndarray | torch.Tensor | None = None
        self._prev_small: np.ndarray | torch.Tensor | None = None
        self._cuts = 0
        self._cuts_dev: torch.Tensor | None = None  # counted on the device without a sync
        self._last: np.ndarray | torch.Tensor | None = None
        self._level: float | torch.Tensor | None = None  # the stabilizer's output level T

    @property
    def scene_cuts(self) -> int:
        """Scene cuts seen since ``reset`` (each restarts the smoothing)."""
        return self._cuts + (int(self._cuts_dev.item()) if self._cuts_dev is not None else 0)

    @property
    def last_log_gamma(self) -> np.ndarray | None:
        """The processed log gamma of the last batch, (N, 3, h, w) float32 on the host."""
        lg = self._last
        if is_tensor(lg):
            lg = self._last = lg.float().cpu().numpy()
        return lg

    def __call__(self, gamma, small):
        if is_tensor(gamma):
            return self._torch(gamma, small)
        return self._numpy(gamma, small)

    def _numpy(self, gamma: np.ndarray, small: np.ndarray) -> np.ndarray:
        if is_tensor(self._prev_lg):  # the other kind of backend ran last: carry the state over
            self._prev_lg, self._prev_small = self._prev_lg.float().cpu().numpy(), self._prev_small.float().cpu().numpy()
        lg = np.log(np.maximum(gamma, 1e-6, dtype=np.float32))
        if self.strength != 1.0:
            lg *= np.float32(self.strength)
        np.clip(lg, *LOG_GAMMA_RANGE, out=lg)
        if self.smoothing > 0 or self.stabilize > 0:
            a = np.float32(self.smoothing)
            for i in range(lg.shape[0]):
                prev, ps = self._prev_lg, self._prev_small
                cut = prev is None or prev.shape != lg[i].shape or float(np.abs(small[i] - ps).mean()) > self.scene_cut
                if cut:
                    self._cuts += prev is not None
                    self._level = None
                elif self.smoothing > 0:
                    lg[i] = a * prev + (1 - a) * lg[i]
                self._prev_lg, self._prev_small = lg[i].copy(), small[i]
                if self.stabilize > 0:
                    lg[i] = self._stabilize_numpy(lg[i], small[i])
        self._last = lg
        return lg

    def _stabilize_numpy(self, lg: np.ndarray, small: np.ndarray) -> np.ndarray:
        sub, lsub = small[:, ::_LEVEL_STRIDE, ::_LEVEL_STRIDE], lg[:, ::_LEVEL_STRIDE, ::_LEVEL_STRIDE]
        level = _level(sub, np.exp(lsub))
        if self._level is None:
            self._level = level
            return lg
        self._level = self.stabilize * float(self._level) + (1.0 - self.stabilize) * level
        return np.clip(lg + np.float32(_level_shift(self._level, level)), *LOG_GAMMA_RANGE)

    def _torch(self, gamma: torch.Tensor, small: torch.Tensor) -> torch.Tensor:
        """Same maths, no host synchronisation: the scene-cut test of every frame is computed
        at once (each frame against the one before it); only the EMA loops over the batch."""
        import torch

        lg = torch.log(gamma.float().clamp_min(1e-6))
        if self.strength != 1.0:
            lg.mul_(self.strength)
        lg.clamp_(*LOG_GAMMA_RANGE)
        if self.smoothing > 0 or self.stabilize > 0:
            a = self.smoothing
            small = small.float()
            prev, ps = self._prev_lg, self._prev_small
            if prev is not None and not is_tensor(prev):
                prev, ps = torch.from_numpy(prev).to(lg.device), torch.from_numpy(ps).to(lg.device)
            have = prev is not None and tuple(prev.shape) == tuple(lg.shape[1:]) and prev.device == lg.device
            if prev is not None and not have:  # size changed: a cut, counted
                self._cuts += 1
            before = torch.cat([ps[None].to(small), small[:-1]]) if have else torch.cat([small[:1], small[:-1]])
            cut = (small - before).abs().mean(dim=(1, 2, 3)) > self.scene_cut
            if not have:
                cut[0] = True
            if a > 0:
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
            if self.stabilize > 0:
                self._stabilize_torch(lg, small, cut)
        self._last = lg
        return lg

    def _stabilize_torch(self, lg: torch.Tensor, small: torch.Tensor, cut: torch.Tensor) -> None:
        """The stabilizer on device tensors, in place, with no host synchronisation."""
        import torch

        w = torch.tensor(_LUMA, device=lg.device).reshape(1, 3, 1, 1)
        k = _LEVEL_STRIDE
        levels = (w * (1.0 - (1.0 - small[:, :, ::k, ::k]).clamp_min(0) ** lg[:, :, ::k, ::k].exp())).sum(1).mean(dim=(1, 2))
        b = self.stabilize
        level = (
            self._level
            if torch.is_tensor(self._level)
            else (None if self._level is None else torch.tensor(float(self._level), device=lg.device))
        )
        for i in range(lg.shape[0]):
            cur = levels[i]
            level = cur if level is None else torch.where(cut[i], cur, b * level + (1.0 - b) * cur)
            t, c = level.clamp(0.02, 0.98), cur.clamp(0.02, 0.98)
            shift = torch.where(cut[i], torch.zeros_like(c), torch.log(torch.log1p(-t) / torch.log1p(-c)))
            lg[i] = (lg[i] + shift).clamp(*LOG_GAMMA_RANGE)
        self._level = level


_STAT_STRIDE = 2  # the reuse statistics read every 2nd pixel each way of the working-size frame


class GammaReuse:
    """Runs the network only when its answer may have changed (host backends): adaptive k.

    ``__call__(predict, small)``: ``small`` (N, 3, h, w) float32 frames in order, ``predict``
    the network on a batch of them. A frame is sent to the network (and the reason counted
    in ``triggers``) when

    - ``first``: it is the first, or its size changed;
    - ``cut``: it differs from the frame of the last prediction (the key) by more than
      ``cut`` (mean absolute difference, in [0, 1]): a scene cut;
    - ``brightness``: its mean luma moved by more than ``brightness`` from the key's (a
      light, an auto-exposure step, a fade);
    - ``motion``: what is left of the difference once the global brightness change is taken
      out, ``mean |s - key| - |mean luma change|``, exceeds ``motion`` (large motion);
    - ``age``: ``k`` frames have passed since the last prediction, with ``k = every`` and
      doubled for each step of ``boost`` (up to ``max_every``).

    Otherwise it reuses that prediction's gamma, shifted by one factor per frame (``hold``
    1; 0 leaves it as it was) so the frame keeps the output level (mean luma of the curve's
    output) that the gamma gave its key frame: a small change of the light between two
    predictions is answered the way the network answers it, instead of passing through
    (measured: flicker not above running the network on every frame). The statistics are read on every 2nd pixel
    each way of the working-size frame (a few microseconds). ``note_backlog(n)``: a live
    pipeline reports the frames waiting behind the one just enhanced; with a backlog ``k``
    doubles (``boost``) and the motion trigger pauses (cuts and brightness changes still run
    the network), and without one it steps back down, so a live source that falls behind
    runs the network less often before it has to drop frames. ``every`` 1 is off (every
    frame predicted, no backlog boost). The post-processing (``GammaPost``) still runs on
    every frame with its own small frame, so the stabilizer follows the real level.
    """

    TRIGGERS = ("first", "cut", "brightness", "motion", "age")

    def __init__(
        self,
        every: int = 1,
        *,
        motion: float = REUSE_MOTION,
        brightness: float = REUSE_BRIGHTNESS,
        cut: float = 0.12,
        max_every: int = 64,
        hold: float = REUSE_HOLD,
    ):
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.every, self.max_every = int(every), max(int(every), int(max_every))
        self.motion, self.brightness, self.cut = float(motion), float(brightness), float(cut)
        self.hold = float(hold)
        self.boost = 0
        self.reset()

    def reset(self) -> None:
        self._gamma: np.ndarray | None = None  # the last prediction (3, h, w)
        self._key: np.ndarray | None = None  # the (subsampled) frame it was made from
        self._key_luma = 0.0
        self._key_level = 0.0  # the output level the key's gamma gave the key frame
        self._age = 0
        self.boost = 0
        self.predicted = 0
        self.reused = 0
        self.triggers = dict.fromkeys(self.TRIGGERS, 0)

    @property
    def k(self) -> int:
        """The current longest run of reused frames + 1 (``every``, raised by the backlog)."""
        return min(self.max_every, self.every << self.boost)

    def note_backlog(self, waiting: int) -> None:
        """Frames waiting behind the one just enhanced (live): > 0 doubles k, 0 halves it back."""
        if self.every <= 1:
            return
        if waiting > 0:
            if self.k < self.max_every:
                self.boost += 1
        elif self.boost > 0:
            self.boost -= 1

    def _why(self, sub: np.ndarray, luma: float, key: np.ndarray | None, key_luma: float, age: int) -> str | None:
        """The trigger that sends this frame to the network, or None to reuse."""
        if key is None or key.shape != sub.shape:
            return "first"
        diff = float(np.abs(sub - key).mean())
        if diff > self.cut:
            return "cut"
        dl = abs(luma - key_luma)
        if dl > self.brightness:
            return "brightness"
        if self.boost == 0 and diff - dl > self.motion:
            return "motion"
        if age + 1 >= self.k:
            return "age"
        return None

    def __call__(self, predict, small: np.ndarray) -> np.ndarray:
        """Gamma for every frame of ``small``. The state moves on only once ``predict`` has
        returned: if it raises, a second call with the same frames decides the same way (a
        server may probe first and run the network for several streams at once)."""
        if self.every <= 1:
            self.predicted += len(small)
            return predict(small)
        src = []  # per frame: index into the predicted batch, or -1 for the carried-over gamma
        picked: list[int] = []
        why_picked: list[str] = []
        key, key_luma, age = self._key, self._key_luma, self._age
        k = _STAT_STRIDE
        subs = []
        for s in small:
            sub = s[:, ::k, ::k]
            subs.append(sub)
            luma = float(np.tensordot(_LUMA, sub.mean(axis=(1, 2)), 1))
            why = self._why(sub, luma, key, key_luma, age)
            if why is not None:
                picked.append(len(src))
                why_picked.append(why)
                key, key_luma, age = sub, luma, 0
            else:
                age += 1
            src.append(len(picked) - 1)
        gamma = predict(small[picked]) if picked else np.empty((0, *small.shape[1:]), np.float32)
        out = np.empty(small.shape, np.float32)
        key_level = self._key_level
        for i, j in enumerate(src):
            g = gamma[j] if j >= 0 else self._gamma
            if self.hold > 0:
                gs = g[:, ::k, ::k]
                if j >= 0 and picked[j] == i:  # a key frame: remember the level its gamma gave it
                    key_level = _level(subs[i], gs)
                else:  # reused: shift gamma so this frame keeps the key's output level
                    g = g * np.float32(_hold_factor(key_level, _level(subs[i], gs), self.hold))
            out[i] = g
        if picked:
            self._gamma = gamma[-1].copy()
            for why in why_picked:
                self.triggers[why] += 1
            key = key.copy()  # not a view that keeps the caller's whole batch alive
        self._key, self._key_luma, self._age, self._key_level = key, key_luma, age, key_level
        self.predicted += len(picked)
        self.reused += len(small) - len(picked)
        return out
