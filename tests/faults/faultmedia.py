"""Fault media for the fault suite: each function writes one damaged or unusual input.

Everything is synthesized with PyAV into a temporary folder (never committed). The clips
are small so the whole CI part of the suite stays fast on a 2-core machine.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from tests.media import make_video, pattern

HDR10 = {"color_range": 1, "colorspace": 9, "color_primaries": 9, "color_trc": 16}  # bt2020nc / bt2020 / smpte2084


def _frame(i: int, width: int, height: int) -> np.ndarray:
    """The test pattern; tiled from a small one for very large frames (8K in 0.1 s, not 15 s)."""
    if width * height <= 1 << 21:
        return pattern(i, width, height, level=0.6)
    tile = pattern(i, 320, 180, level=0.6)
    reps = (-(-height // 180), -(-width // 320), 1)
    return np.ascontiguousarray(np.tile(tile, reps)[:height, :width])


def write_clip(
    path: Path,
    *,
    width: int = 160,
    height: int = 120,
    frames: int = 12,
    fps: int = 24,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    options: dict | None = None,
    color: dict | None = None,
    gray: bool = False,
) -> Path:
    """A clip in any codec / pixel format (the frames are the moving test pattern)."""
    path = Path(path)
    with av.open(str(path), "w") as oc:
        opts = dict(options or {})
        if codec in ("libx264", "libx265"):
            opts.setdefault("preset", "ultrafast")
        if codec == "libx265":
            opts.setdefault("x265-params", "log-level=error")
        vs = oc.add_stream(codec, rate=fps, options=opts)
        vs.width, vs.height, vs.pix_fmt = width, height, pix_fmt
        tb = Fraction(1, fps)
        vs.time_base = tb
        vs.codec_context.time_base = tb
        for k, v in (color or {}).items():
            setattr(vs.codec_context, k, v)
        for i in range(frames):
            img = _frame(i, width, height)
            if pix_fmt in ("rgba", "bgra", "argb"):
                alpha = np.full((height, width, 1), 200, np.uint8)
                vf = av.VideoFrame.from_ndarray(np.concatenate([img, alpha], -1), format="rgba")
                vf = vf.reformat(format=pix_fmt)
            elif gray:
                vf = av.VideoFrame.from_ndarray(img.mean(-1).astype(np.uint8), format="gray")
                vf = vf.reformat(format=pix_fmt)
            else:
                vf = av.VideoFrame.from_ndarray(img, format="rgb24")
                kw = {"dst_colorspace": color["colorspace"], "dst_color_range": color["color_range"]} if color else {}
                vf = vf.reformat(format=pix_fmt, **kw)
            vf.pts, vf.time_base = i, tb
            for p in vs.encode(vf):
                oc.mux(p)
        for p in vs.encode(None):
            oc.mux(p)
    return path


def audio_only(path: Path, seconds: float = 1.0) -> Path:
    with av.open(str(path), "w") as oc:
        a = oc.add_stream("aac", rate=48000, layout="mono")
        n = int(48000 * seconds)
        samples = (np.sin(np.arange(n) * 2 * np.pi * 440 / 48000) * 8000).astype(np.int16)
        chunk = a.codec_context.frame_size or 1024
        for off in range(0, n, chunk):
            af = av.AudioFrame.from_ndarray(samples[None, off : off + chunk], format="s16", layout="mono")
            af.sample_rate, af.pts, af.time_base = 48000, off, Fraction(1, 48000)
            for p in a.encode(af):
                oc.mux(p)
        for p in a.encode(None):
            oc.mux(p)
    return path


def truncated(src: Path, dst: Path, fraction: float = 0.5) -> Path:
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[: int(len(data) * fraction)])
    return dst


def corrupt_middle(src: Path, dst: Path, *, span: int = 2048, seed: int = 1) -> Path:
    """Overwrite ``span`` bytes in the middle of the file with random bytes (headers intact)."""
    data = bytearray(Path(src).read_bytes())
    mid = len(data) // 2
    rng = np.random.default_rng(seed)
    data[mid : mid + span] = rng.integers(0, 256, min(span, len(data) - mid), dtype=np.uint8).tobytes()
    Path(dst).write_bytes(bytes(data))
    return dst


def fault_inputs(d: Path) -> dict[str, Path]:
    """Every fault input by name (the ones that are files)."""
    d = Path(d)
    out: dict[str, Path] = {}
    base = d / "base.mp4"
    make_video(base, width=160, height=120, frames=48, audio="aac")
    base_mkv = write_clip(d / "base.mkv", frames=48)
    out["missing"] = d / "does-not-exist.mp4"
    (d / "a-directory").mkdir(exist_ok=True)
    out["directory"] = d / "a-directory"
    out["zero-byte"] = d / "zero.mp4"
    out["zero-byte"].write_bytes(b"")
    out["truncated-half"] = truncated(base, d / "half.mp4")
    out["corrupt-mp4"] = corrupt_middle(base, d / "corrupt.mp4")
    out["corrupt-mkv"] = corrupt_middle(base_mkv, d / "corrupt.mkv")
    out["audio-only"] = audio_only(d / "audio.m4a")
    out["odd-321x241"] = write_clip(d / "odd.mkv", width=321, height=241, pix_fmt="yuv444p")
    out["h-not-mult-4-160x118"] = write_clip(d / "h118.mp4", width=160, height=118)
    out["tiny-2x2"] = write_clip(d / "tiny.mkv", width=2, height=2, frames=6, codec="ffv1", pix_fmt="yuv444p")
    out["10bit-hevc"] = write_clip(d / "10bit.mp4", codec="libx265", pix_fmt="yuv420p10le")
    out["10bit-h264"] = write_clip(d / "10bit-h264.mkv", codec="libx264", pix_fmt="yuv420p10le")
    out["gray"] = write_clip(d / "gray.mkv", codec="ffv1", pix_fmt="gray", gray=True)
    out["yuvj420p-mjpeg"] = write_clip(d / "mjpeg.avi", codec="mjpeg", pix_fmt="yuvj420p")
    out["rgba-png"] = write_clip(d / "rgba.mov", codec="png", pix_fmt="rgba")
    out["rgba-qtrle"] = write_clip(d / "qtrle.mov", codec="qtrle", pix_fmt="argb")
    vfr = d / "vfr.mp4"
    make_video(vfr, frames=24, vfr=True)
    out["vfr"] = vfr
    rot = d / "rot90.mp4"
    make_video(rot, frames=12, rotation=90, audio="aac")
    out["rotated-90"] = rot
    out["hdr10"] = write_clip(d / "hdr10.mp4", codec="libx265", pix_fmt="yuv420p10le", color=HDR10)
    return out


def big_input(d: Path) -> Path:
    """7680x4320, 2 frames (only the slow test writes it)."""
    return write_clip(Path(d) / "8k.mp4", width=7680, height=4320, frames=2)
