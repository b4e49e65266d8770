"""Flicker: how much the brightness and the predicted gamma jump from frame to frame.

For a sequence of frames we record, per frame, the mean BT.709 luma of the input and of
the output (in 8-bit levels, 0-255) and the mean log gamma the enhancer used
(``Enhancer.last_gamma``). Flicker is the frame-to-frame change of these means:
``mean_abs_delta`` = mean |x[t] - x[t-1]| and ``std_delta`` = std of x[t] - x[t-1].
A good video enhancer keeps ``output.mean_abs_delta`` close to the input's (it should not
add brightness changes the scene does not have); ``ratio`` = output / input says by how
much it adds (> 1) or removes (< 1) them.

``measure_flicker(clip, enhancer)`` decodes a clip with PyAV via psenet_stream.io (or takes any iterable of
uint8 RGB frames), optionally applies a synthetic exposure error to every frame, and runs
the enhancer frame by frame as a live stream would.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from psenet_stream.curve import shrink_to_long_side

__all__ = ["FlickerMeter", "decode_frames", "delta_stats", "mean_luma", "measure_flicker"]


def delta_stats(series: Iterable[float]) -> dict[str, float]:
    """mean |delta| and std of delta of a per-frame series (0 for fewer than 2 frames)."""
    s = np.asarray(list(series), dtype=np.float64)
    if s.size < 2:
        return {"mean_abs_delta": 0.0, "std_delta": 0.0, "mean": float(s.mean()) if s.size else 0.0}
    d = np.diff(s)
    return {"mean_abs_delta": float(np.abs(d).mean()), "std_delta": float(d.std()), "mean": float(s.mean())}


def mean_luma(frame: np.ndarray) -> float:
    """Mean BT.709 luma of a uint8 (H, W, 3) RGB frame, in 8-bit levels."""
    f = frame.astype(np.float32)
    return float((0.2126 * f[..., 0] + 0.7152 * f[..., 1] + 0.0722 * f[..., 2]).mean())


class FlickerMeter:
    """Accumulates per-frame means; ``result()`` gives the flicker statistics."""

    def __init__(self):
        self.luma_in: list[float] = []
        self.luma_out: list[float] = []
        self.log_gamma: list[float] = []

    def update(self, frame_in: np.ndarray, frame_out: np.ndarray, log_gamma: np.ndarray | None = None) -> None:
        self.luma_in.append(mean_luma(frame_in))
        self.luma_out.append(mean_luma(frame_out))
        if log_gamma is not None:
            self.log_gamma.append(float(np.mean(log_gamma)))

    def result(self) -> dict:
        i, o = delta_stats(self.luma_in), delta_stats(self.luma_out)
        out = {"frames": len(self.luma_in), "input": i, "output": o}
        out["ratio"] = o["mean_abs_delta"] / i["mean_abs_delta"] if i["mean_abs_delta"] > 0 else float("nan")
        if self.log_gamma:
            out["log_gamma"] = delta_stats(self.log_gamma)
        return out


def decode_frames(path: str | Path, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """uint8 RGB frames (coded orientation) of a video file (``io.video.decode_rgb``)."""
    from psenet_stream.io.video import decode_rgb

    yield from decode_rgb(path, max_frames)


def measure_flicker(
    clip: str | Path | Iterable[np.ndarray],
    enhancer,
    max_frames: int | None = 300,
    *,
    ev: float = 0.0,
    long_side: int | None = None,
) -> dict:
    """Run ``enhancer`` over a clip frame by frame and return the flicker statistics.

    clip: a video path (decoded with PyAV) or an iterable of uint8 (H, W, 3) RGB frames.
    ev: a synthetic exposure error applied to every frame in linear light (0 = none).
    The enhancer is reset first; its ``scene_cuts`` count is reported.
    """
    from psenet_stream.evaluation.photos import synthesize

    frames = decode_frames(clip, max_frames) if isinstance(clip, (str, Path)) else clip
    enhancer.reset()
    meter = FlickerMeter()
    for n, f in enumerate(frames):
        if max_frames is not None and n >= max_frames:
            break
        f = shrink_to_long_side(np.ascontiguousarray(f), long_side)
        x = synthesize(f, ev) if ev else f
        y = enhancer(x)
        meter.update(x, y, enhancer.last_gamma)
    out = meter.result()
    out["scene_cuts"] = int(enhancer.scene_cuts)
    out["ev"] = ev
    out["smoothing"] = float(enhancer.options.smoothing)
    return out
