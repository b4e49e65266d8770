"""``psenet-stream INPUT [-o OUTPUT]``: the default command.

INPUT is a video file, an image, a folder of images, ``-`` (raw frames on stdin), or a live
spec (``/dev/video0``, ``lavfi:...``, ``rtsp://...``). Outputs default to
``<stem>_enhanced.<ext>`` (``<folder>_enhanced/`` for folders, stdout for ``-``) next to
the input, are written under a temporary name and renamed when complete, and never
replace the input or (without --overwrite) an existing file.

Encoder defaults: libx264 (libvpx-vp9 for .webm), --crf 18, --preset veryfast: visually
transparent at about 3x the speed of x264's "medium"; use --preset ultrafast for the
fastest encode or medium for smaller files.

Every input kind opens its source and sinks (``io.open_sink``) and runs
``pipeline.run_to_sinks``, whose ``finish`` commits, aborts or keeps a partial output.
Live inputs go through ``run_live``, which ``psenet-stream webcam`` shares.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import click

from psenet_stream.commands._common import (  # noqa: F401  (VIDEO_SMOOTHING, default_threads re-exported)
    VIDEO_SMOOTHING,
    EnhancerOptions,
    PreviewOptions,
    Progress,
    ReportOptions,
    check_stats_json,
    default_threads,
    enhancer_options,
    make_enhancer,
    preview_options,
    report_options,
    setup_logging,
    stop_on_signals,
    write_stats_json,
)
from psenet_stream.errors import InputError, Interrupted, OutputError, UsageError
from psenet_stream.io.redact import mask_url

log = logging.getLogger("psenet_stream")


@dataclass(frozen=True)
class OutputOptions:
    """Where and how the result is written."""

    output: str | None = None
    overwrite: bool = False
    keep_partial: bool = False
    codec: str | None = None
    crf: int | None = None
    preset: str | None = None
    maps: tuple[str, ...] = ()  # --map, ffmpeg's stream selection (io/streams.py)
    hdr: str = "keep"  # --hdr keep|sdr
    quality: int | None = None  # --quality, JPEG / WebP images

    def encode(self) -> dict:
        return {"codec": self.codec, "crf": self.crf, "preset": self.preset}

    def file_options(self) -> dict:
        """What only a video file output takes: stream selection and the HDR choice."""
        return {"maps": self.maps, "hdr": self.hdr}


@dataclass(frozen=True)
class InputOptions:
    """How to read raw frames ('-') or a live source."""

    size: str | None = None
    pix_fmt: str = "rgb24"
    fps: float | None = None
    read_timeout: float | None = None
    max_retries: int | None = None

    def live(self) -> dict:
        kw = {"size": self.size, "fps": self.fps, "read_timeout": self.read_timeout, "max_retries": self.max_retries}
        return {k: v for k, v in kw.items() if v is not None}


def default_output(inp: Path, kind: str) -> Path:
    """``<stem>_enhanced.<ext>`` next to the input (``<folder>_enhanced`` for folders); a video
    whose container a default output does not keep becomes .mp4."""
    from psenet_stream.io.specs import extension

    if kind == "folder":
        return inp.parent / f"{inp.name}_enhanced"
    known = extension(inp)
    keep = kind == "image" or (known is not None and known.kind == "video" and known.keep_for_output)
    return inp.with_name(f"{inp.stem}_enhanced{inp.suffix if keep else '.mp4'}")


def _output_options(f):
    from psenet_stream.commands._common import option_group

    return option_group(OutputOptions, "out", [
        click.option("-o", "--output", help="Output file, folder, '-' (raw to stdout) or rtsp:// URL. Default: <stem>_enhanced.<ext> next to INPUT."),
        click.option("--overwrite", is_flag=True, help="Replace an existing output (never the input)."),
        click.option("--keep-partial", is_flag=True, help="On Ctrl-C keep the playable partial output as <name>.partial.<ext> (a live recording is always kept: Ctrl-C ends it)."),
        click.option("--codec", help="Video encoder (default libx264; libvpx-vp9 for .webm)."),
        click.option("--crf", type=click.IntRange(0, 63), help="Encoder quality (default 18 for x264/x265; lower is better)."),
        click.option("--preset", help="Encoder speed preset (default veryfast; ultrafast .. veryslow)."),
        click.option("--map", "maps", multiple=True, metavar="SPEC", help="Streams to keep, as ffmpeg: 0:v:0, 0:a:1, 0:s?, -0:a:1 (leave out). Default: every stream the output can hold."),
        click.option("--quality", type=click.IntRange(1, 100), help="JPEG / WebP image quality, 1..100 (default 95)."),
        click.option("--hdr", type=click.Choice(["keep", "sdr"]), default="keep", show_default=True, help="HDR (PQ/HLG) input: keep it HDR (10-bit, tags and metadata kept) or tone-map to SDR."),
    ])(f)


def _input_options(f):
    from psenet_stream.commands._common import option_group

    return option_group(InputOptions, "inp", [
        click.option("--size", help="Frame size WxH of raw input ('-'), or the capture size asked of a webcam (/dev/videoN)."),
        click.option("--pix-fmt", type=click.Choice(["rgb24", "bgr24", "yuv420p"]), default="rgb24", show_default=True, help="Raw pixel format for '-' in and out."),
        click.option("--fps", type=float, help="Frame rate of raw input (for a video output; default 30), or asked of a webcam."),
        click.option("--timeout", "read_timeout", type=float, help="Live input: seconds without frames before the source counts as lost (default 5)."),
        click.option("--max-retries", type=click.IntRange(min=0), help="Live input: give up after this many failed reconnects (default: forever)."),
    ])(f)


@click.command("enhance")
@click.argument("input", metavar="INPUT")
@_output_options
@enhancer_options()
@_input_options
@preview_options()
@report_options()
def enhance(input: str, out: OutputOptions, enhancer: EnhancerOptions, inp: InputOptions, preview: PreviewOptions, report: ReportOptions):
    """Enhance a video file, image, folder of images, live stream, or '-' (raw frames)."""
    from psenet_stream.io.specs import input_kind

    setup_logging(report.verbose, report.quiet)
    check_stats_json(report.stats_json, [input, out.output], overwrite=out.overwrite)
    kind = input_kind(input)
    progress = report.show_progress()
    if kind in ("image", "folder"):
        stats, wrote = _run_images(Path(input), out, enhancer, progress)
    elif kind == "raw":
        stats, wrote = _run_raw(out, enhancer, inp, progress)
    elif kind == "live":
        stats, wrote = _run_live_input(input, out, enhancer, inp, preview, report)
    else:
        stats, wrote = _run_video(Path(input), out, enhancer, preview, report)
    write_stats_json(report.stats_json, stats)
    if not report.quiet:
        click.echo(f"{wrote}: {stats.summary()}", err=True)


def _run(src, enh, sinks, prog: Progress, *, keep_partial=False, **run_kw):
    """The pipeline under the signal handler, every output finished; the progress line ended."""
    from psenet_stream import pipeline

    stop = run_kw.pop("stop", None) or threading.Event()
    try:
        with stop_on_signals(stop):
            return pipeline.run_to_sinks(src, enh, sinks, keep_partial=keep_partial, stop=stop, progress=prog, **run_kw)
    finally:
        prog.done()


def _image_output(inp: Path, out: OutputOptions) -> Path:
    """The output of an image or folder run, checked (never the input, never a file for a folder)."""
    from psenet_stream.io.specs import is_image_path

    folder = inp.is_dir()
    dest = Path(out.output) if out.output else default_output(inp, "folder" if folder else "image")
    if folder:
        if dest.exists() and not dest.is_dir():
            raise OutputError(f"output {dest} is a file, but the input is a folder", "pass an output folder with -o")
        if dest.resolve() == inp.resolve():
            raise OutputError("the output folder is the input folder", "choose another folder with -o; inputs are never overwritten")
        return dest
    if dest.is_dir():  # -o some/folder/: the default name inside it
        dest = dest / default_output(inp, "image").name
    if out.output and not is_image_path(dest):
        raise OutputError(f"output {dest} is not an image name", "use an image extension: jpg, png, bmp, tif, webp")
    return dest


def _run_images(inp: Path, out: OutputOptions, enhancer: EnhancerOptions, progress: bool):
    from psenet_stream.io.sinks import open_sink
    from psenet_stream.io.sources import ImageSource

    dest = _image_output(inp, out)
    src = ImageSource(inp, exclude=dest if inp.is_dir() else None)  # no images: fails before any output exists
    if inp.is_dir():
        dest.mkdir(parents=True, exist_ok=True)
    sink = open_sink(dest, src.info, inputs=[inp], overwrite=out.overwrite, quality=out.quality)
    enh = make_enhancer(enhancer, video=False)
    stats, _ = _run(src, enh, [sink], Progress(len(src.paths), progress), batch=enhancer.batch or 1)
    if stats.interrupted:
        raise Interrupted(f"interrupted after {stats.frames_out} of {len(src.paths)} images (those are written)")
    if src.skipped:
        log.warning("warning: %d unreadable image(s) skipped", len(src.skipped))
    return stats, f"wrote {dest}"


def _run_raw(out: OutputOptions, enhancer: EnhancerOptions, inp: InputOptions, progress: bool):
    from fractions import Fraction

    from psenet_stream.io.raw import RawSource
    from psenet_stream.io.sinks import open_sink

    src = RawSource(size=inp.size, pix_fmt=inp.pix_fmt, fps=inp.fps)
    enh = make_enhancer(enhancer, video=True)
    if out.output not in (None, "-"):
        src.info.fps = Fraction(inp.fps or 30).limit_denominator(1001)
        src.info.time_base = 1 / src.info.fps
        return _to_video_file(src, enh, Path(out.output), out, inputs=[], audio_from=None, extra=[], prog=Progress(None, progress), batch=enhancer.batch)
    sink = open_sink("-", src.info, pix_fmt=inp.pix_fmt)
    try:
        stats, _ = _run(src, enh, [sink], Progress(None, progress), batch=enhancer.batch or 1)
    except BrokenPipeError:
        # the reader of our stdout went away (e.g. `| head -c`): stop quietly
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(0) from None
    return stats, "wrote stdout"


def _video_output(inp: Path, out: OutputOptions) -> Path:
    from psenet_stream.io.sinks import check_output_path
    from psenet_stream.io.video import check_video_output

    dest = Path(out.output) if out.output else default_output(inp, "video")
    if dest.is_dir():  # -o some/folder/: the default name inside it
        dest = dest / default_output(inp, "video").name
    check_output_path(dest, [inp], overwrite=out.overwrite)
    check_video_output(dest)
    return dest


def _run_video(inp: Path, out: OutputOptions, enhancer: EnhancerOptions, preview: PreviewOptions, report: ReportOptions):
    from psenet_stream.io.sinks import open_sink
    from psenet_stream.io.specs import is_live_output
    from psenet_stream.io.video import VideoFileSource

    with VideoFileSource(inp, maps=out.maps) as src:  # decodes its first frame: a bad input fails before any output exists
        info = src.info
        if report.verbose:
            click.echo(
                f"input: {info.description}: {info.width}x{info.height}, {float(info.fps or 0):.3g} fps, "
                f"{info.frames or 'unknown'} frames, codec {info.codec}, rotation {info.rotation}",
                err=True,
            )
            for line in src.describe_streams():
                click.echo(line, err=True)
        to_stream = bool(out.output) and is_live_output(out.output)
        dest = None if to_stream else _video_output(inp, out)  # checked before the model loads: mistakes fail fast
        enh = make_enhancer(enhancer, video=True)
        if getattr(src, "hdr_transfer", None):  # PQ / HLG: estimated on an SDR rendition, kept HDR (or tone-mapped: --hdr sdr)
            from psenet_stream.hdr import HdrEnhancer

            enh = HdrEnhancer(enh, src.hdr_transfer, "sdr" if to_stream else out.hdr)  # a live output is 8-bit SDR
        if report.verbose:
            click.echo(f"enhancer: {enh.describe()}", err=True)
        stop = threading.Event()
        extra = [] if preview.preview == "none" else [open_sink(f"preview:{preview.preview}", info, stop=stop, source=src, **preview.sink_options())]
        prog = Progress(info.frames, report.show_progress())
        if to_stream:
            stats, _ = _run(src, enh, [open_sink(out.output, info), *extra], prog, batch=enhancer.batch, stop=stop)
            return stats, f"streamed to {mask_url(out.output)}"
        audio = inp  # its other streams, tags and chapters (io/streams.py)
        return _to_video_file(src, enh, dest, out, inputs=[inp], audio_from=audio, extra=extra, prog=prog, batch=enhancer.batch, stop=stop)


def _to_video_file(src, enh, dest: Path, out: OutputOptions, *, inputs, audio_from, extra, prog, batch, stop=None):
    """A video file output (temporary name, committed at the end), plus any preview sinks."""
    from psenet_stream.io.sinks import open_sink

    live = src.info.live
    sink = open_sink(dest, src.info, inputs=inputs, audio_from=audio_from, overwrite=out.overwrite, live=live, **out.encode(), **out.file_options())
    stats, partial = _run(src, enh, [sink, *extra], prog, keep_partial=out.keep_partial, batch=batch, stop=stop)
    if stats.interrupted and not live:  # a live recording has no end but Ctrl-C: it is kept
        if partial is not None:
            raise Interrupted(f"interrupted after {stats.frames_out} frames; the partial output is {partial}")
        raise Interrupted(f"interrupted after {stats.frames_out} frames; no output written", "pass --keep-partial to keep a playable partial file")
    if stats.frames_out == 0:
        raise InputError("no frames were read from the input", "check the input plays")
    return stats, f"wrote {dest}"


def _run_live_input(spec: str, out: OutputOptions, enhancer: EnhancerOptions, inp: InputOptions, preview: PreviewOptions, report: ReportOptions):
    if not out.output and preview.preview == "none":
        raise UsageError("a live input needs an output", "pass -o out.mp4, -o rtsp://server/path, or --preview window|http")
    stats, _ = run_live(
        spec,
        enhancer,
        preview,
        output=out.output,
        overwrite=out.overwrite,
        encode=out.encode(),
        source_opts=inp.live(),
        progress=report.show_progress(),
        verbose=report.verbose,
    )
    if out.output and not _is_stream(out.output) and stats.frames_out == 0:
        raise InputError("no frames were read from the input", "check the input plays")
    return stats, f"{'wrote' if out.output and not _is_stream(out.output) else 'streamed to'} {mask_url(out.output) if out.output else 'preview'}"


def _is_stream(spec: str) -> bool:
    from psenet_stream.io.specs import is_live_output

    return is_live_output(spec)


def run_live(spec: str, enhancer: EnhancerOptions, preview: PreviewOptions, *, output=None, overwrite=False, encode=None, source_opts=None, output_opts=None, duration=None, progress=False, verbose=0):
    """A live source through the enhancer to a preview and/or an output, until q / Ctrl-C /
    ``duration`` seconds / the source gives up. Returns (Stats, the partial recording kept or None).

    Order matters: a missing camera or display fails before the model loads, and the model
    loads before the camera opens (a live source drops frames while nobody reads)."""
    from psenet_stream.io.live import open_live_source, preflight
    from psenet_stream.io.sinks import open_sink

    preflight(spec)
    stop = threading.Event()
    window = open_sink("preview:window", None, stop=stop, **preview.sink_options()) if preview.preview == "window" else None
    enh = make_enhancer(enhancer, video=True)
    src = open_live_source(spec, **(source_opts or {}))
    try:
        info = src.info
        sinks = [window] if window is not None else []
        if window is not None:
            window.source = src  # the window shows the source's drops
        if preview.preview == "http":
            sinks.append(open_sink("preview:http", info, **preview.sink_options()))
        if output:
            opts = dict(output_opts or {}) if _is_stream(output) else {k: v for k, v in (encode or {}).items() if v is not None}
            sinks.insert(0, open_sink(output, info, overwrite=overwrite, live=True, **opts))
        log.info("live: %s -> %s; %s", info.description, ", ".join(type(s).__name__ for s in sinks), enh.describe())
        if verbose:
            click.echo(f"enhancer: {enh.describe()}", err=True)
        # a stopped live run ends at once even while the source is reconnecting (the pipeline
        # does not wait for it); closing the source below ends its reader
        return _run(src, enh, sinks, Progress(None, progress), batch=1, live=True, stop=stop, max_seconds=duration)
    finally:
        stop.set()
        src.close()
