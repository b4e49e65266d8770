"""The backend registry: the names, and ``create``. Heavy or optional imports happen inside it.

``auto`` picks the best backend installed here, in the order tensorrt > cuda > onnx > cpu,
and logs which one it took and why the better ones were skipped (``availability.py`` says
what can run). ``tensorrt`` falls back to ``cuda`` (with a warning) when torch-tensorrt is
missing but CUDA works; every other backend that cannot run raises a BackendError naming
the reason and the fix. What a backend can do is declared by its ``capabilities``
(``base.py``).
"""

from __future__ import annotations

import inspect
import logging

from psenet_stream.backends.availability import AUTO_ORDER, available, cuda_reason, onnx_reason, tensorrt_reason
from psenet_stream.backends.base import Backend, Capabilities, GammaHook
from psenet_stream.errors import BackendError

log = logging.getLogger("psenet_stream")

BACKENDS = ("cpu", "onnx", "cuda", "tensorrt")  # every backend, reference first
NAMES = ("auto", *BACKENDS)  # what --backend accepts
GPU_NAMES = ("cuda", "tensorrt")  # the backends that run on a CUDA device


def resolve(name: str) -> str:
    """Turn 'auto' into the best installed backend; check that an explicit one can run."""
    name = (name or "auto").lower()
    if name not in NAMES:
        raise BackendError(f"unknown backend {name!r}", f"choose one of {', '.join(NAMES)}")
    # cpu and onnx are checked without the CUDA probe: it imports torch, which the onnx
    # backend does not need (Enhancer.from_pretrained(backend="onnx") runs without it)
    avail = available() if name in ("auto", *GPU_NAMES) else {name: "" if name == "cpu" else onnx_reason()}
    if name == "auto":
        skipped = []
        for cand in AUTO_ORDER:
            if avail[cand] == "":
                # -vv: why this backend (-v prints the backend in the summary; by default it is quiet)
                log.debug("backend auto -> %s%s", cand, f" (skipped {'; '.join(skipped)})" if skipped else "")
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
        if getattr(e, "cache_unusable", False):  # an unwritable cache is not fatal: these backends need none
            other = "cuda" if name == "tensorrt" else "cpu"
            log.warning("warning: %s; using the %s backend (in memory) instead of %s (%s)", e.problem, other, name, e.fix)
            cls = backend_class(other)
            return cls(model, meta, **_accepted(cls, kw))
        if asked == "auto" and name == "tensorrt":  # e.g. no engine could be built: auto still runs
            log.warning("tensorrt backend failed (%s); auto falls back to the cuda backend", e.problem)
            cls = backend_class("cuda")
            return cls(model, meta, **_accepted(cls, kw))
        raise


__all__ = [
    "AUTO_ORDER",
    "BACKENDS",
    "GPU_NAMES",
    "NAMES",
    "Backend",
    "Capabilities",
    "GammaHook",
    "available",
    "backend_class",
    "create",
    "cuda_reason",
    "onnx_reason",
    "resolve",
    "tensorrt_reason",
]
