"""Synthesized test media (written into tmp dirs by the tests; never committed).

    make_video(tmp_path / "a.mp4", frames=30, audio="aac", rotation=90, color="bt709")

Content: a moving colour gradient with a dark and a bright band, so the enhancer has
something to correct; audio: a sine tone.
"""

from __future__ import annotations

import hashlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

BT709 = {"color_range": 1, "colorspace": 1, "color_primaries": 1, "color_trc": 1}


def pattern(i: int, w: int, h: int, level: float = 0.35) -> np.ndarray:
    """A moving gradient frame (H, W, 3) uint8, exposure scaled by level."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = (x / max(w - 1, 1) + i * 0.02) % 1.0
    g = y / max(h - 1, 1)
    b = 0.5 + 0.5 * np.sin((x + y) / 9.0 + i * 0.3)
    img = np.stack([r, g, b], axis=-1) * level
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def make_video(
    path: str | Path,
    *,
    width: int = 160,
    height: int = 120,
    frames: int = 30,
    fps: int = 30,
    codec: str = "libx264",
    audio: str | None = None,
    rotation: int = 0,
    color: dict | None = None,
    vfr: bool = False,
    bframes: bool = False,
) -> dict:
    """Write a clip; returns what was written (pts list, time_base, audio seconds)."""
    path = Path(path)
    oc = av.open(str(path), "w")
    opts = {"preset": "ultrafast", "g": "10"}
    if not bframes and codec == "libx264":
        opts["bf"] = "0"
    vs = oc.add_stream(codec, rate=fps, options=opts)
    vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
    tb = Fraction(1, 1000) if vfr else Fraction(1, fps * 512)
    vs.time_base = tb
    vs.codec_context.time_base = tb
    if color:
        for k, v in color.items():
            setattr(vs.codec_context, k, v)
    if rotation:
        vs.set_display_rotation(rotation)
    a_s = None
    if audio:
        a_s = oc.add_stream(audio, rate=48000 if audio in ("aac", "libopus") else 8000, layout="mono")
    pts_list = []
    t = 0
    for i in range(frames):
        vf = av.VideoFrame.from_ndarray(pattern(i, width, height), format="rgb24")
        kw = {"dst_colorspace": color["colorspace"], "dst_color_range": color["color_range"]} if color else {}
        vf = vf.reformat(format="yuv420p", **kw)
        if vfr:
            t += 20 if i % 3 else 55  # irregular gaps, in ms
            pts = t
        else:
            pts = i * (tb.denominator // fps)
        vf.pts, vf.time_base = pts, tb
        pts_list.append(pts)
        for p in vs.encode(vf):
            oc.mux(p)
    for p in vs.encode(None):
        oc.mux(p)
    if a_s is not None:
        rate = a_s.codec_context.sample_rate
        dur = float(pts_list[-1] * tb) + 1.0 / fps
        n = int(rate * dur)
        samples = (np.sin(np.arange(n) * 2 * np.pi * 440 / rate) * 8000).astype(np.int16)
        fmt = "s16"
        chunk = a_s.codec_context.frame_size or 1024
        for off in range(0, n, chunk):
            part = samples[off : off + chunk]
            af = av.AudioFrame.from_ndarray(part[None, :], format=fmt, layout="mono")
            af.sample_rate = rate
            af.pts = off
            af.time_base = Fraction(1, rate)
            for p in a_s.encode(af):
                oc.mux(p)
        for p in a_s.encode(None):
            oc.mux(p)
    oc.close()
    return {"pts": pts_list, "time_base": tb}


def read_video(path: str | Path) -> dict:
    """Decoded facts: frames, pts (as Fractions of a second), size, rotation, colour, audio."""
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        out = {"pts_s": [], "frames": 0, "rotation": None, "color": None}
        for fr in c.decode(vs):
            out["pts_s"].append(Fraction(fr.pts) * fr.time_base)
            out["frames"] += 1
            if out["rotation"] is None:
                out["rotation"] = fr.rotation
                out["color"] = {k: int(getattr(fr, k)) for k in ("color_range", "colorspace", "color_primaries", "color_trc")}
                out["size"] = (fr.width, fr.height)
                out["first_rgb"] = fr.to_ndarray(format="rgb24")
        out["codec"] = vs.codec_context.name
        cc = vs.codec_context
        out["stream_color"] = {k: int(getattr(cc, k)) for k in ("color_range", "colorspace", "color_primaries", "color_trc")}
    out["audio_packets"] = audio_packets(path)
    return out


def audio_packets(path: str | Path) -> list[bytes]:
    """Payload bytes of every audio packet, in order."""
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return []
        return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.dts is not None and p.size]


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
