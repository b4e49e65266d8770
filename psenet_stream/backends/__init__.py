"""Backends and how one is chosen. Heavy or optional imports happen inside ``create``."""

from __future__ import annotations

import importlib.util
import logging

from psenet_stream.backends.base import Backend
from psenet_stream.errors import BackendError

log = logging.getLogger("psenet_stream")

NAMES = ("auto", "cpu", "onnx", "cuda", "tensorrt")


def available() -> dict[str, str]:
    """Each backend name -> '' when usable here, or the reason it is not."""
    out = {"cpu": ""}
    out["onnx"] = "" if importlib.util.find_spec("onnxruntime") else "onnxruntime is not installed (pip install 'psenet-stream[onnx]')"
    import torch

    cuda_ok = torch.cuda.is_available()
    out["cuda"] = "" if cuda_ok else "no CUDA device (or a CPU-only torch build)"
    if not cuda_ok:
        out["tensorrt"] = "no CUDA device"
    elif not importlib.util.find_spec("torch_tensorrt"):
        out["tensorrt"] = "torch-tensorrt is not installed (pip install 'psenet-stream[tensorrt]' with NVIDIA's index)"
    else:
        out["tensorrt"] = ""
    return out


def resolve(name: str) -> str:
    """Turn 'auto' into the best installed backend; check that an explicit one can run."""
    avail = available()
    if name == "auto":
        for cand in ("tensorrt", "cuda", "onnx", "cpu"):
            if avail.get(cand) == "":
                return cand
    if name not in avail:
        raise BackendError(f"unknown backend {name!r}", f"choose one of {', '.join(NAMES)}")
    if avail[name]:
        if name == "tensorrt" and avail["cuda"] == "":
            log.warning("tensorrt backend unavailable: %s; using the cuda backend (torch fp16)", avail[name])
            return "cuda"
        raise BackendError(f"backend {name!r} cannot run here: {avail[name]}", "use --backend auto or cpu")
    return name


def create(name: str, model, meta, **kw) -> Backend:
    name = resolve(name)
    if name == "cpu":
        from psenet_stream.backends.cpu import CpuBackend

        return CpuBackend(model, meta, **kw)
    if name == "onnx":
        from psenet_stream.backends.onnx import OnnxBackend

        return OnnxBackend(model, meta, **kw)
    if name == "cuda":
        from psenet_stream.backends.cuda import CudaBackend

        return CudaBackend(model, meta, **kw)
    if name == "tensorrt":
        from psenet_stream.backends.tensorrt import TensorRTBackend

        return TensorRTBackend(model, meta, **kw)
    raise BackendError(f"unknown backend {name!r}", f"choose one of {', '.join(NAMES)}")
