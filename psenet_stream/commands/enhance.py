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
    PRESETS,
    VIDEO_SMOOTHING,
    BitrateType,
    EncoderType,
    EnhancerOptions,
    FiniteFloat,
    KeyValueType,
    PreviewOptions,
    Progress,
    ReportOptions,
    SizeType,
    TimeType,
    check_stats_json,
    default_threads,
    enhancer_options,
    make_enhancer,
    preview_options,
    quiet_libraries,
    report_options,
    setup_logging,
    stop_on_signals,
    write_stats_json,
)
from psenet_stream.errors import InputError, Interrupted, OutputError, PsenetError, UsageError
from psenet_stream.io.redact import mask_url

log = logging.getLogger("psenet_stream")


@dataclass(frozen=True)
class OutputOptions:
    """Where and how the result is written."""

    output: str | None = None
    overwrite: bool = False
    skip_existing: bool = False
    keep_partial: bool = False
    codec: str | None = None
    crf: int | None = None
    preset: str | None = None
    bitrate: int | None = None
    maxrate: int | None = None
    encoder_opt: tuple[tuple[str, str], ...] = ()
    x264_params: str | None = None
    maps: tuple[str, ...] = ()  # --map, ffmpeg's stream selection (io/streams.py)
    hdr: str = "keep"  # --hdr keep|sdr
    quality: int | None = None  # --quality, JPEG / WebP images
    protect: tuple[str, ...] = ()  # other inputs of the same command: never written either

    def inputs(self, inp) -> list[Path]:
        """What the output guard protects: this run's input and every other input given."""
        return [Path(inp), *(Path(p) for p in self.protect)]

    def encode(self, pix_fmt: str | None = None) -> dict:
        """The video sink's encoder options (``pix_fmt``: --pix-fmt when it is the encoder's)."""
        opts = dict(self.encoder_opt)
        if self.x264_params:
            opts.setdefault("x265-params" if (self.codec or "").startswith(("libx265", "hevc")) else "x264-params", self.x264_params)
        return {"codec": self.codec, "crf": self.crf, "preset": self.preset, "pix_fmt": pix_fmt, "bitrate": self.bitrate, "maxrate": self.maxrate, "encoder_opts": opts or None}

    def file_options(self) -> dict:
        """What only a video file output takes: stream selection and the HDR choice."""
        return {"maps": self.maps, "hdr": self.hdr}


@dataclass(frozen=True)
class InputOptions:
    """How to read raw frames ('-') or a live source."""

    size: str | None = None
    pix_fmt: str | None = None
    fps: float | None = None
    read_timeout: float | None = None
    max_retries: int | None = None
    start: float = 0.0
    duration: float | None = None
    frames: int | None = None
    realtime: bool = False

    @property
    def raw_pix_fmt(self) -> str:
        return self.pix_fmt or "rgb24"

    def trim(self) -> dict:
        return {"start": self.start, "duration": self.duration, "max_frames": self.frames}

    @property
    def trimmed(self) -> bool:
        return bool(self.start) or self.duration is not None or self.frames is not None

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
        click.option("-o", "--output", help="Output file, folder, image sequence (out_%04d.png), '-' (raw to stdout) or rtsp:// URL. Default: <stem>_enhanced.<ext> next to INPUT. A folder when there are several inputs."),
        click.option("-y", "--overwrite", "--force", "overwrite", is_flag=True, help="Replace existing outputs (never an input). --force is the old spelling."),
        click.option("-n", "--skip-existing", "--no-overwrite", "skip_existing", is_flag=True, help="Never overwrite: skip every input whose output already exists (exit 0)."),
        click.option("--keep-partial", is_flag=True, help="On Ctrl-C keep the playable partial output as <name>.partial.<ext> (a live recording is always kept: Ctrl-C ends it)."),
        click.option("-c", "--codec", type=EncoderType(), help="Video encoder: auto (a hardware encoder that works here, else libx264), libx264, libx265, libvpx-vp9, ... (default libx264; libvpx-vp9 for .webm)."),
        click.option("--crf", type=click.IntRange(0, 63), help="Constant quality for x264/x265/vpx/aom/svt-av1 (default 18 for x264/x265; lower is better); refused for encoders that ignore it."),
        click.option("--preset", type=click.Choice(PRESETS), help="Encoder speed preset (default veryfast)."),
        click.option("-b", "--bitrate", type=BitrateType(), help="Average video bit rate instead of constant quality, e.g. 4M or 2500k."),
        click.option("--maxrate", type=BitrateType(), help="Peak video bit rate (VBV; the buffer is twice as large), e.g. 6M."),
        click.option("--encoder-opt", "encoder_opt", type=KeyValueType(), multiple=True, help="An encoder option passed through, KEY=VALUE (repeatable), e.g. --encoder-opt tune=film --encoder-opt g=60."),
        click.option("--x264-params", help="x264 (or x265 with --codec libx265) parameters, as ffmpeg's -x264-params, e.g. 'keyint=60:bframes=2'."),
        click.option("--map", "maps", multiple=True, metavar="SPEC", help="Streams to keep, as ffmpeg: 0:v:0, 0:a:1, 0:s?, -0:a:1 (leave out). Default: every stream the output can hold."),
        click.option("--quality", type=click.IntRange(1, 100), help="JPEG / WebP image quality, 1..100 (default 95)."),
        click.option("--hdr", type=click.Choice(["keep", "sdr"]), default="keep", show_default=True, help="HDR (PQ/HLG) input: keep it HDR (10-bit, tags and metadata kept) or tone-map to SDR."),
    ])(f)


def _input_options(f):
    from psenet_stream.commands._common import option_group

    return option_group(InputOptions, "inp", [
        click.option("--size", type=SizeType(), help="Frame size WxH of raw input ('-' with --size: raw frames; '-' without: a container), or the capture size asked of a webcam (/dev/videoN)."),
        click.option("--pix-fmt", help="Raw pixel format of '-' in and out (rgb24 (default), bgr24, yuv420p); for a video file output, the encoder's pixel format (yuv420p, yuv444p, yuv420p10le, ...)."),
        click.option("--fps", type=FiniteFloat(0, 1000, min_open=True), help="Frame rate of raw input or an image sequence (default 30 / 25), or asked of a webcam."),
        click.option("--timeout", "read_timeout", type=FiniteFloat(0, 3600, min_open=True), help="Live input: seconds without frames before the source counts as lost (default 5)."),
        click.option("--max-retries", type=click.IntRange(min=0), help="Live input: give up after this many failed reconnects (default: forever)."),
        click.option("-ss", "--start", type=TimeType(), default=0.0, help="Files: start this far into the input (seconds or [HH:]MM:SS[.ms]); audio is cut to match."),
        click.option("-t", "--duration", type=TimeType(), help="Files: write at most this long (seconds or [HH:]MM:SS[.ms]); audio is cut to match."),
        click.option("--frames", "frames", type=click.IntRange(min=1), help="Files: write at most this many frames (ffmpeg's -frames:v); audio is cut to match."),
        click.option("-re", "--realtime", "realtime", is_flag=True, help="Files: read the input at its own frame rate (ffmpeg's -re), e.g. to publish a file to rtsp://. lavfi: graphs are always paced."),
    ])(f)


@click.command("enhance")
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@_output_options
@enhancer_options()
@_input_options
@preview_options()
@report_options()
def enhance(inputs: tuple[str, ...], out: OutputOptions, enhancer: EnhancerOptions, inp: InputOptions, preview: PreviewOptions, report: ReportOptions):
    """Enhance video files, images, folders of images, image sequences (frame_%04d.png), a
    live stream, or '-' (stdin: a container, or raw frames with --size). Options may come
    before or after the inputs; several inputs (or a glob) need -o to be a folder."""
    setup_logging(report.verbose, report.quiet)
    quiet_libraries(report.verbose, report.quiet)
    if out.overwrite and out.skip_existing:
        raise UsageError("-y (overwrite) and -n (never overwrite) contradict each other", "pass one of them")
    specs = expand_inputs(inputs)
    if len(specs) > 1:
        _run_many(specs, out, enhancer, inp, preview, report)
        return
    _run_one(specs[0], out, enhancer, inp, preview, report)


def expand_inputs(tokens: tuple[str, ...] | list[str]) -> list[str]:
    """The inputs, with globs the shell did not expand (quoted, or on Windows) expanded in
    sorted order; a glob that matches nothing is an InputError."""
    import glob

    from psenet_stream.io.specs import is_live_spec, is_sequence_pattern

    out: list[str] = []
    for t in tokens:
        if t in ("-", "pipe:", "pipe:0") or is_live_spec(t) or os.path.exists(t) or is_sequence_pattern(t) or not glob.has_magic(t):
            out.append(t)
            continue
        matches = sorted(glob.glob(t))
        if not matches:
            raise InputError(f"no file matches {t}", "check the pattern (quote it so the shell leaves it to psenet-stream, or not)")
        out.extend(matches)
    return out


def _run_many(specs: list[str], out: OutputOptions, enhancer: EnhancerOptions, inp: InputOptions, preview: PreviewOptions, report: ReportOptions) -> None:
    """Several inputs, one after the other, into the folder -o (else next to each input).
    A failing input is reported and the others still run; the exit code is the worst one."""
    import dataclasses

    from psenet_stream.io.specs import input_kind, is_live_spec

    for s in specs:
        if s in ("-", "pipe:", "pipe:0") or is_live_spec(s):
            raise UsageError(f"{s} cannot be one of several inputs", "run a live source or stdin on its own")
    folder = Path(out.output) if out.output else None
    if folder is not None:
        if folder.exists() and not folder.is_dir():
            raise UsageError(f"-o {folder} is a file, but there are {len(specs)} inputs", "pass an output folder with -o (it is created when missing)")
        if not folder.exists():
            if folder.suffix and not out.output.endswith(("/", os.sep)):
                raise UsageError(f"-o {folder} looks like a file name, but there are {len(specs)} inputs", "pass an output folder with -o, e.g. -o enhanced/")
            folder.mkdir(parents=True)
    if report.stats_json:
        raise UsageError("--stats-json takes one input", "run the inputs one at a time to get each one's statistics")
    failed: list[tuple[str, PsenetError]] = []
    for s in specs:
        dest = None
        if folder is not None:
            kind = input_kind(s)
            dest = str(folder / default_output(Path(s), "folder" if kind == "folder" else ("image" if kind == "image" else "video")).name)
        try:
            _run_one(s, dataclasses.replace(out, output=dest, protect=tuple(specs)), enhancer, inp, preview, report)
        except Interrupted:
            raise
        except PsenetError as e:
            click.echo(f"error: {s}: {e.problem}", err=True)
            failed.append((s, e))
    if failed:
        worst = max(e.exit_code for _, e in failed)
        raise PsenetError(f"{len(failed)} of {len(specs)} inputs failed: {', '.join(s for s, _ in failed)}", "see the errors above", exit_code=worst)


def _run_one(input: str, out: OutputOptions, enhancer: EnhancerOptions, inp: InputOptions, preview: PreviewOptions, report: ReportOptions) -> None:
    from psenet_stream.io.specs import input_kind

    check_stats_json(report.stats_json, [input, out.output], overwrite=out.overwrite)
    kind = input_kind(input)
    if input in ("pipe:", "pipe:0") or (input == "-" and not inp.size):
        kind, input = "video", "pipe:0"  # a container on stdin (raw frames need --size)
        if not out.output:
            raise UsageError("a container on stdin needs an output", "pass -o out.mp4 (or --size WxH to read raw frames)")
        if sys.stdin.isatty():
            raise UsageError("stdin is a terminal, not a video", "pipe a file in (cat in.mp4 | psenet-stream - -o out.mp4), or raw frames with --size WxH")
    progress = report.show_progress()
    if inp.trimmed and kind != "video" and not (kind == "live" and not inp.start and inp.frames is None):
        raise UsageError("-ss / -t / --frames apply to video files and image sequences (and -t to live inputs)", "drop them for images, folders and raw input")
    if kind in ("image", "folder"):
        result = _run_images(Path(input), out, enhancer, progress)
    elif kind == "raw":
        result = _run_raw(out, enhancer, inp, progress)
    elif kind == "live":
        result = _run_live_input(input, out, enhancer, inp, preview, report)
    else:
        result = _run_video(input, out, enhancer, inp, preview, report)
    if result is None:  # -n: the output exists, nothing was done
        return
    stats, wrote = result
    write_stats_json(report.stats_json, stats)
    if not report.quiet:
        unit = "image" if kind in ("image", "folder") or (out.output and _is_image_output(out.output)) else "frame"
        click.echo(f"{wrote}: {stats.summary(unit=unit, latency=kind == 'live', backend=report.verbose > 0)}", err=True)


def _is_image_output(spec: str) -> bool:
    from psenet_stream.io.specs import is_image_path

    return is_image_path(spec)


def _skip(dest: Path, out: OutputOptions) -> bool:
    """-n: True (and a note) when ``dest`` exists, so the input is skipped."""
    if out.skip_existing and dest.exists():
        log.warning("skipped: %s exists (-n)", dest)
        return True
    return False


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
        from psenet_stream import guard

        if dest.exists() and not dest.is_dir():
            raise OutputError(f"output {dest} is a file, but the input is a folder", "pass an output folder with -o")
        return guard.check_output_dir(dest, out.inputs(inp))
    if dest.is_dir():  # -o some/folder/: the default name inside it
        dest = dest / default_output(inp, "image").name
    if out.output and not is_image_path(dest):
        raise OutputError(f"output {dest} is not an image name", "use an image extension: jpg, png, bmp, tif, webp")
    return dest


def _run_images(inp: Path, out: OutputOptions, enhancer: EnhancerOptions, progress: bool):
    from psenet_stream.io.sinks import open_sink
    from psenet_stream.io.sources import ImageSource

    dest = _image_output(inp, out)
    if not inp.is_dir() and _skip(dest, out):
        return None
    src = ImageSource(inp, exclude=dest if inp.is_dir() else None)  # no images: fails before any output exists
    if inp.is_dir():
        if out.skip_existing and dest.is_dir():  # -n: only the images whose output is missing
            before = len(src.paths)
            src.paths = [p for p in src.paths if not (dest / p.relative_to(src.root)).exists()]
            src.info.frames = len(src.paths)
            if before != len(src.paths):
                log.info("skipped %d image(s) whose output exists (-n)", before - len(src.paths))
            if not src.paths:
                log.info("nothing to do: every output in %s exists (-n)", dest)
                return None
        dest.mkdir(parents=True, exist_ok=True)  # its parent was checked (guard.check_output_dir)
    sink = open_sink(dest, src.info, inputs=out.inputs(inp), overwrite=out.overwrite, quality=out.quality)
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

    src = RawSource(size=inp.size, pix_fmt=inp.raw_pix_fmt, fps=inp.fps)
    if out.output not in (None, "-"):
        dest = Path(out.output)
        if _skip(dest, out):
            return None
        _check_encoding(dest, out, None)
        enh = make_enhancer(enhancer, video=True)
        src.info.fps = Fraction(inp.fps or 30).limit_denominator(1001)
        src.info.time_base = 1 / src.info.fps
        return _to_video_file(src, enh, dest, out, inputs=[], audio_from=None, extra=[], prog=Progress(None, progress), batch=enhancer.batch)
    enh = make_enhancer(enhancer, video=True)
    sink = open_sink("-", src.info, pix_fmt=inp.raw_pix_fmt)
    try:
        stats, _ = _run(src, enh, [sink], Progress(None, progress), batch=enhancer.batch or 1)
    except BrokenPipeError:
        # the reader of our stdout went away (e.g. `| head -c`): stop quietly
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(0) from None
    return stats, "wrote stdout"


def _video_output(inp: Path, out: OutputOptions, pix_fmt: str | None) -> Path | None:
    """The checked output file of a video input; None with -n when it exists."""
    from psenet_stream.io.sinks import check_output_path
    from psenet_stream.io.specs import is_sequence_pattern
    from psenet_stream.io.video import check_video_output

    if not out.output and str(inp) == "pipe:0":
        raise UsageError("a container on stdin needs an output", "pass -o out.mp4 (or --size WxH to read raw frames)")
    dest = Path(out.output) if out.output else default_output(inp, "video")
    if dest.is_dir():  # -o some/folder/: the default name inside it
        dest = dest / default_output(inp, "video").name
    if _skip(dest, out):
        return None
    check_output_path(dest, out.inputs(inp), overwrite=out.overwrite)
    if is_sequence_pattern(dest):  # out_%04d.png: images, checked per file as they are written
        if not _is_image_output(dest):
            raise UsageError(f"{dest.name} is a numbered name but not an image", "use an image extension for a sequence, e.g. out_%04d.png")
        return dest
    check_video_output(dest)
    _check_encoding(dest, out, pix_fmt)
    return dest


def _check_encoding(dest: Path, out: OutputOptions, pix_fmt: str | None) -> None:
    """Before the model loads: the encoder takes --crf and --pix-fmt (UsageError, exit 2)."""
    from psenet_stream.io.video import check_encoder_settings

    check_encoder_settings(out.codec, dest, crf=out.crf, pix_fmt=pix_fmt)


def _run_video(input: str, out: OutputOptions, enhancer: EnhancerOptions, inp_opts: InputOptions, preview: PreviewOptions, report: ReportOptions):
    from psenet_stream.io.sinks import open_sink
    from psenet_stream.io.specs import is_live_output, is_sequence_pattern
    from psenet_stream.io.video import VideoFileSource

    inp = Path(input)
    to_stream = bool(out.output) and is_live_output(out.output)
    if not to_stream and out.output and not is_sequence_pattern(input) and input != "pipe:0":
        early = Path(out.output)
        if not early.is_dir() and _skip(early, out):  # -n: before the input is even opened
            return None
    # a video file output: the other streams of a container on stdin are demuxed for it as the video is read
    keeps_streams = not to_stream and not is_sequence_pattern(out.output or "") and not (out.output and _is_image_output(out.output))
    with VideoFileSource(input, sequence_fps=inp_opts.fps, maps=out.maps, copy_streams=keeps_streams, **inp_opts.trim()) as src:  # decodes its first frame: a bad input fails before any output exists
        info = src.info
        if report.verbose:
            click.echo(
                f"input: {info.description}: {info.width}x{info.height}, {float(info.fps or 0):.3g} fps, "
                f"{info.frames or 'unknown'} frames, codec {info.codec}, rotation {info.rotation}",
                err=True,
            )
            for line in src.describe_streams():
                click.echo(line, err=True)
        dest = None if to_stream else _video_output(inp, out, inp_opts.pix_fmt)  # checked before the model loads: mistakes fail fast
        if dest is None and not to_stream:
            return None  # -n: the output exists
        enh = make_enhancer(enhancer, video=True)
        if getattr(src, "hdr_transfer", None):  # PQ / HLG: estimated on an SDR rendition, kept HDR (or tone-mapped: --hdr sdr)
            from psenet_stream.hdr import HdrEnhancer

            enh = HdrEnhancer(enh, src.hdr_transfer, "sdr" if to_stream else out.hdr)  # a live output is 8-bit SDR
        if report.verbose:
            click.echo(f"enhancer: {enh.describe()}", err=True)
        stop = threading.Event()
        extra = [] if preview.preview == "none" else [open_sink(f"preview:{preview.preview}", info, stop=stop, source=src, **preview.sink_options())]
        prog = Progress(info.frames, report.show_progress())
        if inp_opts.realtime:
            src = _Paced(src)
        if to_stream:
            stats, _ = _run(src, enh, [open_sink(out.output, info), *extra], prog, batch=enhancer.batch, stop=stop)
            return stats, f"streamed to {mask_url(out.output)}"
        if is_sequence_pattern(dest):
            sink = open_sink(dest, info, inputs=out.inputs(inp), overwrite=out.overwrite)
            stats, _ = _run(src, enh, [sink, *extra], prog, batch=enhancer.batch, stop=stop)
            if stats.interrupted:
                raise Interrupted(f"interrupted after {stats.frames_out} images (those are written)")
            if not sink.written:
                raise InputError("no frames were read from the input", "check the input plays")
            return stats, f"wrote {sink.written[0].name} .. {sink.written[-1].name}"
        # its other streams, tags and chapters (io/streams.py): read a second time from the file,
        # or, for a container on stdin (read once), handed over by the source as it demuxes them
        # (src.feed); an image sequence has none
        audio = None if (src.stdin or is_sequence_pattern(input)) else inp
        trim = {"audio_shift_s": src.trim_shift_s, "cut_audio": True} if inp_opts.trimmed else {}
        return _to_video_file(src, enh, dest, out, inputs=out.inputs(inp), audio_from=audio, extra=extra, prog=prog, batch=enhancer.batch, stop=stop,
                              pix_fmt=inp_opts.pix_fmt, feed=src.feed, **trim)


class _Paced:
    """-re: hands out a file's frames no faster than their timestamps say (ffmpeg's -re);
    everything else is the wrapped source's."""

    def __init__(self, source):
        self._source = source

    def __iter__(self):
        import time

        origin = None
        for f in self._source:
            if f.pts is not None and f.time_base:
                t, now = float(f.pts * f.time_base), time.perf_counter()
                if origin is None:
                    origin = (now, t)
                elif (wait := origin[0] + (t - origin[1]) - now) > 0:
                    time.sleep(wait)
            yield f

    def __getattr__(self, name):
        return getattr(self._source, name)


def _to_video_file(src, enh, dest: Path, out: OutputOptions, *, inputs, audio_from, extra, prog, batch, stop=None, pix_fmt=None, feed=None, **trim):
    """A video file output (temporary name, committed at the end), plus any preview sinks.
    ``trim``: audio_shift_s / cut_audio of a trimmed input; ``feed``: the other streams of a
    container on stdin (io/video.VideoFileSink)."""
    from psenet_stream.io.sinks import open_sink

    live = src.info.live
    sink = open_sink(dest, src.info, inputs=inputs, audio_from=audio_from, overwrite=out.overwrite, live=live, feed=feed, **out.encode(pix_fmt), **out.file_options(), **trim)
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
    if out.output and not _is_stream(out.output):
        if _skip(Path(out.output), out):
            return None
        _check_encoding(Path(out.output), out, inp.pix_fmt)
    stats, _ = run_live(
        spec,
        enhancer,
        preview,
        output=out.output,
        overwrite=out.overwrite,
        encode=out.encode(inp.pix_fmt),
        source_opts=inp.live(),
        duration=inp.duration,
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
        log.debug("live: %s -> %s; %s", info.description, ", ".join(type(s).__name__ for s in sinks), enh.describe())
        if verbose:
            click.echo(f"enhancer: {enh.describe()}", err=True)
        # a stopped live run ends at once even while the source is reconnecting (the pipeline
        # does not wait for it); closing the source below ends its reader
        return _run(src, enh, sinks, Progress(None, progress), batch=1, live=True, stop=stop, max_seconds=duration)
    finally:
        stop.set()
        src.close()
