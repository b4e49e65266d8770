"""A one-command demo on a real clip: synthesize exposure errors, fix them, show both.

    python examples/demo.py --out out/demo       # make demo (fetches the data first)

1. Takes a real clip from DATA/clips/ (``psenet-stream data`` fetches them).
2. Synthesizes exposure errors in linear light (psenet_stream.ops.expose): the first 40 %
   of the frames -2 EV (under-exposed), the middle 20 % untouched, the last 40 % +1.5 EV
   (over-exposed, clipping as a sensor would) -> OUT/input.mp4.
3. Enhances that through the real pipeline (pipeline.enhance_file, shipped weights)
   -> OUT/enhanced.mp4, and reports the fps.
4. Writes OUT/before_after.mp4 (input | enhanced, labelled) and OUT/contact_sheet.png
   (a grid: input row over enhanced row, one column per sampled frame).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

PREFERRED = ("Megamind.avi", "vtest.avi", "cup.mp4", "box.mp4", "tree.avi")
SEGMENTS = ((0.0, 0.4, -2.0, "-2 EV"), (0.4, 0.6, 0.0, "0 EV"), (0.6, 1.0, 1.5, "+1.5 EV"))


def exposure_lut(ev: float) -> np.ndarray:
    """256-entry uint8 table: an sRGB value under an exposure change of ev stops (linear light)."""
    import torch

    from psenet_stream.ops import expose

    x = torch.arange(256, dtype=torch.float64) / 255.0
    return (expose(x, ev) * 255.0).round().clamp(0, 255).to(torch.uint8).numpy()


def segment_of(i: int, n: int) -> tuple[float, str]:
    t = i / max(n, 1)
    for lo, hi, ev, label in SEGMENTS:
        if lo <= t < hi:
            return ev, label
    return SEGMENTS[-1][2], SEGMENTS[-1][3]


def pick_clip(data: Path, name: str | None) -> Path:
    clips = data / "clips"
    if name:
        p = clips / name if not Path(name).exists() else Path(name)
        if not p.is_file():
            raise SystemExit(f"error: clip not found: {p}\nhint: run `psenet-stream data` or pass --clip with a file in {clips}")
        return p
    for n in PREFERRED:
        if (clips / n).is_file():
            return clips / n
    found = sorted(p for p in clips.glob("*") if p.is_file()) if clips.is_dir() else []
    if not found:
        raise SystemExit(f"error: no clips in {clips}\nhint: run `psenet-stream data --dest {data}` first")
    return found[0]


def label(img: np.ndarray, text: str, sub: str = "") -> np.ndarray:
    """Draw a caption box at the top-left of an RGB image (in place) and return it."""
    scale = max(0.45, img.shape[1] / 900)
    th = max(1, round(scale * 2))
    (tw, tht), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, th)
    cv2.rectangle(img, (0, 0), (tw + 16, tht + 16 + (tht + 10 if sub else 0)), (0, 0, 0), -1)
    cv2.putText(img, text, (8, tht + 8), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), th, cv2.LINE_AA)
    if sub:
        cv2.putText(img, sub, (8, 2 * tht + 18), cv2.FONT_HERSHEY_SIMPLEX, scale * 0.8, (255, 220, 120), max(1, th - 1), cv2.LINE_AA)
    return img


def synthesize(clip: Path, out: Path, max_frames: int) -> int:
    """Decode clip, apply the exposure segments, encode out (timestamps and audio kept)."""
    from psenet_stream.io.video import VideoFileSink, VideoFileSource

    luts = {ev: exposure_lut(ev) for _, _, ev, _ in SEGMENTS}
    with VideoFileSource(clip) as src:
        n = min(max_frames, src.info.frames or max_frames)
        sink = VideoFileSink(out, src.info, preset="ultrafast", crf=16, audio_from=clip if src.has_audio else None)
        written = 0
        for fr in src:
            if written >= n:
                break
            ev, _ = segment_of(written, n)
            sink.write(fr, luts[ev][fr.rgb])
            written += 1
        sink.finish(audio=False)
    return written


def side_by_side(before: Path, after: Path, out: Path, n: int) -> None:
    from psenet_stream.io.frames import StreamInfo
    from psenet_stream.io.video import VideoFileSink, VideoFileSource

    with VideoFileSource(before) as a, VideoFileSource(after) as b:
        h, w = a.info.height, a.info.width
        info = StreamInfo(width=2 * w, height=h, fps=a.info.fps, time_base=a.info.time_base)
        sink = VideoFileSink(out, info, preset="ultrafast", crf=20)
        try:
            for i, (fa, fb) in enumerate(zip(a, b)):
                _, seg = segment_of(i, n)
                left = label(fa.rgb.copy(), "input", f"synthetic {seg}")
                right = label(fb.rgb.copy(), "PSENet enhanced")
                fa.rgb = None
                sink.write(fa, np.ascontiguousarray(np.hstack([left, right])))
        finally:
            sink.close()


def contact_sheet(before: Path, after: Path, out: Path, n: int, cols: int = 6, tile_w: int = 320) -> None:
    from psenet_stream.io.video import VideoFileSource

    picks = sorted({min(n - 1, round((k + 0.5) * n / cols)) for k in range(cols)})
    rows: dict[str, list[np.ndarray]] = {"input": [], "enhanced": []}
    for key, path in (("input", before), ("enhanced", after)):
        with VideoFileSource(path) as src:
            for i, fr in enumerate(src):
                if i in picks:
                    h, w = fr.rgb.shape[:2]
                    tile = cv2.resize(fr.rgb, (tile_w, round(h * tile_w / w)), interpolation=cv2.INTER_AREA)
                    _, seg = segment_of(i, n)
                    rows[key].append(label(tile, f"{key} #{i}", seg if key == "input" else ""))
                if i >= picks[-1]:
                    break
    gap = 4
    grid = [np.hstack([np.pad(t, ((gap, gap), (gap, gap), (0, 0)), constant_values=255) for t in rows[k]]) for k in ("input", "enhanced")]
    sheet = np.vstack(grid)
    if not cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        raise SystemExit(f"error: cannot write {out}")


def main(argv: list[str] | None = None) -> int:
    from psenet_stream import paths

    ap = argparse.ArgumentParser(prog="python examples/demo.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(paths.data_dir()), help="data folder with clips/ (psenet-stream data)")
    ap.add_argument("--out", default="out/demo", help="output folder")
    ap.add_argument("--clip", help=f"clip name in DATA/clips/ (default: first of {', '.join(PREFERRED)})")
    ap.add_argument("--frames", type=int, default=240, help="at most this many frames (default 240)")
    ap.add_argument("--backend", default="auto", help="inference backend (default auto)")
    ap.add_argument("--weights", help="weight file (default: the shipped weights)")
    args = ap.parse_args(argv)

    from psenet_stream.commands._common import default_threads
    from psenet_stream.defaults import VIDEO_GAMMA_EVERY, VIDEO_SMOOTHING, VIDEO_STABILIZE
    from psenet_stream.enhancer import Enhancer
    from psenet_stream.errors import PsenetError
    from psenet_stream.pipeline import enhance_file

    data = Path(args.data).expanduser()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    clip = pick_clip(data, args.clip)
    t_all = time.perf_counter()
    try:
        inp = out / "input.mp4"
        enhanced = out / "enhanced.mp4"
        for p in (inp, enhanced, out / "before_after.mp4", out / "contact_sheet.png"):
            p.unlink(missing_ok=True)
        t = time.perf_counter()
        n = synthesize(clip, inp, args.frames)
        print(f"input:        {inp}  ({n} frames of {clip.name}, exposure -2 EV / 0 / +1.5 EV, {time.perf_counter() - t:.1f} s)")
        enh = Enhancer.from_pretrained(args.weights, backend=args.backend, smoothing=VIDEO_SMOOTHING, stabilize=VIDEO_STABILIZE, gamma_every=VIDEO_GAMMA_EVERY, threads=default_threads())
        stats = enhance_file(inp, enhanced, enh, preset="veryfast")
        print(f"enhanced.mp4: {enhanced}  ({stats.summary()})")
        t = time.perf_counter()
        side_by_side(inp, enhanced, out / "before_after.mp4", n)
        print(f"before_after: {out / 'before_after.mp4'}  ({time.perf_counter() - t:.1f} s)")
        contact_sheet(inp, enhanced, out / "contact_sheet.png", n)
        print(f"contact sheet: {out / 'contact_sheet.png'}")
    except PsenetError as e:
        print(f"error: {e.problem}" + (f"\nhint: {e.fix}" if e.fix else ""), file=sys.stderr)
        return e.exit_code
    print(f"demo done in {time.perf_counter() - t_all:.1f} s; enhancement ran at {stats.fps:.1f} fps ({enh.describe()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
