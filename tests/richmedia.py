"""Synthesized media with everything a camera or an editor puts in a file (for the fidelity
tests): several audio tracks, subtitles, attachments, a cover picture, tags, chapters,
10-bit and HDR video. Written with PyAV and numpy into tmp dirs; never committed.
"""

from __future__ import annotations

import io
import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from tests.media import pattern

TAGS = {"title": "Harbour at dusk", "creation_time": "2024-05-06T07:08:09.000000Z", "location": "+48.8584+002.2945/"}
CHAPTERS = [(0, 500, "Opening"), (500, 1000, "Harbour")]  # ms
SUBTITLES = [(100, 400, "Hello there"), (600, 900, "Second line")]  # ms


def _jpeg(w: int = 32, h: int = 32) -> bytes:
    from PIL import Image

    b = io.BytesIO()
    Image.new("RGB", (w, h), (200, 30, 30)).save(b, "JPEG")
    return b.getvalue()


def _encode_video(oc, vs, frames: int, w: int, h: int, fmt: str = "yuv420p", level: float = 0.35) -> None:
    for i in range(frames):
        vf = av.VideoFrame.from_ndarray(pattern(i, w, h, level), format="rgb24").reformat(format=fmt)
        vf.pts = i
        vf.time_base = Fraction(1, 30)
        for p in vs.encode(vf):
            oc.mux(p)
    for p in vs.encode(None):
        oc.mux(p)


def _encode_tone(oc, st, seconds: float, freq: float) -> None:
    rate = st.codec_context.sample_rate
    n = int(rate * seconds)
    samples = (np.sin(np.arange(n) * 2 * np.pi * freq / rate) * 8000).astype(np.int16)
    chunk = st.codec_context.frame_size or 1024
    for off in range(0, n, chunk):
        af = av.AudioFrame.from_ndarray(samples[None, off : off + chunk], format="s16", layout="mono")
        af.sample_rate, af.pts, af.time_base = rate, off, Fraction(1, rate)
        for p in st.encode(af):
            oc.mux(p)
    for p in st.encode(None):
        oc.mux(p)


def _mux_subs(oc, st, codec: str) -> None:
    for start, end, text in SUBTITLES:
        data = text.encode()
        if codec == "mov_text":
            data = struct.pack(">H", len(data)) + data
        pkt = av.Packet(data)
        pkt.pts = pkt.dts = start
        pkt.duration = end - start
        pkt.time_base = Fraction(1, 1000)
        pkt.stream = st
        oc.mux(pkt)


def make_rich(path: str | Path, *, frames: int = 30, cover_first: bool = False) -> Path:
    """An mkv or mp4: [cover picture track (mkv: first)], H.264, two audio tracks (eng, fra),
    a text subtitle (subrip in mkv, mov_text in mp4), a font attachment (mkv), title /
    creation_time / location tags and two chapters."""
    path = Path(path)
    mkv = path.suffix == ".mkv"
    oc = av.open(str(path), "w")
    for k, v in TAGS.items():
        oc.metadata[k] = v
    oc.set_chapters([{"id": i + 1, "start": s, "end": e, "time_base": Fraction(1, 1000), "metadata": {"title": t}} for i, (s, e, t) in enumerate(CHAPTERS)])
    cover = None
    if cover_first:  # a one-frame picture track before the real video (as some taggers write)
        cover = oc.add_stream("mjpeg", rate=1)
        cover.width, cover.height, cover.pix_fmt = 32, 32, "yuvj420p"
    vs = oc.add_stream("libx264", rate=30, options={"preset": "ultrafast", "bf": "0"})
    vs.width, vs.height, vs.pix_fmt = 160, 120, "yuv420p"
    vs.metadata["language"] = "eng"
    a1 = oc.add_stream("aac", rate=48000, layout="mono")
    a1.metadata["language"] = "eng"
    a2 = oc.add_stream("aac", rate=48000, layout="mono")
    a2.metadata["language"] = "fra"
    sub_codec = "subrip" if mkv else "mov_text"
    s = oc.add_mux_stream(sub_codec)
    s.time_base = Fraction(1, 1000)
    s.metadata["language"] = "deu"
    if mkv:
        oc.add_attachment("font.ttf", "application/x-truetype-font", b"\x00\x01\x00\x00fake-font-bytes")
    oc.start_encoding()
    if cover is not None:
        vf = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 200, np.uint8), format="rgb24").reformat(format="yuvj420p")
        vf.pts = 0
        for p in cover.encode(vf):
            oc.mux(p)
        for p in cover.encode(None):
            oc.mux(p)
    _encode_video(oc, vs, frames, 160, 120)
    _encode_tone(oc, a1, frames / 30, 440)
    _encode_tone(oc, a2, frames / 30, 660)
    _mux_subs(oc, s, sub_codec)
    oc.close()
    return path


def make_mkv_with_cover_attachment(path: str | Path, frames: int = 20) -> Path:
    """An mkv with a JPEG cover attachment (demuxed as an attached_pic video stream)."""
    oc = av.open(str(path), "w")
    oc.add_attachment("cover.jpg", "image/jpeg", _jpeg())
    vs = oc.add_stream("libx264", rate=30, options={"preset": "ultrafast"})
    vs.width, vs.height, vs.pix_fmt = 160, 120, "yuv420p"
    _encode_video(oc, vs, frames, 160, 120)
    oc.close()
    return Path(path)


def make_interleaved(path: str | Path, *, seconds: float = 3.0, fps: int = 30, w: int = 160, h: int = 120, options: dict | None = None,
                     subtitles: bool = False) -> Path:
    """H.264 + AAC (mono, 'eng') muxed in time order, as a camera writes them: each frame's
    audio right after it, so a reader of the stream never needs one track far ahead of the
    other. ``options``: the muxer's (mp4: movflags=faststart or frag_keyframe+empty_moov,
    which a pipe can read); ``subtitles``: the SUBTITLES as a text track (subrip; mov_text
    in mp4), muxed with the frames they belong with."""
    path = Path(path)
    oc = av.open(str(path), "w", options=options or {})
    vs = oc.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "g": str(fps // 2), "bf": "0"})
    vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
    a = oc.add_stream("aac", rate=48000, layout="mono")
    a.metadata["language"] = "eng"
    sub = None
    if subtitles:
        sub = oc.add_mux_stream("mov_text" if path.suffix in (".mp4", ".mov") else "subrip")
        sub.time_base = Fraction(1, 1000)
        sub.metadata["language"] = "deu"
    oc.start_encoding()
    rate, chunk = 48000, 1024
    total = int(rate * seconds)
    tone = (np.sin(np.arange(total) * 2 * np.pi * 440 / rate) * 8000).astype(np.int16)
    done, subs = 0, list(SUBTITLES) if subtitles else []
    for i in range(int(seconds * fps)):
        vf = av.VideoFrame.from_ndarray(pattern(i, w, h), format="rgb24").reformat(format="yuv420p")
        vf.pts, vf.time_base = i, Fraction(1, fps)
        for p in vs.encode(vf):
            oc.mux(p)
        while done < total and done / rate <= (i + 1) / fps:
            af = av.AudioFrame.from_ndarray(tone[None, done : done + chunk], format="s16", layout="mono")
            af.sample_rate, af.pts, af.time_base = rate, done, Fraction(1, rate)
            for p in a.encode(af):
                oc.mux(p)
            done += chunk
        while subs and subs[0][0] / 1000 <= i / fps:
            start, end, text = subs.pop(0)
            data = text.encode()
            if path.suffix in (".mp4", ".mov"):  # mov_text: a 16-bit length, then the text
                data = struct.pack(">H", len(data)) + data
            pkt = av.Packet(data)
            pkt.pts = pkt.dts = start
            pkt.duration, pkt.time_base, pkt.stream = end - start, Fraction(1, 1000), sub
            oc.mux(pkt)
    for st in (vs, a):
        for p in st.encode(None):
            oc.mux(p)
    oc.close()
    return path


def make_mp4_with_cover(path: str | Path, *, frames: int = 20, cover_side: int = 320, faststart: bool = True) -> tuple[Path, bytes]:
    """An MP4 as phones and iTunes write it: the H.264 video (160x120) and a JPEG cover
    picture (a 'covr' atom, demuxed as a one-picture video stream with disposition
    attached_pic, after the video), larger than the video so that "the biggest" or "the
    last" video would be the wrong choice. Returns (path, the JPEG's bytes)."""
    from PIL import Image

    b = io.BytesIO()
    Image.new("RGB", (cover_side, cover_side), (200, 30, 30)).save(b, "JPEG")
    jpeg = b.getvalue()
    oc = av.open(str(path), "w", options={"movflags": "faststart"} if faststart else {})
    vs = oc.add_stream("libx264", rate=30, options={"preset": "ultrafast", "bf": "0"})
    vs.width, vs.height, vs.pix_fmt = 160, 120, "yuv420p"
    cover = oc.add_stream("mjpeg")
    cover.width, cover.height, cover.pix_fmt = cover_side, cover_side, "yuvj420p"
    cover.disposition = av.stream.Disposition.attached_pic  # movenc writes this stream's one packet as the cover
    oc.start_encoding()
    pkt = av.Packet(jpeg)
    pkt.pts = pkt.dts = 0
    pkt.time_base, pkt.stream = Fraction(1, 90000), cover
    oc.mux(pkt)
    _encode_video(oc, vs, frames, 160, 120)
    oc.close()
    return Path(path), jpeg


def concat_ts(path: str | Path, parts: list[Path]) -> Path:
    """Two MPEG-TS recordings byte-concatenated: the timestamps reset in the middle."""
    Path(path).write_bytes(b"".join(Path(p).read_bytes() for p in parts))
    return Path(path)


def streams_of(path: str | Path) -> list[dict]:
    """type, codec, language, disposition, title of every stream."""
    with av.open(str(path)) as c:
        out = []
        for st in c.streams:
            cc = st.codec_context
            out.append({
                "type": st.type,
                "codec": cc.name if cc is not None else None,
                "language": (st.metadata or {}).get("language"),
                "filename": (st.metadata or {}).get("filename"),
                "attached_pic": bool(int(st.disposition or 0) & int(av.stream.Disposition.attached_pic)),
                "index": st.index,
            })
        return out


def subtitle_texts(path: str | Path) -> list[tuple[float, str]]:
    """(start seconds, text) of the first subtitle stream, from packets (mov_text unwrapped)."""
    with av.open(str(path)) as c:
        st = c.streams.subtitles[0]
        out = []
        for p in c.demux(st):
            if p.size and p.pts is not None:
                data = bytes(p)
                if st.codec_context.name == "mov_text":
                    data = data[2 : 2 + struct.unpack(">H", data[:2])[0]]
                if data:  # mp4 fills the gaps between subtitles with empty samples
                    out.append((round(float(p.pts * p.time_base), 3), data.decode()))
        return out


def durations(path: str | Path) -> dict:
    """Video frame count and first/last pts (s); per audio stream the packet count and the
    time its last packet ends (s)."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        pts = [float(f.pts * f.time_base) for f in c.decode(v)]
    audio = []
    with av.open(str(path)) as c:
        n_audio = len(c.streams.audio)
    for i in range(n_audio):
        with av.open(str(path)) as c:
            pk = [p for p in c.demux(c.streams.audio[i]) if p.dts is not None and p.size]
            audio.append({"packets": len(pk), "end": float((pk[-1].pts + (pk[-1].duration or 0)) * pk[-1].time_base) if pk else 0.0})
    return {"frames": len(pts), "first": pts[0], "last": pts[-1], "audio": audio}


def ramp10(w: int = 256, h: int = 64, lo: int = 64, hi: int = 448) -> np.ndarray:
    """(h, w) uint16 10-bit luma codes: a dark horizontal grey ramp with more levels than
    8 bits can hold between lo and hi."""
    row = np.round(np.linspace(lo, hi, w)).astype(np.uint16)
    return np.repeat(row[None, :], h, axis=0)


def make_10bit(path: str | Path, *, frames: int = 6, w: int = 256, h: int = 64, codec: str = "libx264", color: dict | None = None,
               planes=None, x265_params: str | None = None) -> Path:
    """A lossless 10-bit yuv420p10le clip of a grey ramp (``planes``: a function i -> (y, u, v)
    10-bit planes to write instead)."""
    oc = av.open(str(path), "w")
    opts = {"preset": "ultrafast"}
    if codec == "libx264":
        opts["qp"] = "0"
    else:
        opts["x265-params"] = "lossless=1:log-level=error" + (":" + x265_params if x265_params else "")
    vs = oc.add_stream(codec, rate=30, options=opts)
    vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p10le"
    for k, v in (color or {}).items():
        setattr(vs.codec_context, k, v)
    for i in range(frames):
        if planes is None:
            y = ramp10(w, h)
            u = np.full((h // 2, w // 2), 512, np.uint16)
            v = u.copy()
        else:
            y, u, v = planes(i)
        vf = av.VideoFrame(w, h, "yuv420p10le")
        for plane, data in zip(vf.planes, (y, u, v)):
            stride = plane.line_size // 2
            buf = np.zeros((data.shape[0], stride), np.uint16)
            buf[:, : data.shape[1]] = data
            plane.update(buf.tobytes())
        for k, v in (color or {}).items():
            setattr(vf, k, v)
        vf.pts = i
        vf.time_base = Fraction(1, 30)
        for p in vs.encode(vf):
            oc.mux(p)
    for p in vs.encode(None):
        oc.mux(p)
    oc.close()
    return Path(path)


def luma10(path: str | Path, index: int = 0) -> tuple[str, np.ndarray]:
    """(pix_fmt, the 10-bit luma plane of frame ``index``) of a video file."""
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(c.streams.video[0])):
            if i == index:
                fmt = f.format.name
                a = f.reformat(format="yuv420p10le").to_ndarray() if fmt != "yuv420p10le" else f.to_ndarray()
                return fmt, a[: f.height, : f.width].astype(np.uint16)
    raise ValueError("no such frame")


MASTERING = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50)"  # P3 D65, 1000 / 0.005 cd/m²
HDR_TAGS = {"PQ": {"color_primaries": 9, "color_trc": 16, "colorspace": 9, "color_range": 1},
            "HLG": {"color_primaries": 9, "color_trc": 18, "colorspace": 9, "color_range": 1}}
_BT709_TO_2020 = np.array([[0.6274, 0.3293, 0.0433], [0.0691, 0.9195, 0.0114], [0.0164, 0.0880, 0.8956]], np.float32)


def hdr_light(i: int, w: int, h: int) -> np.ndarray:
    """(h, w, 3) float32 display light in cd/m², BT.2020 primaries: an under-exposed SDR
    pattern (tests.media.pattern, BT.709, gamma 2.4, its white at 203 cd/m²) with a bright
    1000 cd/m² patch in the top-left corner, h/8 x w/8 (a highlight only HDR can hold)."""
    sdr = pattern(i, w, h, level=0.35).astype(np.float32) / 255.0
    light = (sdr ** 2.4 * 203.0) @ _BT709_TO_2020.T
    light[: h // 8, : w // 8] = 1000.0
    return light


def make_hdr(path: str | Path, kind: str, *, frames: int = 6, w: int = 128, h: int = 96) -> Path:
    """An HDR10 (PQ) or HLG clip synthesized from the SDR pattern with numpy (BT.2100 formulas,
    written out here, not the package's), 10-bit HEVC with the colour tags, the mastering
    display and content light level metadata."""
    m1, m2, c1, c2, c3 = 2610 / 16384, 2523 / 32, 3424 / 4096, 2413 / 128, 2392 / 128

    def encode(light):
        if kind == "PQ":
            y = (light / 10000.0) ** m1
            return ((c1 + c2 * y) / (1 + c3 * y)) ** m2
        # HLG for a 1000 cd/m² display: inverse OOTF (system gamma 1.2), then the OETF
        a, b = 0.17883277, 0.28466892
        c = 0.5 - a * np.log(4 * a)
        yd = np.maximum(light @ np.array([0.2627, 0.6780, 0.0593], np.float32), 1e-9)[..., None]
        ys = (yd / 1000.0) ** (1 / 1.2)
        e = np.clip(light / (1000.0 * ys ** 0.2), 0, 1)
        return np.where(e <= 1 / 12, np.sqrt(3 * e), a * np.log(np.maximum(12 * e - b, 1e-9)) + c)

    tags = HDR_TAGS[kind]
    params = f"log-level=error:master-display={MASTERING}:max-cll=1000,400:colorprim=bt2020:colormatrix=bt2020nc"
    params += ":hdr10=1:transfer=smpte2084" if kind == "PQ" else ":transfer=arib-std-b67"
    oc = av.open(str(path), "w")
    vs = oc.add_stream("libx265", rate=30, options={"preset": "ultrafast", "x265-params": params, "crf": "12"})
    vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p10le"
    for k, v in tags.items():
        setattr(vs.codec_context, k, v)
    for i in range(frames):
        sig = (np.clip(encode(hdr_light(i, w, h)), 0, 1) * 65535 + 0.5).astype(np.uint16)
        vf = av.VideoFrame.from_ndarray(sig, format="rgb48le").reformat(format="yuv420p10le", dst_colorspace=9, dst_color_range=1)
        for k, v in tags.items():
            setattr(vf, k, v)
        vf.pts, vf.time_base = i, Fraction(1, 30)
        for p in vs.encode(vf):
            oc.mux(p)
    for p in vs.encode(None):
        oc.mux(p)
    oc.close()
    return Path(path)


def hdr_facts(path: str | Path) -> dict:
    """pix_fmt, colour tags, HDR side data and the first frame as 16-bit signal RGB."""
    from psenet_stream.io.hdr import read_side_data

    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        f = next(iter(c.decode(vs)))
        rgb = f.to_ndarray(format="rgb48le", src_colorspace=9 if int(f.colorspace) == 9 else None, src_color_range=None)
        return {
            "pix_fmt": f.format.name,
            "color": {k: int(getattr(f, k)) for k in ("color_range", "colorspace", "color_primaries", "color_trc")},
            "side": read_side_data(f),
            "rgb": rgb,
            "codec": vs.codec_context.name,
        }
