"""``psenet-stream doctor``: what this machine can do, section by section, never a traceback."""

from __future__ import annotations

import importlib
import json
import os
import platform
import shutil
import sys
from collections.abc import Callable

import click

SECTIONS = ("versions", "codecs", "cuda", "backends", "weights", "display")


def _version(mod: str) -> str:
    try:
        m = importlib.import_module(mod)
    except Exception as e:  # noqa: BLE001 - ImportError, or a broken install raising anything: doctor reports, never crashes
        return f"not installed ({type(e).__name__})" if isinstance(e, ImportError) else f"broken: {type(e).__name__}: {e}"
    return str(getattr(m, "__version__", "?"))


def _dist_version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed (PackageNotFoundError)"


def versions() -> list[tuple[str, str]]:
    rows = [("python", f"{platform.python_version()} ({sys.executable})"), ("platform", platform.platform())]
    from psenet_stream import __version__

    rows.append(("psenet-stream", __version__))
    rows.append(("torch", _version("torch")))
    from psenet_stream.io.hwcodecs import pyav_version

    rows.append(("av (PyAV)", pyav_version()))
    for label, mod in (("opencv", "cv2"), ("numpy", "numpy"), ("onnxruntime", "onnxruntime"), ("onnx", "onnx"), ("click", "click")):
        rows.append((label, _version(mod)))
    # TensorRT is only ever imported by backends/tensorrt.py: here its installed metadata is enough
    for label, dist in (("torch_tensorrt", "torch-tensorrt"), ("tensorrt", "tensorrt")):
        rows.append((label, _dist_version(dist)))
    return rows


def codecs() -> list[tuple[str, str]]:
    from psenet_stream.io import hwcodecs

    rows = [(name, "yes" if ok else "no") for name, ok in hwcodecs.software_codecs().items()]
    hw = hwcodecs.hw_codecs()
    for kind in ("decoders", "encoders"):
        for name, reason in hw[kind].items():
            rows.append((name, "works" if reason == "" else f"no: {reason}"))
    rows.append(("hw devices in FFmpeg", ", ".join(hwcodecs.hw_devices()) or "none"))
    return rows


def cuda() -> list[tuple[str, str]]:
    import torch

    rows = [("torch CUDA build", torch.version.cuda or "no (CPU-only build)")]
    from psenet_stream.backends.availability import cuda_reason

    reason = cuda_reason()
    if reason:
        rows.append(("CUDA devices", f"none: {reason}"))
        return rows
    rows.append(("cuDNN", str(torch.backends.cudnn.version())))
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        rows.append((f"cuda:{i}", f"{p.name}, sm_{p.major}{p.minor}, {p.total_memory / 2**30:.1f} GiB"))
    from psenet_stream.backends import kernels

    if kernels.HAVE_TRITON:
        import triton

        rows.append(("fused curve kernel", f"yes (Triton {triton.__version__})"))
    else:
        rows.append(("fused curve kernel", "no: Triton is not installed (the cuda backend applies the curve with eager torch ops)"))
    return rows


def backends_rows() -> list[tuple[str, str]]:
    from psenet_stream import backends

    avail = backends.available()
    rows = [(name, "usable" if reason == "" else f"no: {reason}") for name, reason in avail.items()]
    best = next((c for c in backends.AUTO_ORDER if avail.get(c) == ""), "cpu")
    rows.append(("auto picks", best))
    return rows


def weights() -> list[tuple[str, str]]:
    from psenet_stream.checksum import file_sha256
    from psenet_stream.paths import DEFAULT_WEIGHTS, ENV_WEIGHTS, default_weights_path

    path = default_weights_path()
    rows = [("default weights", str(path) + (f" (from ${ENV_WEIGHTS})" if os.environ.get(ENV_WEIGHTS) else ""))]
    if path.is_file():
        rows.append(("sha256", file_sha256(path)))
        rows.append(("size", f"{path.stat().st_size / 1024:.1f} kB"))
    else:
        rows.append(("status", "missing" + ("" if path != DEFAULT_WEIGHTS else " (the shipped weights are not in this build)")))
    from psenet_stream.paths import engine_dir

    d = engine_dir()
    n = len(list(d.glob("*.ep"))) if d.is_dir() else 0
    rows.append(("TensorRT engines", f"{d} ({n} engine{'s' if n != 1 else ''})"))
    return rows


def display() -> list[tuple[str, str]]:
    rows = [("DISPLAY", os.environ.get("DISPLAY") or "not set (headless: use --preview http)")]
    rows.append(("WAYLAND_DISPLAY", os.environ.get("WAYLAND_DISPLAY") or "not set"))
    for tool in ("Xvfb", "xvfb-run", "gst-launch-1.0", "ffmpeg"):
        rows.append((tool, shutil.which(tool) or "not found"))
    try:
        import gi  # noqa: F401

        rows.append(("python3-gi (gst-rtsp-server tests)", "importable"))
    except Exception:  # noqa: BLE001 - a broken system gi raises more than ImportError; doctor only reports
        rows.append(("python3-gi (gst-rtsp-server tests)", "not importable"))
    try:  # metadata only: importing pygame prints a banner
        from importlib.metadata import version

        rows.append(("pygame (preview window)", version("pygame")))
    except Exception:  # noqa: BLE001 - PackageNotFoundError or broken metadata: reported as not installed
        rows.append(("pygame (preview window)", "not installed"))
    return rows


FUNCS: dict[str, Callable[[], list[tuple[str, str]]]] = {
    "versions": versions,
    "codecs": codecs,
    "cuda": cuda,
    "backends": backends_rows,
    "weights": weights,
    "display": display,
}


def collect() -> dict[str, list[tuple[str, str]]]:
    """Every section; a section that fails reports its error as a row instead of raising."""
    out = {}
    for name in SECTIONS:
        try:
            out[name] = FUNCS[name]()
        except Exception as e:  # noqa: BLE001 - a failing section is reported as a row; doctor never shows a traceback
            out[name] = [("error", f"{type(e).__name__}: {e}")]
    return out


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def doctor(as_json: bool) -> None:
    """Show versions, codecs, CUDA devices, usable backends, weights and display support."""
    report = collect()
    if as_json:
        click.echo(json.dumps({k: dict(v) for k, v in report.items()}, indent=2))
        return
    for name in SECTIONS:
        click.echo(f"[{name}]")
        rows = report[name]
        width = max((len(k) for k, _ in rows), default=0)
        for k, v in rows:
            click.echo(f"  {k.ljust(width)}  {v}")
        click.echo("")
