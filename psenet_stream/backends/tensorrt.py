"""TensorRT backend: the gamma network compiled to an FP16 engine with torch-tensorrt.

This is the only module that imports torch_tensorrt, and only inside functions, so
importing it (and the sidecar checks below) works on a CPU-only machine.

An engine is built once (``psenet-stream build-engine`` or on first use) with
``torch_tensorrt.dynamo.compile`` over a dynamic shape range, saved as an
ExportedProgram into engines/, and described by a JSON sidecar next to it:

    engines/psenet-<weights sha256[:12]>-b1-16_16x16-512x512-<gpu>-trt<ver>-torch<ver>-fp16.ep
    engines/....ep.json   {"weights_sha256", "shape_min/opt/max", "gpu", "versions", "engine_sha256", ...}

Loading never recompiles a matching engine, and refuses (BackendError) an engine whose
sidecar is missing, names other weights, another GPU or other TensorRT/torch versions, or
whose file hash differs from the sidecar's. Everything around the network (uint8 upload,
downscale, the curve, streams, pinned ring) is the cuda backend's; shapes outside the
engine's range run on the cuda backend's fp16 torch network, with a one-time warning.
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import logging
import re
from pathlib import Path
from typing import Any

import torch

from psenet_stream import guard
from psenet_stream.backends.availability import cuda_reason, tensorrt_reason
from psenet_stream.backends.base import CacheUnusable
from psenet_stream.backends.cuda import CudaBackend
from psenet_stream.errors import BackendError
from psenet_stream.model import GammaOnly
from psenet_stream.paths import ENV_ENGINES, engine_dir

log = logging.getLogger("psenet_stream")

SIDECAR_FORMAT = "psenet-stream/trt-engine-v1"
DEFAULT_MIN = (1, 3, 16, 16)
DEFAULT_OPT = (8, 3, 144, 256)
DEFAULT_MAX = (16, 3, 512, 512)

#: engines compiled by this process (tests check that a reload does not add one)
BUILD_COUNT = 0

Shape = tuple[int, int, int, int]


# --- names, shapes, sidecars (pure Python; tested on the CPU) --------------------------------


def parse_shape(text: str | tuple | list) -> Shape:
    """'1x3x144x256' (or a 4-tuple) -> (1, 3, 144, 256), checked."""
    if isinstance(text, (tuple, list)):
        parts = [int(v) for v in text]
    else:
        try:
            parts = [int(v) for v in re.split(r"[x,]", str(text).strip().lower())]
        except ValueError:
            parts = []
    if len(parts) != 4 or parts[1] != 3 or min(parts) < 1:
        raise BackendError(f"bad shape {text!r}", "write NxCxHxW with C = 3, e.g. 8x3x144x256")
    if min(parts[2:]) < 16:
        raise BackendError(f"shape {text!r} is too small", "height and width must be at least 16")
    return tuple(parts)  # type: ignore[return-value]


def check_range(smin: Shape, sopt: Shape, smax: Shape) -> None:
    if not all(a <= b <= c for a, b, c in zip(smin, sopt, smax)):
        raise BackendError(
            f"shape range min {fmt_shape(smin)} / opt {fmt_shape(sopt)} / max {fmt_shape(smax)} is not ordered",
            "each dimension needs min <= opt <= max",
        )


def fmt_shape(s) -> str:
    return "x".join(str(int(v)) for v in s)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unknown"


default_engine_dir = engine_dir  # TensorRTBackend's engine_dir argument shadows the name


def gpu_info(device: int | torch.device | None = None) -> dict[str, str]:
    """{'name', 'capability'} of the CUDA device (empty values without one)."""
    if not torch.cuda.is_available():
        return {"name": "", "capability": ""}
    p = torch.cuda.get_device_properties(device if device is not None else torch.cuda.current_device())
    return {"name": p.name, "capability": f"sm_{p.major}{p.minor}"}


def versions() -> dict[str, str]:
    """Versions an engine is tied to ('' for what is not installed)."""
    out = {"torch": torch.__version__, "cuda": torch.version.cuda or "", "torch_tensorrt": "", "tensorrt": ""}
    try:
        import torch_tensorrt

        out["torch_tensorrt"] = torch_tensorrt.__version__
    except Exception:  # noqa: BLE001 - missing or broken (it raises more than ImportError): the version is ''
        pass
    try:
        import tensorrt

        out["tensorrt"] = tensorrt.__version__
    except Exception:  # noqa: BLE001 - missing or broken (it raises more than ImportError): the version is ''
        pass
    return out


def engine_filename(weights_sha256: str, smin: Shape, smax: Shape, gpu_name: str, vers: dict[str, str]) -> str:
    rng = f"b{smin[0]}-{smax[0]}_{smin[2]}x{smin[3]}-{smax[2]}x{smax[3]}"
    trt = vers.get("tensorrt") or vers.get("torch_tensorrt") or "none"
    tv = (vers.get("torch") or "").split("+")[0]
    return f"psenet-{weights_sha256[:12]}-{rng}-{slug(gpu_name)}-trt{trt}-torch{tv}-fp16.ep"


def sidecar_path(engine_path: str | Path) -> Path:
    engine_path = Path(engine_path)
    return engine_path.with_name(engine_path.name + ".json")


def write_sidecar(engine_path: str | Path, *, weights_sha256: str, weights_path: str, smin: Shape, sopt: Shape, smax: Shape, gpu: dict, vers: dict) -> dict:
    from psenet_stream.weights_io import file_sha256

    engine_path = Path(engine_path)
    info = {
        "format": SIDECAR_FORMAT,
        "engine": engine_path.name,
        "engine_sha256": file_sha256(engine_path),
        "weights_sha256": weights_sha256,
        "weights_path": weights_path,
        "shape_min": list(smin),
        "shape_opt": list(sopt),
        "shape_max": list(smax),
        "precision": "fp16",
        "gpu": dict(gpu),
        "versions": dict(vers),
        "built_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    guard.write_text(sidecar_path(engine_path), json.dumps(info, indent=2) + "\n", overwrite=True, create_parent=True, what="engine sidecar")
    return info


def check_engine(engine_path: str | Path, *, weights_sha256: str, gpu_name: str, vers: dict[str, str] | None = None) -> dict:
    """Validate an engine against its sidecar; return the sidecar, or raise BackendError.

    Refuses: a missing engine or sidecar, an unreadable sidecar, other weights, another
    GPU, other torch-tensorrt / TensorRT versions (when ``vers`` is given), and an engine
    file whose sha256 is not the sidecar's.
    """
    from psenet_stream.weights_io import file_sha256

    engine_path = Path(engine_path)
    rebuild = "rebuild it: psenet-stream build-engine --weights <your weights>"
    if not engine_path.is_file():
        raise BackendError(f"TensorRT engine not found: {engine_path}", "build one with psenet-stream build-engine")
    sc = sidecar_path(engine_path)
    if not sc.is_file():
        raise BackendError(f"TensorRT engine {engine_path.name} has no sidecar {sc.name}; refusing to load an engine of unknown origin", rebuild)
    try:
        info = json.loads(sc.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        raise BackendError(f"cannot read the sidecar {sc}", rebuild) from None
    if not isinstance(info, dict) or info.get("format") != SIDECAR_FORMAT:
        found = info.get("format") if isinstance(info, dict) else type(info).__name__
        raise BackendError(f"cannot read the sidecar {sc}: format {found!r}, expected {SIDECAR_FORMAT!r}", rebuild)
    if info.get("weights_sha256") != weights_sha256:
        raise BackendError(
            f"TensorRT engine {engine_path.name} was built for other weights "
            f"(sha256 {str(info.get('weights_sha256'))[:12]}, current weights {weights_sha256[:12]})",
            rebuild,
        )
    built_gpu = (info.get("gpu") or {}).get("name")
    if built_gpu != gpu_name:
        raise BackendError(f"TensorRT engine {engine_path.name} was built on GPU {built_gpu!r}, this is {gpu_name!r}", rebuild)
    if vers is not None:
        built = info.get("versions") or {}
        for k in ("tensorrt", "torch_tensorrt"):
            if built.get(k, "") != vers.get(k, ""):
                raise BackendError(f"TensorRT engine {engine_path.name} was built with {k} {built.get(k)!r}, this is {vers.get(k)!r}", rebuild)
    actual = file_sha256(engine_path)
    if actual != info.get("engine_sha256"):
        raise BackendError(
            f"TensorRT engine {engine_path.name} does not match its sidecar (sha256 {actual[:12]} != {str(info.get('engine_sha256'))[:12]}); the file changed or is corrupt",
            rebuild,
        )
    return info


def find_engines(directory: str | Path, weights_sha256: str, gpu_name: str) -> list[Path]:
    """Engines in ``directory`` whose name says they are for these weights and this GPU."""
    d = Path(directory)
    if not d.is_dir():
        return []
    pat = f"psenet-{weights_sha256[:12]}-*-{slug(gpu_name)}-*.ep"
    return sorted(d.glob(pat))


def in_range(shape, info: dict) -> bool:
    lo, hi = info["shape_min"], info["shape_max"]
    return len(shape) == 4 and all(a <= s <= b for a, s, b in zip(lo, shape, hi))


# --- building and loading (GPU + torch-tensorrt) ----------------------------------------------


def _require_trt():
    reason = tensorrt_reason() or cuda_reason()
    if reason:
        raise BackendError(f"cannot use TensorRT here: {reason}", "build engines on a CUDA machine with torch-tensorrt installed; --backend cuda needs no engine")
    import torch_tensorrt

    return torch_tensorrt


def build_engine(
    model,
    meta: dict[str, Any],
    smin: Shape = DEFAULT_MIN,
    sopt: Shape = DEFAULT_OPT,
    smax: Shape = DEFAULT_MAX,
    out_dir: str | Path | None = None,
    force: bool = False,
) -> Path:
    """Compile the gamma network to an FP16 TensorRT engine; return its path (reused if valid)."""
    global BUILD_COUNT
    smin, sopt, smax = parse_shape(smin), parse_shape(sopt), parse_shape(smax)
    check_range(smin, sopt, smax)
    tt = _require_trt()
    gpu, vers = gpu_info(), versions()
    guard.check_parent(Path(out_dir if out_dir is not None else engine_dir()) / "x", create=True, what="engine")  # before minutes of compiling
    out_dir = Path(out_dir) if out_dir is not None else engine_dir()
    path = out_dir / engine_filename(meta["sha256"], smin, smax, gpu["name"], vers)
    if path.exists() and not force:
        try:
            check_engine(path, weights_sha256=meta["sha256"], gpu_name=gpu["name"], vers=vers)
            log.info("tensorrt: %s is up to date; not rebuilding (pass --force to rebuild)", path.name)
            return path
        except BackendError as e:
            log.warning("tensorrt: rebuilding %s: %s", path.name, e.problem)
    dev = torch.device("cuda", torch.cuda.current_device())
    net = GammaOnly(copy.deepcopy(model)).to(dev).half().eval()
    names = ("batch", None, "height", "width")
    dyn = {i: torch.export.Dim(names[i], min=smin[i], max=smax[i]) for i in (0, 2, 3) if smin[i] != smax[i]}
    # torch.export specialises a dimension traced at size 1: trace dynamic ones at >= 2
    example = torch.rand(tuple(max(v, 2) if i in dyn else v for i, v in enumerate(sopt)), device=dev).half()
    spec = tt.Input(min_shape=smin, opt_shape=sopt, max_shape=smax, dtype=torch.half)
    log.info("tensorrt: compiling %s (min %s, opt %s, max %s); this takes a minute", path.name, fmt_shape(smin), fmt_shape(sopt), fmt_shape(smax))
    try:
        with torch.no_grad():
            exported = torch.export.export(net, (example,), dynamic_shapes={"x": dyn} if dyn else None, strict=False)
            try:  # torch-tensorrt >= 2.5: fp16 comes from the fp16 model and input (explicit typing)
                trt_gm = tt.dynamo.compile(exported, inputs=[spec], use_explicit_typing=True, min_block_size=1)
            except TypeError:  # older releases: weak typing
                trt_gm = tt.dynamo.compile(exported, inputs=[spec], enabled_precisions={torch.half}, min_block_size=1)
    except Exception as e:  # export and TensorRT raise many untyped errors: one BackendError with the first line
        raise BackendError(
            f"TensorRT compilation failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
            "try another shape range, or use --backend cuda (torch fp16, no engine needed)",
        ) from e
    tmp = guard.temp_path(path)  # a hidden name: not matched by find_engines while written
    try:
        try:  # the dynamic range travels with the Input spec (torch-tensorrt "save with dynamic shapes")
            tt.save(trt_gm, str(tmp), output_format="exported_program", arg_inputs=[spec])
        except Exception as first:  # noqa: BLE001 - releases differ in what save accepts: try the other form, which raises if it fails too
            log.debug("tensorrt: save with an Input spec failed (%s); retrying with explicit dynamic shapes", first)
            tt.save(trt_gm, str(tmp), output_format="exported_program", arg_inputs=[example], dynamic_shapes={"x": dyn} if dyn else None)
        guard.commit(tmp, path, overwrite=True, what="engine")
    finally:
        guard.discard(tmp)
    BUILD_COUNT += 1
    write_sidecar(path, weights_sha256=meta["sha256"], weights_path=str(meta.get("path", "")), smin=smin, sopt=sopt, smax=smax, gpu=gpu, vers=vers)
    log.info("tensorrt: wrote %s", path)
    return path


def load_engine(path: str | Path, meta: dict[str, Any]) -> tuple[torch.nn.Module, dict]:
    """Validate against the sidecar, then load without recompiling."""
    tt = _require_trt()
    info = check_engine(path, weights_sha256=meta["sha256"], gpu_name=gpu_info()["name"], vers=versions())
    try:
        module = tt.load(str(path)).module()
    except Exception as e:  # a foreign or damaged engine fails in many untyped ways: one BackendError
        raise BackendError(f"cannot load TensorRT engine {Path(path).name}: {type(e).__name__}: {e}", "rebuild it with psenet-stream build-engine --force") from e
    return module, info


class TensorRTBackend(CudaBackend):
    """The cuda backend with the network replaced by TensorRT engines where shapes allow."""

    name = "tensorrt"
    capture_net = False  # the engine call stays outside CUDA graphs (TRT manages its own launch)

    def __init__(
        self,
        model,
        meta,
        batch: int | None = None,
        device: str | torch.device | None = None,
        engine: str | Path | None = None,
        engine_dir: str | Path | None = None,
        build: bool = True,
        graphs: bool = True,
    ):
        _require_trt()
        super().__init__(model, meta, batch=batch, device=device, graphs=graphs)
        self._eager = self.net
        self.engines: list[tuple[torch.nn.Module, dict, Path]] = []
        if engine is not None:
            paths = [Path(engine)]
        else:
            d = Path(engine_dir) if engine_dir is not None else default_engine_dir()
            paths = find_engines(d, meta["sha256"], gpu_info()["name"])
            if not paths and build:
                try:
                    paths = [build_engine(model, meta, out_dir=d)]
                except OSError as e:  # OutputError too: the engine folder is missing, a file, or read-only
                    why = getattr(e, "problem", None) or e.strerror or str(e)
                    raise CacheUnusable(f"cannot write a TensorRT engine into {d}: {why}", f"make it writable, or point {ENV_ENGINES} at a writable folder") from None
        for p in paths:
            try:
                m, info = load_engine(p, meta)
            except BackendError as e:
                if engine is not None:
                    raise
                log.warning("tensorrt: skipping %s: %s", p.name, e.problem)
                continue
            self.engines.append((m, info, p))
        if not self.engines:
            raise BackendError("no usable TensorRT engine for these weights and this GPU", "build one: psenet-stream build-engine (or use --backend cuda)")
        self._warned: set = set()
        self.net = self._dispatch

    def _dispatch(self, x: torch.Tensor) -> torch.Tensor:
        shape = tuple(x.shape)
        for m, info, _ in self.engines:
            if in_range(shape, info):
                return m(x.contiguous())
        if shape not in self._warned:
            self._warned.add(shape)
            log.warning("tensorrt: input %s is outside every engine's range; using the torch fp16 network for it", fmt_shape(shape))
        return self._eager(x)

    def describe(self) -> str:
        names = ", ".join(p.name for _, _, p in self.engines)
        return f"{self.name} ({torch.cuda.get_device_name(self.device)}, fp16 engine {names}, batch {self.batch})"
