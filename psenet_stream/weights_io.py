"""Weight files: the project's own format, the shipped default, and the official importer.

The project's files are plain ``torch.save`` dicts (tensors, strings, numbers) and are
always read with ``weights_only=True``, so a weight file cannot run code.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import Any

import torch

from psenet_stream.checksum import file_sha256  # noqa: F401  (re-exported)
from psenet_stream.errors import BackendError
from psenet_stream.model import PSENet
from psenet_stream.paths import DEFAULT_WEIGHTS, ENV_WEIGHTS, default_weights_path  # noqa: F401  (re-exported)

FORMAT = "psenet-stream/weights-v1"


def save_weights(path: str | Path, state_dict: dict[str, torch.Tensor], meta: dict[str, Any], *, inputs=(), overwrite: bool = True) -> None:
    """Write a weight file through the output guard (never an input; temporary name, then rename).
    ``overwrite`` defaults to True: the trainer rewrites its own checkpoints."""
    from psenet_stream import guard

    payload = {"format": FORMAT, "state_dict": {k: v.detach().cpu().float() for k, v in state_dict.items()}, "meta": meta}
    with guard.atomic_output(path, list(inputs), overwrite=overwrite, create_parent=True, what="weights output") as tmp:
        torch.save(payload, tmp)


def _read(path: Path, fix: str) -> bytes:
    """The file's bytes, from a regular file only (a FIFO or device would block torch.load)."""
    from psenet_stream.guard import NotRegularFile, read_regular

    try:
        return read_regular(path)
    except NotRegularFile:
        raise BackendError(f"{path} is not a regular file (a pipe, device or socket)", fix) from None
    except OSError as e:
        raise BackendError(f"cannot read {path}: {e.strerror}", fix) from None


def _load_error(e: BaseException, path: Path, *, refused: str, refused_fix: str, unreadable: str, unreadable_fix: str) -> BackendError:
    """The error for a failed ``torch.load(weights_only=True)``: a refused pickle (never echoing
    torch's "re-run with weights_only=False" advice), or an unreadable file."""
    if "Weights only load failed" in str(e):
        return BackendError(refused, refused_fix)
    first = str(e).splitlines()[0] if str(e) else type(e).__name__
    return BackendError(f"{unreadable}: {first}", unreadable_fix)


def read_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a project weight file safely. Raises BackendError with a fix on any problem."""
    path = Path(path)
    if not path.exists():
        raise BackendError(f"weights file not found: {path}", "pass an existing file to --weights, or omit it for the shipped default")
    if path.is_dir():
        raise BackendError(f"weights path is a directory: {path}", "pass the .pt file itself")
    data = _read(path, "pass a file written by psenet-stream train or import-weights")
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # torch.load raises anything for a corrupt zip or a pickle with code in it
        if _looks_like_lightning(path):
            raise BackendError(
                f"{path} is an official PSENet Lightning checkpoint, not a psenet-stream weight file",
                f"convert it once: psenet-stream import-weights {path} -o weights.pt",
            ) from e
        raise _load_error(
            e,
            path,
            refused=f"refusing weights {path}: it holds Python objects beyond tensors (loading it could run code)",
            refused_fix="pass a file written by psenet-stream train or import-weights; do not load files from untrusted sources",
            unreadable=f"cannot read weights {path}",
            unreadable_fix="pass a file written by psenet-stream train or import-weights",
        ) from e
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise BackendError(f"{path} is not a psenet-stream weight file", "pass a file written by psenet-stream train or import-weights")
    meta = payload.get("meta", {})
    return _checked_state_dict(payload.get("state_dict"), path), meta if isinstance(meta, dict) else {}


def _checked_state_dict(sd: Any, path: Path | str) -> dict[str, torch.Tensor]:
    """A state_dict that a model can load: a dict of names to finite floating tensors, else
    BackendError (a list, a string, a NaN or infinite weight would fail later or silently
    turn every frame black)."""
    fix = "pass a file written by psenet-stream train or import-weights"
    if not isinstance(sd, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in sd.items()):
        raise BackendError(f"{path} is damaged: its state_dict is a {type(sd).__name__}, not a mapping of names to tensors", fix)
    bad = [k for k, v in sd.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise BackendError(f"{path} holds NaN or infinite weights ({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''})", "retrain or re-export the weights; " + fix)
    return sd


def _strict_model(state_dict: dict[str, torch.Tensor], path: Path | str, fix: str) -> PSENet:
    """A PSENet with exactly these weights (every name and shape must match), or BackendError.
    Weights that carry ``head.*`` get the optional exposure head."""
    model = PSENet(head=any(k.startswith("head.") for k in state_dict))
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as e:
        raise BackendError(f"{path} does not match the PSENet architecture: {str(e).splitlines()[0]}", fix) from e
    return model


def load_model(path: str | Path | None = None) -> tuple[PSENet, dict[str, Any]]:
    """Build the network and load weights strictly; the shipped default when path is None."""
    path = Path(path) if path is not None else default_weights_path()
    sd, meta = read_weights(path)
    model = _strict_model(sd, path, "use weights trained by this project")
    meta = dict(meta)
    meta.setdefault("path", str(path))
    meta["sha256"] = file_sha256(path)
    return model.eval(), meta


# --- the official VinAI checkpoints -----------------------------------------------------


def _stub(module: str, name: str) -> type:
    """A do-nothing class standing in for a Lightning class recorded in a checkpoint."""

    def __setstate__(self, state):  # keep nothing; we only want the state_dict
        pass

    cls = type(name, (), {"__setstate__": __setstate__, "__module__": module})
    cls.__qualname__ = name
    return cls


_LIGHTNING_STUBS = [_stub("pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint")]


def _looks_like_lightning(path: Path) -> bool:
    try:
        return any("pytorch_lightning" in g for g in torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
    except Exception:  # noqa: BLE001 - only a hint for the message: a file torch cannot even list is simply not one
        return False


def read_official_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read an official PSENet Lightning 1.4.9 checkpoint without Lightning installed.

    Still ``weights_only=True``: only the Lightning callback class (replaced by an inert
    stub) and argparse.Namespace are allowed beyond tensors and containers.
    """
    path = Path(path)
    if not path.exists():
        raise BackendError(f"checkpoint not found: {path}", "pass the path of sice.pth or afifi.pth")
    data = _read(path, "pass sice.pth or afifi.pth from the official repository")
    try:
        with torch.serialization.safe_globals([*_LIGHTNING_STUBS, argparse.Namespace]):
            ck = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # torch.load raises anything for a corrupt zip or a pickle with code in it
        raise _load_error(
            e,
            path,
            refused=f"refusing {path}: it holds Python objects that an official PSENet checkpoint does not (loading it could run code)",
            refused_fix="pass sice.pth or afifi.pth from the official repository",
            unreadable=f"cannot read {path} as an official PSENet checkpoint",
            unreadable_fix="pass sice.pth or afifi.pth from the official repository",
        ) from e
    if not isinstance(ck, dict) or "state_dict" not in ck or not isinstance(ck["state_dict"], dict):
        raise BackendError(f"{path} has no state_dict", "pass sice.pth or afifi.pth from the official repository")
    sd = {k.removeprefix("model."): v for k, v in ck["state_dict"].items() if isinstance(k, str) and k.startswith("model.")}
    sd = _checked_state_dict(sd, path)
    hp = ck.get("hyper_parameters", {}) or {}
    meta = {
        "source": "official PSENet checkpoint (VinAI, BSD-3-Clause)",
        "imported_from": path.name,
        "imported_sha256": file_sha256(path),
        "epoch": int(ck.get("epoch", -1)),
        "global_step": int(ck.get("global_step", -1)),
        "tv_weight": float(hp.get("tv_w", float("nan"))) if isinstance(hp, dict) else None,
    }
    return sd, meta


def import_official(path: str | Path, out: str | Path, *, overwrite: bool = True) -> dict[str, Any]:
    """Convert an official checkpoint to a project weight file at ``out``; returns its meta."""
    sd, meta = read_official_checkpoint(path)
    model = _strict_model(sd, path, "pass sice.pth or afifi.pth from the official repository")
    save_weights(out, model.state_dict(), meta, inputs=[path], overwrite=overwrite)
    return meta
