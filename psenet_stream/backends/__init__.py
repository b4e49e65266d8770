"""Backends and how one is chosen. Heavy or optional imports happen inside ``create``.

``auto`` picks the best backend installed here, in the order tensorrt > cuda > onnx > cpu,
and logs which one it took and why the better ones were skipped. ``tensorrt`` falls back
to ``cuda`` (with a warning) when torch-tensorrt is missing but CUDA works; every other
backend that cannot run raises a BackendError naming the reason and the fix.

``hw_codecs()`` reports whether PyAV's NVIDIA decoders/encoders actually work on this
machine (a codec listed in the wheel may still fail to open: an H100 has NVDEC but no
NVENC), for ``doctor`` and for the pipeline's choice of codecs.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import logging

from psenet_stream.backends.base import Backend
from psenet_stream.errors import BackendError

log = logging.getLogger("psenet_stream")

NAMES = ("auto", "cpu", "onnx", "cuda", "tensorrt")
AUTO_ORDER = ("tensorrt", "cuda", "onnx", "cpu")


def _cuda_reason() -> str:
    """'' when torch sees a CUDA device, else why not."""
    import torch

    if torch.version.cuda is None:
        return f"torch {torch.__version__} is a CPU-only build (install a CUDA build of torch)"
    try:
        if torch.cuda.is_available() and torch.cuda.device_count() > 0:
            return ""
    except Exception as e:  # a broken driver raises here on some versions
        return f"CUDA is unusable: {e}"
    return "no CUDA device visible (driver missing, or CUDA_VISIBLE_DEVICES hides it)"


def _tensorrt_reason() -> str:
    if not importlib.util.find_spec("torch_tensorrt"):
        return "torch-tensorrt is not installed (pip install 'psenet-stream[tensorrt]'; TensorRT itself comes from NVIDIA's package index)"
    if not importlib.util.find_spec("tensorrt"):
        return "torch-tensorrt is installed but TensorRT (the 'tensorrt' package) is not"
    return ""


def available() -> dict[str, str]:
    """Each backend name -> '' when usable here, or the reason it is not."""
    out = {"cpu": ""}
    out["onnx"] = "" if importlib.util.find_spec("onnxruntime") else "onnxruntime is not installed (pip install 'psenet-stream[onnx]')"
    cuda = _cuda_reason()
    out["cuda"] = cuda
    trt = _tensorrt_reason()
    out["tensorrt"] = trt if trt else (f"no CUDA: {cuda}" if cuda else "")
    if trt and cuda:
        out["tensorrt"] = f"{trt}; and no CUDA: {cuda}"
    return out


def resolve(name: str) -> str:
    """Turn 'auto' into the best installed backend; check that an explicit one can run."""
    name = (name or "auto").lower()
    if name not in NAMES:
        raise BackendError(f"unknown backend {name!r}", f"choose one of {', '.join(NAMES)}")
    avail = available()
    if name == "auto":
        skipped = []
        for cand in AUTO_ORDER:
            if avail[cand] == "":
                log.info("backend auto -> %s%s", cand, f" (skipped {'; '.join(skipped)})" if skipped else "")
                return cand
            skipped.append(f"{cand}: {avail[cand].split(' (')[0].split(';')[0]}")  # short reason; doctor has the rest
        return "cpu"  # pragma: no cover - cpu is always available
    if avail[name]:
        if name == "tensorrt" and avail["cuda"] == "":
            log.warning("tensorrt backend unavailable: %s; falling back to the cuda backend (torch fp16)", avail[name])
            return "cuda"
        hint = "use --backend auto (picks the best installed) or --backend cpu"
        if name == "tensorrt":
            hint = "install torch-tensorrt and TensorRT on a CUDA machine, or use --backend auto / cpu"
        raise BackendError(f"backend {name!r} cannot run here: {avail[name]}", hint)
    return name


def _accepted(cls, kw: dict) -> dict:
    """Keep the keyword options the backend's constructor takes (batch, threads, ...)."""
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(kw)
    dropped = sorted(k for k in kw if k not in params)
    if dropped:
        log.debug("backend %s ignores options %s", cls.__name__, ", ".join(dropped))
    return {k: v for k, v in kw.items() if k in params}


def backend_class(name: str) -> type[Backend]:
    if name == "cpu":
        from psenet_stream.backends.cpu import CpuBackend as cls
    elif name == "onnx":
        from psenet_stream.backends.onnx import OnnxBackend as cls
    elif name == "cuda":
        from psenet_stream.backends.cuda import CudaBackend as cls
    elif name == "tensorrt":
        from psenet_stream.backends.tensorrt import TensorRTBackend as cls
    else:
        raise BackendError(f"unknown backend {name!r}", f"choose one of {', '.join(NAMES)}")
    return cls


def create(name: str, model, meta, **kw) -> Backend:
    """Build backend ``name`` ('auto' resolves first). Options a backend does not take are ignored."""
    asked = (name or "auto").lower()
    name = resolve(name)
    kw = {k: v for k, v in kw.items() if v is not None}
    cls = backend_class(name)
    try:
        return cls(model, meta, **_accepted(cls, kw))
    except BackendError as e:
        if asked == "auto" and name == "tensorrt":  # e.g. no engine could be built: auto still runs
            log.warning("tensorrt backend failed (%s); auto falls back to the cuda backend", e.problem)
            cls = backend_class("cuda")
            return cls(model, meta, **_accepted(cls, kw))
        raise


# --- hardware codecs (PyAV) ---------------------------------------------------------------

NV_DECODERS = ("h264_cuvid", "hevc_cuvid", "av1_cuvid")
NV_ENCODERS = ("h264_nvenc", "hevc_nvenc", "av1_nvenc")


def _probe_encoder(av, name: str) -> str:
    """'' when ``name`` opens and encodes a tiny frame, else the reason."""
    import numpy as np

    try:
        cc = av.CodecContext.create(name, "w")
        cc.width, cc.height, cc.pix_fmt = 256, 144, "yuv420p"
        cc.time_base = __import__("fractions").Fraction(1, 30)
        cc.open()
        frame = av.VideoFrame.from_ndarray(np.zeros((144 * 3 // 2, 256), np.uint8), format="yuv420p")
        frame.pts = 0
        cc.encode(frame)
        cc.encode(None)
        return ""
    except Exception as e:
        return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'cannot open'}"


_PROBE_ENCODERS = {"h264": ("libx264", {}), "hevc": ("libx265", {"x265-params": "log-level=error"}), "av1": ("libsvtav1", {})}


def _probe_packets(av, codec: str) -> list:
    """A few packets of a tiny 256x144 clip in ``codec`` ('h264', 'hevc', 'av1'), encoded in software."""
    import fractions

    import numpy as np

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
    except Exception as e:
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


def best_video_encoder(prefer_hw: bool = True) -> str:
    """The H.264 encoder the pipeline should use: h264_nvenc when it works, else libx264."""
    if prefer_hw and hw_codecs()["encoders"].get("h264_nvenc") == "":
        return "h264_nvenc"
    return "libx264"


def best_video_decoder(codec: str, prefer_hw: bool = True) -> str | None:
    """The cuvid decoder for ``codec`` ('h264', 'hevc', 'av1') when it works, else None (software)."""
    name = f"{codec}_cuvid"
    if prefer_hw and hw_codecs()["decoders"].get(name) == "":
        return name
    return None


__all__ = ["NAMES", "Backend", "available", "backend_class", "best_video_decoder", "best_video_encoder", "create", "hw_codecs", "resolve"]
