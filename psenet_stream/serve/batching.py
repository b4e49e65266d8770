"""One backend call for the newest frame of many streams, each with its own temporal state.

The Enhancer splits a frame's work in two (enhancer.py): ``predict`` (the network at a small
working size, then ``temporal.GammaPost``: strength, smoothing, scene cuts, stabilizer; with
``temporal.GammaReuse`` deciding whether the network runs at all) and ``apply`` (the
stateless full-resolution curve). For many streams the stateful half is kept per stream
(``StreamState``) and only the network is shared:

1. every stream's frame is shrunk to its own working size (its ``infer_size``);
2. each stream's ``GammaReuse`` says whether its frame needs the network (the first frame, a
   change, every K frames) or reuses its last gamma;
3. the frames that need it go to the backend in ONE call, at one batch shape (the working
   size most of them have; the others are resized to it, and their gamma resized back);
4. each stream's ``GammaPost`` turns its gamma into log gamma with its own strength and
   history, so smoothing and scene cuts never mix between cameras;
5. the curve is applied per frame at the frame's own size (``Enhancer.apply``), by the
   stream's writer thread.

A full-frame backend (cuda, tensorrt) takes whole frames: frames of one size and working
size go to ``enhance_uint8`` together, with a ``GammaPost`` per frame (``_PerFramePost``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from psenet_stream.curve import working_size
from psenet_stream.exposure import Plan
from psenet_stream.temporal import GammaPost, GammaReuse


class StreamState:
    """The temporal state of one stream: its GammaPost and GammaReuse, and its working size."""

    def __init__(
        self, *, infer_size: int | str = 256, strength: float = 1.0, smoothing: float = 0.0, stabilize: float = 0.0, gamma_every: int = 1, scene_cut: float = 0.12, gain=None
    ):
        self.infer_size = infer_size
        self.post = GammaPost(strength=strength, smoothing=smoothing, stabilize=stabilize, scene_cut=scene_cut)
        self.reuse = GammaReuse(every=gamma_every, cut=scene_cut)
        self.gain = gain  # the stream's own exposure gain (Enhancer.make_gain), or None

    @property
    def scene_cuts(self) -> int:
        return self.post.scene_cuts

    def reset(self) -> None:
        self.post.reset()
        self.reuse.reset()
        if self.gain is not None:
            self.gain.reset()


class _Finished:
    """A plan that is already the enhanced frame (full-frame backends)."""

    __slots__ = ("frame",)

    def __init__(self, frame):
        self.frame = frame


class _NeedsNetwork(Exception):
    """Raised by the probe ``predict`` handed to GammaReuse: this frame needs the network."""


def _probe(_small):
    raise _NeedsNetwork


@dataclass
class BatchReport:
    """What one ``predict`` call did: frames in, frames through the network, backend seconds."""

    frames: int = 0
    network: int = 0
    backend_seconds: float = 0.0


class CrossStreamPredictor:
    """``predict([(state, rgb), ...]) -> plans`` in one backend call; ``apply(rgb, plan)``.

    The server splits ``predict`` over threads: ``prepare`` (each stream's reader: the small
    frame), ``network`` (the batcher: one backend call for every stream), ``finish`` (each
    stream's writer, in its frame order: the stream's GammaPost), ``apply`` (the writer: the
    curve). Only ``network`` is shared; the per-stream work runs in parallel. Several threads
    may call ``network`` at once for different streams (the server keeps one frame of a
    stream in flight at a time).
    ``enhancer``: an ``Enhancer`` (its backend runs the network, its ``apply`` the curve).
    """

    def __init__(self, enhancer):
        self.enhancer = enhancer
        self.backend = enhancer.backend
        self.full_frame = bool(enhancer.backend.capabilities.full_frame)
        self.knee = enhancer.options.highlight_knee

    def apply(self, rgb: np.ndarray, plan: Any) -> np.ndarray:
        if isinstance(plan, _Finished):
            return plan.frame
        return self.enhancer.apply(rgb, plan)

    def prepare(self, state: StreamState, rgb: np.ndarray) -> np.ndarray | None:
        """The frame at the stream's working size, (3, h, w) float32 in [0, 1] (None for a
        full-frame backend). Stateless: each stream's reader thread calls it for its frames."""
        if self.full_frame:
            return None
        h, w = rgb.shape[:2]
        sh, sw = working_size(h, w, state.infer_size)
        if (sh, sw) == (h, w):
            small = rgb
        else:
            small = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA if sh < h else cv2.INTER_LINEAR)
        return small.transpose(2, 0, 1).astype(np.float32) * np.float32(1 / 255)

    def predict(self, items: list[tuple[StreamState, np.ndarray]]) -> list[Any]:
        """prepare + network + finish for (state, rgb) pairs, in one call: plans for ``apply``."""
        pend = self.network([(st, rgb, self.prepare(st, rgb)) for st, rgb in items])
        return [self.finish(st, p) for (st, _), p in zip(items, pend)]

    def network(self, items: list[tuple[StreamState, np.ndarray, np.ndarray | None]]) -> list[Any]:
        """``network_report`` without the report."""
        return self.network_report(items)[0]

    def network_report(self, items: list[tuple[StreamState, np.ndarray, np.ndarray | None]]) -> tuple[list[Any], BatchReport]:
        """The shared half, in the batcher's thread: (state, rgb, prepared small) of several
        streams -> one pending result each, after at most one backend call (GammaReuse decides
        per stream which frames need it). ``finish`` turns a pending result into a plan."""
        import time

        t0 = time.perf_counter()
        if self.full_frame:
            plans = self._predict_full_frame([(st, rgb) for st, rgb, _ in items])
            return plans, BatchReport(len(items), len(items), time.perf_counter() - t0)
        return self._network_host(items)

    def finish(self, state: StreamState, pending: Any) -> Any:
        """The stream's own post-processing (GammaPost: strength, smoothing, scene cuts,
        stabilizer): called in frame order for one stream (its writer thread) -> a plan."""
        if isinstance(pending, _Finished):
            return pending
        gamma, small = pending
        lg = state.post(gamma, small[None])
        plan = np.ascontiguousarray(lg[0].transpose(1, 2, 0))
        if state.gain is None:
            return plan
        w = float(state.gain(small[None])[0])
        return Plan(plan, w, state.gain.table(w))

    # --- host backends (cpu, onnx): the network on small frames --------------------------------
    def _network_host(self, items):
        import time

        smalls = [small for _, _, small in items]
        gammas: list[np.ndarray | None] = [None] * len(items)
        need = []
        for i, (state, _, _) in enumerate(items):
            if state.reuse.every <= 1:
                need.append(i)
                continue
            try:
                gammas[i] = state.reuse(_probe, smalls[i][None])  # reused: its state moved on
            except _NeedsNetwork:  # nothing changed in the reuse state; asked again below
                need.append(i)
        seconds = 0.0
        if need:
            shape = Counter(smalls[i].shape[1:] for i in need).most_common(1)[0][0]
            batch = np.stack([smalls[i] if smalls[i].shape[1:] == shape else _resize_chw(smalls[i], shape) for i in need])
            t = time.perf_counter()
            out = self.backend.predict_gamma(batch)
            seconds = time.perf_counter() - t
            for j, i in enumerate(need):
                g = out[j] if smalls[i].shape[1:] == shape else _resize_chw(out[j], smalls[i].shape[1:])
                g = g[None]
                state = items[i][0]
                gammas[i] = state.reuse(lambda _s, g=g: g, smalls[i][None]) if state.reuse.every > 1 else g
        return [(gammas[i], smalls[i]) for i in range(len(items))], BatchReport(len(items), len(need), seconds)

    # --- full-frame backends (cuda, tensorrt) ------------------------------------------------
    def _predict_full_frame(self, items):
        plans: list[Any] = [None] * len(items)
        groups: dict[tuple, list[int]] = {}
        for i, (state, rgb) in enumerate(items):
            h, w = rgb.shape[:2]
            groups.setdefault((rgb.shape, working_size(h, w, state.infer_size)), []).append(i)
        for (_, small_size), idx in groups.items():
            frames = np.stack([items[i][1] for i in idx])
            post = _PerFramePost([items[i][0].post for i in idx])
            out = self.backend.enhance_uint8(frames, small_size, post, self.knee)
            for j, i in enumerate(idx):
                plans[i] = _Finished(np.asarray(out[j]) if not hasattr(out, "cpu") else out[j].cpu().numpy())
        return plans


class _PerFramePost:
    """A GammaHook for a batch whose frame i belongs to ``posts[i]`` (one stream each). A
    backend may call it in chunks of the batch, in order (cuda's ring of device batches):
    each call takes the next ``len(gamma)`` posts."""

    def __init__(self, posts: list[GammaPost]):
        self.posts = posts
        self._next = 0

    def __call__(self, gamma, small):
        mine = self.posts[self._next : self._next + len(gamma)]
        self._next += len(gamma)
        parts = [p(gamma[i : i + 1], small[i : i + 1]) for i, p in enumerate(mine)]
        if hasattr(parts[0], "device") and not isinstance(parts[0], np.ndarray):
            import torch

            return torch.cat(parts)
        return np.concatenate(parts)


def _resize_chw(x: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """(C, h, w) float32 -> (C, H, W), bilinear."""
    h, w = hw
    return np.ascontiguousarray(cv2.resize(x.transpose(1, 2, 0), (w, h), interpolation=cv2.INTER_LINEAR).transpose(2, 0, 1))
