"""onnxruntime backend: the gamma network exported to ONNX (cached by weights hash).

torch is imported only to export a model (or check one). With an ONNX file shipped beside
its weights, stamped with the weights' sha256 and metadata (``stamp``), ``shipped_model``
finds both without torch, and ``Enhancer.from_pretrained(backend="onnx")`` runs without
importing it (tests/unit/test_shipped_onnx.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from psenet_stream import guard
from psenet_stream.backends.base import Backend, CacheUnusable
from psenet_stream.errors import BackendError
from psenet_stream.paths import ENV_CACHE, cache_dir

META_KEY = "psenet_meta"  # ONNX metadata property: the weight file's meta as JSON (no path, no sha256)
SHA_KEY = "weights_sha256"  # ONNX metadata property: sha256 of the weight file the model was exported from


def export_onnx(model, path: str | Path, check: bool = True, atol: float = 1e-4, weights_sha256: str | None = None, meta: dict | None = None) -> float:
    """Export the gamma network with dynamic batch/height/width; return the parity error.

    The example batch is 2: a batch of 1 would make the exporter specialise the batch dim.
    ``weights_sha256`` is recorded in the file's metadata (``weights_sha256``), which lets a
    model shipped beside its weights be used without exporting again (``shipped_onnx``);
    ``meta`` (the weight file's metadata) too, which lets it be used without torch
    (``shipped_model``).
    """
    path = Path(path)
    guard.check_parent(path, create=True, what="ONNX model")
    tmp = guard.temp_path(path)
    try:
        return _export_to(model, tmp, path, check=check, atol=atol, weights_sha256=weights_sha256, meta=meta)
    finally:
        guard.discard(tmp)


def _export_to(model, tmp: Path, path: Path, *, check: bool, atol: float, weights_sha256: str | None, meta: dict | None) -> float:
    import torch

    from psenet_stream.model import GammaOnly

    net = GammaOnly(model.float().eval())
    x = torch.rand(2, 3, 96, 160)
    d = torch.export.Dim
    import contextlib
    import io
    import logging
    import warnings

    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # "torchvision is not installed. Skipping ..." is noise here
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.ExitStack() as stack:
        stack.callback(quiet.setLevel, level)
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (x,),
            str(tmp),
            dynamo=True,
            external_data=False,  # one self-contained file (the weights are 60 kB)
            input_names=["x"],
            output_names=["gamma"],
            dynamic_shapes={"x": {0: d("batch", min=1, max=256), 2: d("height", min=8, max=8192), 3: d("width", min=8, max=8192)}},
        )
    err = 0.0
    if check:
        err = onnx_parity(net, tmp)
        if not err <= atol:
            raise BackendError(f"ONNX export parity check failed: max |diff| {err:.3g} > {atol}", "report this as a bug")
    if weights_sha256:
        stamp(tmp, weights_sha256, meta)
    guard.commit(tmp, path, overwrite=True, what="ONNX model")
    return err


def stamp(path: str | Path, weights_sha256: str, meta: dict | None = None) -> None:
    """Record in an ONNX file (in place) the sha256 of the weight file it was exported from
    and, when given, that file's metadata as JSON (without its path and sha256, which
    ``shipped_model`` recomputes); the graph is left as it is."""
    import onnx

    props = {SHA_KEY: weights_sha256}
    if meta is not None:
        props[META_KEY] = json.dumps({k: v for k, v in meta.items() if k not in ("path", "sha256")}, sort_keys=True)
    proto = onnx.load(str(path))
    onnx.helper.set_model_props(proto, props)
    onnx.save(proto, str(path))


def shipped_model(weights: str | Path | None = None) -> tuple[Path, dict[str, Any]] | None:
    """Without torch: the ONNX file beside a weight file (the shipped default when None) and
    the weights' metadata as ``weights_io.load_model`` returns it, when the ONNX file is
    stamped with this file's sha256 and its metadata (``stamp``); else None."""
    from psenet_stream.checksum import file_sha256
    from psenet_stream.paths import default_weights_path

    path = Path(weights) if weights is not None else default_weights_path()
    cand = path.with_suffix(".onnx")
    if not path.is_file() or not cand.is_file():
        return None
    try:
        props = _session(cand, 1).get_modelmeta().custom_metadata_map
    except BackendError:
        return None
    sha = file_sha256(path)
    if props.get(SHA_KEY) != sha or META_KEY not in props:
        return None
    try:
        meta = json.loads(props[META_KEY])
    except ValueError:
        return None
    meta.setdefault("path", str(path))
    meta["sha256"] = sha
    return cand, meta


def shipped_onnx(meta: dict) -> Path | None:
    """The ONNX file shipped beside a weight file (``default.pt`` -> ``default.onnx``), if it
    exists and its metadata names these exact weights; else None (then it is exported once)."""
    weights, sha = meta.get("path"), meta.get("sha256")
    if not weights or not sha:
        return None
    cand = Path(weights).with_suffix(".onnx")
    if not cand.is_file():
        return None
    try:
        props = _session(cand, 1).get_modelmeta().custom_metadata_map
    except BackendError:  # unreadable: fall back to exporting a fresh copy into the cache
        return None
    return cand if props.get("weights_sha256") == sha else None


def onnx_parity(net, path, shapes=((1, 3, 61, 97), (3, 3, 128, 72))) -> float:
    import torch

    sess = _session(path)
    worst = 0.0
    g = torch.Generator().manual_seed(0)
    for s in shapes:
        x = torch.rand(*s, generator=g)
        with torch.inference_mode():
            ref = net(x).numpy()
        got = sess.run(None, {"x": x.numpy()})[0]
        worst = max(worst, float(np.abs(ref - got).max()))
    return worst


def _session(path, threads: int | None = None):
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise BackendError("onnxruntime is not installed", "pip install 'psenet-stream[onnx]' or use --backend cpu") from e
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads or min(os.cpu_count() or 1, 8)
    so.log_severity_level = 3
    # EXTENDED, not ALL: ALL adds the NCHWc layout, and the network's 9 reflect pads then cost a
    # reorder out of and back into it around each (26 % of the run in onnxruntime's profiler);
    # measured on 2 cores at 256x144, one thread: 8.1 vs 8.5 ms of CPU per run
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    # no busy-waiting between runs: onnxruntime's pool threads spin by default after each run,
    # which on a small CPU takes the cores from the decoder, the curve and x264 (measured on
    # 2 cores: 23 -> 10 ms of CPU per single-frame run at 256x144; docs/PROFILE.md)
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own untyped errors for a truncated or foreign file
        raise BackendError(f"onnxruntime cannot load {path}: {str(e).splitlines()[0]}", "re-export it with psenet-stream export-onnx") from e


class OnnxBackend(Backend):
    """onnxruntime on the CPU: ``predict_gamma`` float32 (N, 3, h, w) in [0, 1] -> gamma float32
    (N, 3, h, w), > 0, within 1e-4 of the cpu backend (checked when the model is exported).

    One frame runs on a session with ``threads`` intra-op threads (lowest latency, live
    input). A batch runs frame-parallel instead: ``threads`` workers each run whole frames
    on a single-threaded session, which scales better than splitting one tiny conv across
    cores (no fork-join per layer) and degrades gracefully on a busy machine.
    """

    name = "onnx"
    device = "cpu"

    def __init__(self, model, meta, onnx_path: str | Path | None = None, threads: int | None = None):
        """``model`` is needed only when there is no ONNX file yet (``onnx_path`` None and
        none shipped beside the weights): it is exported once into the cache."""
        super().__init__(model, meta)
        if onnx_path is None:
            onnx_path = shipped_onnx(meta)
        if onnx_path is None:
            import torch

            if model is None:
                raise BackendError("the onnx backend needs the network to export, or an ONNX file", "pass the model, or onnx_path")
            key = meta.get("sha256", "nohash")[:16]
            onnx_path = cache_dir() / f"psenet-{key}-torch{torch.__version__.split('+')[0]}-v2.onnx"
            if not onnx_path.exists():
                try:
                    export_onnx(model, onnx_path)
                except OSError as e:  # OutputError too: the cache folder is missing, a file, or read-only
                    why = getattr(e, "problem", None) or e.strerror or str(e)
                    raise CacheUnusable(
                        f"cannot write the ONNX model cache {onnx_path.parent}: {why}",
                        f"make it writable, or point {ENV_CACHE} at a writable folder",
                    ) from None
        self.onnx_path = Path(onnx_path)
        self.threads = max(1, threads or min(os.cpu_count() or 1, 8))
        self.session = _session(self.onnx_path, self.threads)
        self._single = None  # single-threaded session for frame-parallel batches (lazy)
        self._pool = None

    def describe(self) -> str:
        return f"{self.name} (onnxruntime CPU, {self.threads} thread{'s' if self.threads != 1 else ''}, {self.onnx_path.name})"

    def predict_gamma(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.shape[0] == 1 or self.threads == 1:
            return self.session.run(None, {"x": x})[0]
        if self._single is None:
            self._single = _session(self.onnx_path, 1)
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="psenet-onnx")
        run = self._single.run
        parts = self._pool.map(lambda i: run(None, {"x": x[i : i + 1]})[0], range(x.shape[0]))
        return np.concatenate(list(parts))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
