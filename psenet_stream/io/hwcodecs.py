"""What PyAV can encode and decode here, hardware codecs included: for ``doctor``.

``hw_codecs()`` reports whether PyAV's NVIDIA decoders/encoders actually work on this
machine (a codec listed in the wheel may still fail to open: an H100 has NVDEC but no
NVENC). Probing opens a CUDA context, so it runs only where the NVIDIA driver loads, and
its result is cached.
"""

from __future__ import annotations

import fractions
import functools

import numpy as np

NV_DECODERS = ("h264_cuvid", "hevc_cuvid", "av1_cuvid")
NV_ENCODERS = ("h264_nvenc", "hevc_nvenc", "av1_nvenc")


def _probe_encoder(av, name: str) -> str:
    """'' when ``name`` opens and encodes a tiny frame, else the reason."""
    try:
        cc = av.CodecContext.create(name, "w")
        cc.width, cc.height, cc.pix_fmt = 256, 144, "yuv420p"
        cc.time_base = fractions.Fraction(1, 30)
        cc.open()
        frame = av.VideoFrame.from_ndarray(np.zeros((144 * 3 // 2, 256), np.uint8), format="yuv420p")
        frame.pts = 0
        cc.encode(frame)
        cc.encode(None)
        return ""
    except Exception as e:  # noqa: BLE001 - a probe: any failure to open or encode means "does not work here", with the reason
        return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'cannot open'}"


_PROBE_ENCODERS = {"h264": ("libx264", {}), "hevc": ("libx265", {"x265-params": "log-level=error"}), "av1": ("libsvtav1", {})}


def _probe_packets(av, codec: str) -> list:
    """A few packets of a tiny 256x144 clip in ``codec`` ('h264', 'hevc', 'av1'), encoded in software."""
    enc_name, opts = _PROBE_ENCODERS[codec]
    enc = av.CodecContext.create(enc_name, "w")
    enc.width, enc.height, enc.pix_fmt = 256, 144, "yuv420p"
    enc.time_base = fractions.Fraction(1, 30)
    enc.options = dict(opts)
    enc.open()
    packets = []
    for i in range(3):
        f = av.VideoFrame.from_ndarray(np.full((144 * 3 // 2, 256), 16 + 40 * i, np.uint8), format="yuv420p")
        f.pts = i
        packets += enc.encode(f)
    packets += enc.encode(None)
    return packets


def _probe_decoder(av, name: str) -> str:
    """'' when the decoder decodes a tiny clip (cuvid opens a CUDA context), else the reason."""
    codec = name.split("_")[0]
    try:
        packets = _probe_packets(av, codec) if codec in _PROBE_ENCODERS else []
        dec = av.CodecContext.create(name, "r")
        dec.open()
        frames = 0
        for pkt in [*packets, None]:
            frames += len(dec.decode(pkt))
        if packets and frames == 0:
            return "opened, but decoded no frames"
        return ""
    except Exception as e:  # noqa: BLE001 - a probe: any failure to open or decode means "does not work here", with the reason
        return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'cannot open'}"


def _nvidia_driver_reason() -> str:
    """'' when the NVIDIA driver library loads (NVDEC/NVENC need it, not a CUDA torch build)."""
    import ctypes

    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return "the NVIDIA driver (libcuda.so.1) is not installed"
    return ""


@functools.lru_cache(maxsize=1)
def hw_codecs() -> dict[str, dict[str, str]]:
    """{'decoders': {name: ''|reason}, 'encoders': {...}} for NVIDIA codecs in PyAV.

    '' means the codec really opened here (a test frame went through the encoder);
    otherwise the value says why not. Cached: probing opens a CUDA context.
    Without a CUDA device nothing is opened, so this is cheap and silent on CPU boxes.
    """
    out: dict[str, dict[str, str]] = {"decoders": {}, "encoders": {}}
    try:
        import av
    except ImportError as e:  # pragma: no cover - av is a hard dependency
        reason = f"PyAV is not importable: {e}"
        return {"decoders": dict.fromkeys(NV_DECODERS, reason), "encoders": dict.fromkeys(NV_ENCODERS, reason)}
    have = set(av.codecs_available)
    cuda = _nvidia_driver_reason()
    import av.logging as avlog

    prev = avlog.get_level()
    avlog.set_level(None)
    try:
        for kind, names, probe in (("decoders", NV_DECODERS, _probe_decoder), ("encoders", NV_ENCODERS, _probe_encoder)):
            for n in names:
                if n not in have:
                    out[kind][n] = "not in this FFmpeg build"
                elif cuda:
                    out[kind][n] = f"needs an NVIDIA GPU: {cuda}"
                else:
                    out[kind][n] = probe(av, n)
    finally:
        avlog.set_level(prev)
    return out


def pyav_version() -> str:
    """'<PyAV version>, FFmpeg <version>', or why PyAV cannot be imported."""
    try:
        import av
    except ImportError as e:
        return f"not importable: {e}"
    return f"{av.__version__}, FFmpeg {getattr(av, 'ffmpeg_version_info', '?')}"


def software_codecs() -> dict[str, bool]:
    """'libx264 (encode)', 'h264 (decode)', ... -> whether this FFmpeg build has it."""
    import av

    have = set(av.codecs_available)
    out = {}
    for name, mode in (("libx264", "w"), ("libx265", "w"), ("libsvtav1", "w"), ("h264", "r"), ("hevc", "r")):
        ok = name in have
        if ok:
            try:
                av.Codec(name, mode)
            except (av.FFmpegError, ValueError):
                ok = False
        out[f"{name} ({'encode' if mode == 'w' else 'decode'})"] = ok
    return out


def hw_devices() -> list[str]:
    """FFmpeg's hardware device types in this build (cuda, vaapi, ...); [] when it cannot say."""
    try:
        from av.codec.hwaccel import hwdevices_available
    except ImportError:  # an older PyAV without hwaccel
        return []
    return list(hwdevices_available())
