"""Which backends can run on this machine, and why not: pure probes, no backend imported.

``available()`` maps each backend name to '' (usable) or the reason it is not, with the
install command where there is one. ``doctor``, ``bench`` and ``backends.resolve`` use it.
"""

from __future__ import annotations

import importlib.util

AUTO_ORDER = ("tensorrt", "cuda", "onnx", "cpu")  # what 'auto' tries, best first


def cuda_reason() -> str:
    """'' when torch sees a CUDA device, else why not."""
    import torch

    if torch.version.cuda is None:
        return f"torch {torch.__version__} is a CPU-only build (install a CUDA build of torch)"
    try:
        if torch.cuda.is_available() and torch.cuda.device_count() > 0:
            return ""
    except Exception as e:  # noqa: BLE001 - a broken driver raises anything here on some versions; report it, never crash
        return f"CUDA is unusable: {e}"
    return "no CUDA device visible (driver missing, or CUDA_VISIBLE_DEVICES hides it)"


def tensorrt_reason() -> str:
    if not importlib.util.find_spec("torch_tensorrt"):
        return "torch-tensorrt is not installed (pip install 'psenet-stream[tensorrt]'; TensorRT itself comes from NVIDIA's package index)"
    if not importlib.util.find_spec("tensorrt"):
        return "torch-tensorrt is installed but TensorRT (the 'tensorrt' package) is not"
    return ""


def onnx_reason() -> str:
    """'' when onnxruntime is installed, else why not (no import, no torch)."""
    return "" if importlib.util.find_spec("onnxruntime") else "onnxruntime is not installed (pip install 'psenet-stream[onnx]')"


def available() -> dict[str, str]:
    """Each backend name -> '' when usable here, or the reason it is not."""
    out = {"cpu": ""}
    out["onnx"] = onnx_reason()
    cuda = cuda_reason()
    out["cuda"] = cuda
    trt = tensorrt_reason()
    out["tensorrt"] = trt if trt else (f"no CUDA: {cuda}" if cuda else "")
    if trt and cuda:
        out["tensorrt"] = f"{trt}; and no CUDA: {cuda}"
    return out
