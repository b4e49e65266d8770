"""Video quality: exposure errors that stay put or hunt, scored against the clean frames.

Each real clip is decoded (long side bounded), and every frame gets an exposure error by EV
schedule, in the linear family of the photo evaluation:

* ``under -2`` / ``over +1.5``: a constant error, as from a camera set wrong;
* ``hunt``: auto-exposure hunting, EV(t) = -0.5 + 1.0 * sin(2 pi t / 1.5 s), so the input
  swings between -1.5 and +0.5 EV every 1.5 seconds;
* ``step``: EV 0 for the first half, then -2 (a light switched off): a real lighting change
  the output must follow, not smooth away.

A method is a factory that returns a fresh stateful callable per run (uint8 (H, W, 3) RGB in,
uint8 out, frame by frame as a live stream would run it). Per variant and method:

* ``psnr``: against the clean frames, from the mean squared error over the whole clip (so
  frames that are untouched and exact do not count as infinite); ``ssim``: mean over every
  4th frame;
* ``flicker``: mean |Δ mean luma| from frame to frame, 8-bit levels, of the output; the clean
  clip's and the input's own are reported beside it (``flicker_clean``, ``flicker_input``);
* ``settle_frames`` (step only): frames after the step until the output's mean luma stays
  within 2 levels of where it ends up (the mean of the last 10 frames).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from psenet_stream.evaluation import metrics
from psenet_stream.evaluation.flicker import mean_luma

Frames = Sequence[np.ndarray]
MethodFactory = Callable[[], Callable[[np.ndarray], np.ndarray]]


@dataclass(frozen=True)
class Variant:
    name: str
    kind: str  # "constant", "hunt" or "step"
    ev: float = 0.0

    def evs(self, n: int, fps: float) -> list[float]:
        if self.kind == "constant":
            return [self.ev] * n
        if self.kind == "hunt":
            return [-0.5 + 1.0 * math.sin(2 * math.pi * (i / fps) / 1.5) for i in range(n)]
        if self.kind == "step":
            return [0.0 if i < n // 2 else self.ev for i in range(n)]
        raise ValueError(f"Invalid variant kind ({self.kind!r}). Supported values are constant, hunt, step.")


VARIANTS: tuple[Variant, ...] = (
    Variant("under -2", "constant", -2.0),
    Variant("over +1.5", "constant", 1.5),
    Variant("hunt", "hunt"),
    Variant("step", "step", -2.0),
)


def flicker(lumas: Sequence[float]) -> float:
    """Mean |frame-to-frame change| of a per-frame mean luma series (0 for < 2 frames)."""
    return float(np.abs(np.diff(np.asarray(lumas, dtype=np.float64))).mean()) if len(lumas) > 1 else 0.0


def settle_frames(lumas: Sequence[float], start: int, tolerance: float = 2.0) -> int:
    """Frames after ``start`` until the series stays within ``tolerance`` of its final level."""
    y = np.asarray(lumas, dtype=np.float64)
    final = y[-10:].mean()
    outside = np.nonzero(np.abs(y[start:] - final) > tolerance)[0]
    return int(outside[-1] + 1) if outside.size else 0


def degrade_clip(frames: Frames, evs: Sequence[float]) -> list[np.ndarray]:
    from psenet_stream.evaluation.photos import synthesize

    return [synthesize(f, e) if e else f for f, e in zip(frames, evs)]


def score_run(clean: Frames, inputs: Frames, outputs: Frames, variant: Variant) -> dict[str, float]:
    mse = np.mean([np.mean((o.astype(np.float32) - c.astype(np.float32)) ** 2) for o, c in zip(outputs, clean)]) / 255.0**2
    ss = [float(metrics.ops.ssim(metrics.to_tensor(o), metrics.to_tensor(c))[0]) for o, c in list(zip(outputs, clean))[::4]]
    lo = [mean_luma(o) for o in outputs]
    r = {
        "psnr": float(10 * np.log10(1.0 / max(float(mse), 1e-12))),
        "ssim": float(np.mean(ss)),
        "flicker": flicker(lo),
        "flicker_clean": flicker([mean_luma(c) for c in clean]),
        "flicker_input": flicker([mean_luma(x) for x in inputs]),
    }
    if variant.kind == "step":
        r["settle_frames"] = settle_frames(lo, len(outputs) // 2)
    return r


def evaluate_video(
    clips: Sequence[tuple[str, Frames, float]],
    methods: dict[str, MethodFactory],
    variants: Sequence[Variant] = VARIANTS,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """{"rows": [{clip, variant, method, psnr, ssim, flicker, ...}], "summary": {variant: {method: means}}}.

    clips: (name, clean uint8 RGB frames, fps)."""
    rows = []
    for name, clean, fps in clips:
        for v in variants:
            inputs = degrade_clip(clean, v.evs(len(clean), fps))
            for mname, factory in methods.items():
                fn = factory()
                outputs = [fn(x) for x in inputs]
                rows.append({"clip": name, "variant": v.name, "method": mname, **score_run(clean, inputs, outputs, v)})
                if progress:
                    progress(f"video {name} {v.name} {mname}: {rows[-1]['psnr']:.2f} dB, flicker {rows[-1]['flicker']:.3f}")
    summary: dict = {}
    for r in rows:
        summary.setdefault(r["variant"], {}).setdefault(r["method"], []).append(r)
    for v, by_method in summary.items():
        for m, rs in by_method.items():
            keys = [k for k in rs[0] if k not in ("clip", "variant", "method")]
            by_method[m] = {k: float(np.mean([x[k] for x in rs])) for k in keys} | {"clips": len(rs)}
    return {"rows": rows, "summary": summary}


def to_markdown(result: dict, title: str = "") -> str:
    lines = [title, ""] if title else []
    lines += [
        "| variant | method | PSNR | SSIM | flicker out | flicker clean | flicker input | settle frames |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for v, by_method in result["summary"].items():
        for m, s in by_method.items():
            settle = f"{s['settle_frames']:.1f}" if "settle_frames" in s else "–"
            lines.append(
                f"| {v} | {m} | {s['psnr']:.2f} | {s['ssim']:.4f} | {s['flicker']:.3f} | {s['flicker_clean']:.3f} | "
                f"{s['flicker_input']:.3f} | {settle} |"
            )
    return "\n".join(lines) + "\n"


def load_clip(path, max_frames: int, long_side: int | None) -> tuple[str, list[np.ndarray], float]:
    """(name, frames, fps) of a real clip, decoded through psenet_stream.io, long side bounded."""
    from pathlib import Path

    from psenet_stream.curve import shrink_to_long_side
    from psenet_stream.io.video import VideoFileSource, decode_rgb

    src = VideoFileSource(path)
    try:
        fps = float(src.info.fps or 25)
    finally:
        src.close()
    frames = [shrink_to_long_side(np.ascontiguousarray(f), long_side) for f in decode_rgb(path, max_frames)]
    return Path(path).name, frames, fps
