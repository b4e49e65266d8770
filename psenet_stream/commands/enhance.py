"""``psenet-stream INPUT [-o OUTPUT]``: the default command.

INPUT is a video file, an image, a folder of images, ``-`` (raw frames on stdin), or a live
spec (``/dev/video0``, ``lavfi:...``, ``rtsp://...``). Outputs default to
``<stem>_enhanced.<ext>`` (``<folder>_enhanced/`` for folders, stdout for ``-``) next to
the input, are written under a temporary name and renamed when complete, and never
replace the input or (without --overwrite) an existing file.

Encoder defaults: libx264 (libvpx-vp9 for .webm), --crf 18, --preset veryfast: visually
transparent at about 3x the speed of x264's "medium"; use --preset ultrafast for the
fastest encode or medium for smaller files.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

import click

from psenet_stream.errors import InputError, Interrupted, OutputError, UsageError

log = logging.getLogger("psenet_stream")

# Default temporal smoothing of gamma for video (EMA weight of the previous frame; restarts on
# scene cuts). Measured on 96 frames of Megamind.avi (the demo input, -2 EV segment), onnx
# backend, infer size 256: mean |d log gamma| per frame 0.0066 / 0.0056 / 0.0047 and the largest
# frame-to-frame jump 0.282 / 0.141 / 0.056 at smoothing 0 / 0.5 / 0.8. 0.5 halves the jumps
# with a lag of about one frame; 0.8 lags visibly on real brightness changes.
VIDEO_SMOOTHING = 0.5
BACKENDS = ("auto", "cpu", "onnx", "cuda", "tensorrt")


# --- progress -----------------------------------------------------------------------------
class Progress:
    """A one-line progress readout on stderr: frames/total, fps, ETA (\\r-updated, 5 Hz)."""

    def __init__(self, total: int | None, enabled: bool, stream=None):
        self.total = total
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self._last = 0.0
        self._shown = False

    def __call__(self, stats) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last < 0.2:
            return
        self._last = now
        n, fps = stats.frames_out, stats.fps
        if self.total:
            pct = min(100.0, 100.0 * n / self.total)
            eta = (self.total - n) / fps if fps > 0 else 0.0
            line = f"\r{n}/{self.total} frames ({pct:3.0f}%)  {fps:5.1f} fps  ETA {int(eta) // 60:d}:{int(eta) % 60:02d}"
        else:
            line = f"\r{n} frames  {fps:5.1f} fps"
        if stats.dropped:
            line += f"  {stats.dropped} dropped"
        self.stream.write(line + "   ")
        self.stream.flush()
        self._shown = True

    def done(self) -> None:
        if self._shown:
            self.stream.write("\n")
            self.stream.flush()
            self._shown = False


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event):
    """First SIGINT/SIGTERM: set ``stop`` (finish cleanly). Second one: KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, _frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _infer_size(v: str) -> int | str:
    return "full" if v == "full" else v  # the enhancer validates numbers and explains


def default_output(inp: Path, kind: str) -> Path:
    if kind == "folder":
        return inp.parent / f"{inp.name}_enhanced"
    from psenet_stream.io.specs import extension

    known = extension(inp)
    ext = inp.suffix if (kind == "image" or (known is not None and known.kind == "video" and known.keep_for_output)) else ".mp4"
    return inp.with_name(f"{inp.stem}_enhanced{ext}")


def default_threads() -> int:
    """Inference threads when --threads is not given: half the cores, at least 1.

    Decode and encode run in their own threads next to inference; torch's default (all
    cores) oversubscribes a small machine and spins: measured on the 2-core dev box under
    load, predict_gamma at 256x144 took 26 ms/frame with 1 thread and 435 ms with 2.
    """
    return max(1, (os.cpu_count() or 2) // 2)


def make_enhancer(*, weights, backend, infer_size, strength, smoothing, no_highlight_protection, threads, compile_net=False):
    from psenet_stream.enhancer import Enhancer

    threads = threads or default_threads()

    opts = {"infer_size": _infer_size(infer_size), "strength": strength, "smoothing": smoothing}
    if no_highlight_protection:
        opts["highlight_knee"] = 1.0
    if compile_net:
        opts["compile"] = True
    return Enhancer.from_pretrained(weights=weights, backend=backend, threads=threads, **opts)


@click.command("enhance")
@click.argument("input", metavar="INPUT")
@click.option(
    "-o", "--output", help="Output file, folder, '-' (raw to stdout) or rtsp:// URL. Default: <stem>_enhanced.<ext> next to INPUT."
)
@click.option("--overwrite", is_flag=True, help="Replace an existing output (never the input).")
@click.option(
    "--keep-partial",
    is_flag=True,
    help="On Ctrl-C keep the playable partial output as <name>.partial.<ext> (a live recording is always kept: Ctrl-C ends it).",
)
@click.option("--codec", help="Video encoder (default libx264; libvpx-vp9 for .webm).")
@click.option("--crf", type=click.IntRange(0, 63), help="Encoder quality (default 18 for x264/x265; lower is better).")
@click.option("--preset", help="Encoder speed preset (default veryfast; ultrafast .. veryslow).")
@click.option("--backend", type=click.Choice(BACKENDS), default="auto", show_default=True, help="Inference backend.")
@click.option("--batch", type=click.IntRange(1, 64), help="Frames per inference call (default 4 for files, 8 on a GPU, 1 for live).")
@click.option("--compile", "compile_net", is_flag=True, help="GPU: compile the network with torch.compile (minutes at start; ~4x faster with --infer-size full).")
@click.option("--weights", type=click.Path(dir_okay=False), help="Weight file (default: the shipped weights).")
@click.option("--infer-size", default="256", show_default=True, help="Long side the network runs at, or 'full'.")
@click.option("--strength", type=float, default=1.0, show_default=True, help="0 = off, 1 = the model's correction.")
@click.option(
    "--smoothing", type=float, help=f"Temporal smoothing of the correction, 0..0.95 (default {VIDEO_SMOOTHING} for video, 0 for images)."
)
@click.option("--no-highlight-protection", is_flag=True, help="Let darkening gammas act up to pure white (noisier highlights).")
@click.option("--threads", type=click.IntRange(1, 256), help="CPU threads for inference (default: half the cores, at least 1; decode and encode run beside it).")
@click.option("--size", help="Frame size WxH of raw input ('-'), or the capture size asked of a webcam (/dev/videoN).")
@click.option(
    "--pix-fmt",
    type=click.Choice(["rgb24", "bgr24", "yuv420p"]),
    default="rgb24",
    show_default=True,
    help="Raw pixel format for '-' in and out.",
)
@click.option("--fps", type=float, help="Frame rate of raw input (for a video output; default 30), or asked of a webcam.")
@click.option(
    "--preview",
    type=click.Choice(["none", "window", "http"]),
    default="none",
    is_flag=False,
    flag_value="window",
    show_default=True,
    help="Also show the result live (a bare --preview means window).",
)
@click.option("--bind", default="127.0.0.1", show_default=True, help="Address for --preview http (0.0.0.0: every interface).")
@click.option("--port", type=click.IntRange(0, 65535), default=8090, show_default=True, help="Port for --preview http (0: a free one).")
@click.option("--timeout", "read_timeout", type=float, help="Live input: seconds without frames before the source counts as lost (default 5).")
@click.option("--max-retries", type=click.IntRange(min=0), help="Live input: give up after this many failed reconnects (default: forever).")
@click.option("--progress/--no-progress", default=None, help="Progress line on stderr (default: when stderr is a terminal).")
@click.option("--stats-json", type=click.Path(dir_okay=False), help="Write the run's statistics (fps, latency, drops) as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.option("-v", "--verbose", count=True, help="More detail (-vv for debug).")
def enhance(
    input,
    output,
    overwrite,
    keep_partial,
    codec,
    crf,
    preset,
    backend,
    batch,
    compile_net,
    weights,
    infer_size,
    strength,
    smoothing,
    no_highlight_protection,
    threads,
    size,
    pix_fmt,
    fps,
    preview,
    bind,
    port,
    read_timeout,
    max_retries,
    progress,
    stats_json,
    quiet,
    verbose,
):
    """Enhance a video file, image, folder of images, live stream, or '-' (raw frames)."""
    from psenet_stream.cli import setup_logging

    setup_logging(verbose, quiet)
    from psenet_stream.io.specs import input_kind

    kind = input_kind(input)
    show_progress = (not quiet) and (progress if progress is not None else sys.stderr.isatty())
    enh_kw = {
        "weights": weights,
        "backend": backend,
        "infer_size": infer_size,
        "strength": strength,
        "no_highlight_protection": no_highlight_protection,
        "threads": threads,
        "compile_net": compile_net,
    }
    if kind in ("image", "folder"):
        stats, wrote = _run_images(Path(input), output, overwrite, smoothing, enh_kw, show_progress, batch)
    elif kind == "raw":
        stats, wrote = _run_raw(output, size, pix_fmt, fps, overwrite, smoothing, enh_kw, show_progress, batch, codec, crf, preset)
    else:
        stats, wrote = _run_stream(
            input,
            kind,
            output,
            overwrite,
            keep_partial,
            codec,
            crf,
            preset,
            smoothing,
            enh_kw,
            show_progress,
            batch,
            preview,
            verbose,
            size,
            fps,
            preview_opts={"bind": bind, "port": port} if preview == "http" else {},
            live_extra={k: v for k, v in (("read_timeout", read_timeout), ("max_retries", max_retries)) if v is not None},
        )
    if stats_json:
        Path(stats_json).write_text(json.dumps(stats.as_dict(), indent=2) + "\n")
    if not quiet:
        click.echo(f"{wrote}: {stats.summary()}", err=True)


def _smoothing(smoothing, default):
    return default if smoothing is None else smoothing


def _run_images(inp, output, overwrite, smoothing, enh_kw, show_progress, batch):
    from psenet_stream import pipeline
    from psenet_stream.io.sinks import ImageSink, check_output_path
    from psenet_stream.io.sources import ImageSource
    from psenet_stream.io.specs import is_image_path

    folder = inp.is_dir()
    out = Path(output) if output else default_output(inp, "folder" if folder else "image")
    src = ImageSource(inp, exclude=out if folder else None)
    if folder:
        if out.exists() and not out.is_dir():
            raise OutputError(f"output {out} is a file, but the input is a folder", "pass an output folder with -o")
        if out.resolve() == inp.resolve():
            raise OutputError("the output folder is the input folder", "choose another folder with -o; inputs are never overwritten")
        out.mkdir(parents=True, exist_ok=True)
    else:
        if out.is_dir():  # -o some/folder/: the default name inside it
            out = out / default_output(inp, "image").name
        if output and not is_image_path(out):
            raise OutputError(f"output {out} is not an image name", "use an image extension: jpg, png, bmp, tif, webp")
        check_output_path(out, [inp], overwrite=overwrite)
    enh = make_enhancer(smoothing=_smoothing(smoothing, 0.0), **enh_kw)
    sink = ImageSink(out, folder=folder, overwrite=overwrite)
    stop = threading.Event()
    prog = Progress(len(src.paths), show_progress)
    with stop_on_signals(stop):
        try:
            stats = pipeline.run(src, enh, [sink], batch=batch or 1, stop=stop, progress=prog)
        finally:
            prog.done()
    if stats.interrupted:
        raise Interrupted(f"interrupted after {stats.frames_out} of {len(src.paths)} images (those are written)")
    if src.skipped:
        log.warning("warning: %d unreadable image(s) skipped", len(src.skipped))
    return stats, f"wrote {out}"


def _run_raw(output, size, pix_fmt, fps, overwrite, smoothing, enh_kw, show_progress, batch, codec, crf, preset):
    from psenet_stream import pipeline
    from psenet_stream.io.sinks import RawSink
    from psenet_stream.io.sources import RawSource

    src = RawSource(size=size, pix_fmt=pix_fmt, fps=fps)
    enh = make_enhancer(smoothing=_smoothing(smoothing, VIDEO_SMOOTHING), **enh_kw)
    stop = threading.Event()
    if output not in (None, "-"):
        from fractions import Fraction

        src.info.fps = Fraction(fps or 30).limit_denominator(1001)
        src.info.time_base = 1 / src.info.fps
        return _run_file_output(
            src, enh, Path(output), None, [], overwrite, False, codec, crf, preset, stop, Progress(None, show_progress), batch, []
        )
    sink = RawSink(pix_fmt=pix_fmt)
    with stop_on_signals(stop):
        try:
            stats = pipeline.run(src, enh, [sink], batch=batch or 1, stop=stop, progress=Progress(None, show_progress))
            sink.close()
        except BrokenPipeError:
            # the reader of our stdout went away (e.g. `| head -c`): stop quietly
            with contextlib.suppress(OSError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise SystemExit(0) from None
    return stats, "wrote stdout"


def _run_stream(
    spec,
    kind,
    output,
    overwrite,
    keep_partial,
    codec,
    crf,
    preset,
    smoothing,
    enh_kw,
    show_progress,
    batch,
    preview,
    verbose=0,
    size=None,
    fps=None,
    preview_opts=None,
    live_extra=None,
):
    from psenet_stream.io.sinks import open_preview_sink
    from psenet_stream.io.sources import open_source
    from psenet_stream.io.specs import is_live_output

    live = kind == "live"
    if live and not output and preview == "none":
        raise UsageError("a live input needs an output", "pass -o out.mp4, -o rtsp://server/path, or --preview window|http")
    enh = None
    if live:
        from psenet_stream.io.live import preflight

        preflight(spec)  # a missing camera fails in milliseconds, before the model loads
    if live:  # load the model first: a camera starts delivering (and dropping) frames once opened
        enh = make_enhancer(smoothing=_smoothing(smoothing, VIDEO_SMOOTHING), **enh_kw)
    live_opts = {k: v for k, v in (("size", size), ("fps", fps)) if v is not None} if live else {}  # webcam mode
    if live:
        live_opts.update(live_extra or {})
    src = open_source(spec, **live_opts)  # a file source decodes its first frame: a bad input fails before any output exists
    try:
        info = src.info
        inp = Path(spec) if kind == "video" else None
        if verbose:
            click.echo(
                f"input: {info.description or spec}: {info.width}x{info.height}, {float(info.fps or 0):.3g} fps, "
                f"{info.frames or 'unknown'} frames, codec {info.codec}, rotation {info.rotation}",
                err=True,
            )
        to_file = not (output and is_live_output(output)) and not (output is None and live)
        if to_file:  # check the output before loading the model: mistakes fail fast
            from psenet_stream.io.sinks import check_output_path
            from psenet_stream.io.video import check_video_output

            out = Path(output) if output else default_output(inp, "video")
            if out.is_dir() and inp is not None:  # -o some/folder/: the default name inside it
                out = out / default_output(inp, "video").name
            check_output_path(out, [inp] if inp else [], overwrite=overwrite)
            check_video_output(out)
        if enh is None:
            enh = make_enhancer(smoothing=_smoothing(smoothing, VIDEO_SMOOTHING), **enh_kw)
        if verbose:
            click.echo(f"enhancer: {enh.describe()}", err=True)
        stop = threading.Event()
        extra = []
        if preview != "none":  # 'q' in the window sets stop: the run ends cleanly, as on Ctrl-C
            extra.append(open_preview_sink(preview, info, stop=stop, source=src, **(preview_opts or {})))
        prog = Progress(info.frames if not info.live else None, show_progress)
        if not to_file:
            return _run_live_output(src, enh, output, info, stop, prog, batch, extra)
        audio = inp if (inp is not None and getattr(src, "has_audio", False)) else None
        return _run_file_output(
            src, enh, out, audio, [inp] if inp else [], overwrite, keep_partial, codec, crf, preset, stop, prog, batch, extra
        )
    finally:
        src.close()


def _run_live_output(src, enh, output, info, stop, prog, batch, extra):
    from psenet_stream import pipeline
    from psenet_stream.io.sinks import open_live_sink

    sinks = list(extra)
    if output:
        sinks.insert(0, open_live_sink(output, info))
    try:
        with stop_on_signals(stop):
            stats = pipeline.run(src, enh, sinks, batch=batch, stop=stop, progress=prog)
    finally:
        prog.done()
        for s in sinks:
            with contextlib.suppress(Exception):
                s.close()
    return stats, f"streamed to {output or 'preview'}"


def _run_file_output(src, enh, out, audio_from, inputs, overwrite, keep_partial, codec, crf, preset, stop, prog, batch, extra):
    from psenet_stream import pipeline
    from psenet_stream.io.live import LockSize
    from psenet_stream.io.sinks import AtomicFileSink, check_output_path
    from psenet_stream.io.video import VideoFileSink

    check_output_path(out, inputs, overwrite=overwrite)
    info = src.info

    def make(tmp):
        vfs = VideoFileSink(tmp, info, codec=codec, crf=crf, preset=preset, audio_from=audio_from, name=out.name)
        return LockSize(vfs) if info.live else vfs  # a camera may come back in another resolution

    sink = AtomicFileSink(out, make, overwrite=overwrite)
    sinks = [sink, *extra]
    try:
        with stop_on_signals(stop):
            stats = pipeline.run(src, enh, sinks, batch=batch, stop=stop, progress=prog)
    except BaseException:
        prog.done()
        # a live recording cannot be made again: keep what was recorded (.partial) on an error
        sink.abort(keep_partial=bool(info.live))
        if sink.kept:
            log.warning("the recording so far is kept as %s", sink.kept)
        for s in extra:
            with contextlib.suppress(Exception):
                s.close()
        raise
    prog.done()
    for s in extra:
        with contextlib.suppress(Exception):
            s.close()
    if stats.interrupted and not info.live:  # a live recording has no end but Ctrl-C: keep it (below)
        sink.abort(keep_partial=keep_partial)
        if sink.kept:
            raise Interrupted(f"interrupted after {stats.frames_out} frames; the partial output is {sink.kept}")
        raise Interrupted(f"interrupted after {stats.frames_out} frames; no output written", "pass --keep-partial to keep a playable partial file")
    if stats.frames_out == 0:
        sink.abort(keep_partial=False)
        raise InputError("no frames were read from the input", "check the input plays")
    sink.close()
    return stats, f"wrote {out}"
