"""``export-onnx`` and ``build-engine``: the network as ONNX, or as a TensorRT FP16 engine."""

from __future__ import annotations

import click

from psenet_stream.errors import BackendError

WEIGHTS_HELP = "Weight file (default: $PSENET_STREAM_WEIGHTS, else the shipped weights)."


@click.command("export-onnx")
@click.option("-o", "--output", default="psenet.onnx", show_default=True, type=click.Path(dir_okay=False), help="Where to write the ONNX file.")
@click.option("--weights", type=click.Path(dir_okay=False), default=None, help=WEIGHTS_HELP)
@click.option("-y", "--overwrite", "--force", "overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option("--atol", type=float, default=1e-4, show_default=True, help="Largest gamma difference to torch the parity check accepts.")
def export_onnx(output: str, weights: str | None, overwrite: bool, atol: float) -> None:
    """Export the gamma network to ONNX (dynamic batch, height and width) and check it.

    The file takes x: float32 (N, 3, H, W) RGB in [0, 1] and returns gamma of the same
    shape; the parity check runs it with onnxruntime against torch on odd sizes.
    """
    import importlib.util

    from psenet_stream import guard
    from psenet_stream.paths import default_weights_path
    from psenet_stream.weights_io import load_model

    guard.check_output(output, [weights or default_weights_path()], overwrite=overwrite, what="ONNX output")
    if not importlib.util.find_spec("onnxscript") or not importlib.util.find_spec("onnxruntime"):
        raise BackendError("ONNX export needs onnx, onnxscript and onnxruntime", "pip install 'psenet-stream[onnx]'")
    from psenet_stream.backends.onnx import export_onnx as export

    model, meta = load_model(weights)
    err = export(model, output, check=True, atol=atol, weights_sha256=meta['sha256'], meta=meta)
    click.echo(f"wrote {output} (weights sha256 {meta['sha256'][:12]}, max |gamma diff| vs torch {err:.2g})")


@click.command("build-engine")
@click.option("--weights", type=click.Path(dir_okay=False), default=None, help=WEIGHTS_HELP)
@click.option("--min", "smin", default="1x3x16x16", show_default=True, help="Smallest input NxCxHxW.")
@click.option("--opt", "sopt", default="8x3x144x256", show_default=True, help="Input shape TensorRT optimises for.")
@click.option("--max", "smax", default="16x3x512x512", show_default=True, help="Largest input NxCxHxW.")
@click.option("--out-dir", type=click.Path(file_okay=False), default=None, help="Where engines go (default: engines/, or $PSENET_STREAM_ENGINES).")
@click.option("-y", "--overwrite", "--force", "force", is_flag=True, help="Rebuild even if a valid engine exists.")
def build_engine(weights: str | None, smin: str, sopt: str, smax: str, out_dir: str | None, force: bool) -> None:
    """Compile the weights to a TensorRT FP16 engine with torch-tensorrt.

    The engine is named by the weights' sha256, the shape range, the GPU and the
    versions, and gets a JSON sidecar; --backend tensorrt reuses it without recompiling
    and refuses it if the weights, GPU or file no longer match. The default range covers
    the default working resolution (long side 256); for --infer-size full build e.g.
    --min 1x3x360x640 --opt 4x3x1080x1920 --max 8x3x2160x3840.
    """
    from psenet_stream.backends import tensorrt as trt

    lo, opt, hi = trt.parse_shape(smin), trt.parse_shape(sopt), trt.parse_shape(smax)
    trt.check_range(lo, opt, hi)
    trt._require_trt()  # a clear error before loading anything when TensorRT or CUDA is missing

    from psenet_stream.commands._common import setup_logging
    from psenet_stream.weights_io import load_model

    setup_logging()
    model, meta = load_model(weights)
    path = trt.build_engine(model, meta, lo, opt, hi, out_dir=out_dir, force=force)
    click.echo(f"engine: {path}")
    click.echo(f"sidecar: {trt.sidecar_path(path)}")
