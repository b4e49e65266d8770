"""What the commands share: logging, the progress line, signals, and the option groups.

An option group is a set of click options that several commands take; the decorator adds
them and hands the command one frozen dataclass instead of a dozen keyword arguments:

    @click.command()
    @enhancer_options(smoothing_default=None)
    def enhance(input, enhancer: EnhancerOptions): ...
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from psenet_stream.backends import NAMES as BACKEND_NAMES
from psenet_stream.defaults import VIDEO_GAMMA_EVERY, VIDEO_SMOOTHING, VIDEO_STABILIZE

VERBOSITY_KEY = "psenet_stream.verbosity"  # click ctx.meta: (verbose, quiet) given before a command name (cli.py)


def setup_logging(verbose: int = 0, quiet: bool = False) -> None:
    """The package's messages on stderr, no prefixes: -q errors only, default info, -vv debug.

    A -q / -v given before the name of a command that has no such option of its own
    (``psenet-stream -q doctor``) applies too. Only the project's loggers (``psenet_stream``
    and the trainer's ``train``) are configured, one handler each, reused: the root logger is
    left alone, so libraries' info chatter (e.g. the ONNX exporter's) stays quiet."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        more, hush = ctx.meta.get(VERBOSITY_KEY, (0, False))
        verbose, quiet = max(verbose, more), quiet or hush
    level = logging.ERROR if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    for name in ("psenet_stream", "train"):
        log = logging.getLogger(name)
        handler = next((h for h in log.handlers if getattr(h, "psenet_cli", False)), None)
        if handler is None:
            handler = logging.StreamHandler(sys.stderr)
            handler.psenet_cli = True
            handler.setFormatter(logging.Formatter("%(message)s"))
            log.addHandler(handler)
        handler.stream = sys.stderr  # the current stderr (a test runner may have swapped and closed the old one)
        from psenet_stream.io.redact import PROCESS_FILTER

        handler.addFilter(PROCESS_FILTER)  # every secret the CLI was given, masked on every line
        log.setLevel(level)


def quiet_libraries(verbose: int = 0, quiet: bool = False) -> None:
    """FFmpeg's own log (encoder banners): off by default and with -q (PyAV's default), its
    warnings with -v, everything with -vv (io/avlog.py). av is imported only for -v."""
    if (verbose and not quiet) or "av.logging" in sys.modules:  # also turns it off again in a reused process
        from psenet_stream.io.avlog import set_ffmpeg_log

        set_ffmpeg_log(verbose, quiet)


class StatusLine:
    """One status line on stderr: rewritten in place (``\\r``) at most every ``interval`` s on
    a terminal, a plain line at most every ``plain_interval`` s elsewhere (``tty`` overrides the
    detection). ``width``: pad (and cut) each text to this many characters, 0 for none.
    The one progress-line writer: runs and the trainer both use it."""

    def __init__(self, enabled: bool = True, *, tty: bool | None = None, stream=None, interval: float = 0.2, plain_interval: float = 15.0, width: int = 0):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and (self.stream.isatty() if tty is None else tty)
        self.interval, self.plain_interval, self.width = interval, plain_interval, width
        self._last = 0.0
        self._shown = False

    def due(self, force: bool = False) -> bool:
        """Whether an update now would be written (callers skip building the text otherwise)."""
        wait = self.interval if self.tty else self.plain_interval
        return self.enabled and (force or time.perf_counter() - self._last >= wait)

    def update(self, text: str, force: bool = False) -> None:
        if not self.due(force):
            return
        self._last = time.perf_counter()
        body = text[: self.width].ljust(self.width) if self.width else text + "   "
        self.stream.write(("\r" + body) if self.tty else (text + "\n"))
        self.stream.flush()
        self._shown = True

    def close(self) -> None:
        if self._shown and self.tty:
            self.stream.write("\n")
            self.stream.flush()
        self._shown = False


class Progress:
    """A run's progress on one line: frames/total, fps, ETA (\\r-updated, 5 Hz).

    Called with the pipeline's running Stats (anything with ``frames_out``, ``fps`` and
    ``dropped``); ``done()`` ends the line."""

    def __init__(self, total: int | None, enabled: bool, stream=None):
        self.total = total
        self._line = StatusLine(enabled, tty=True, stream=stream, interval=0.2)

    def __call__(self, stats) -> None:
        if not self._line.due():
            return
        n, fps = stats.frames_out, stats.fps
        if self.total:
            pct = min(100.0, 100.0 * n / self.total)
            eta = (self.total - n) / fps if fps > 0 else 0.0
            line = f"{n}/{self.total} frames ({pct:3.0f}%)  {fps:5.1f} fps  ETA {int(eta) // 60:d}:{int(eta) % 60:02d}"
        else:
            line = f"{n} frames  {fps:5.1f} fps"
        if stats.dropped:
            line += f"  {stats.dropped} dropped"
        self._line.update(line)

    def done(self) -> None:
        self._line.close()


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


def default_threads() -> int:
    """Inference threads when --threads is not given: half the cores, at least 1.

    Decode and encode run in their own threads next to inference; torch's default (all
    cores) oversubscribes a small machine and spins: measured on a 2-core box under load,
    predict_gamma at 256x144 took 26 ms/frame with 1 thread and 435 ms with 2.
    """
    return max(1, (os.cpu_count() or 2) // 2)


# --- parameter types: every value is checked while the command line is parsed (exit 2, with
# the allowed range), before any model or file is opened ------------------------------------------


class FiniteFloat(click.FloatRange):
    """A FloatRange that also refuses nan and inf (click's own lets nan through every bound)."""

    name = "number"

    def convert(self, value, param, ctx):
        import math

        v = super().convert(value, param, ctx)
        if not math.isfinite(v):
            self.fail(f"{value!r} is not a finite number; {self._describe_range()}", param, ctx)
        return v


class InferSizeType(click.ParamType):
    """--infer-size: a long side in pixels (16..4096) or 'full'; returned as text."""

    name = "PIXELS|full"

    def convert(self, value, param, ctx):
        text = str(value).strip().lower()
        if text == "full":
            return "full"
        try:
            n = int(text)
        except ValueError:
            self.fail(f"{value!r} is not a size; use a long side in pixels, 16..4096, or 'full'", param, ctx)
        if not 16 <= n <= 4096:
            self.fail(f"{n} is not in the range 16..4096 (or 'full')", param, ctx)
        return str(n)


class SizeType(click.ParamType):
    """WIDTHxHEIGHT, both positive; returned as the text 'WxH'."""

    name = "WxH"

    def convert(self, value, param, ctx):
        try:
            w, h = (int(v) for v in str(value).lower().split("x"))
            if w <= 0 or h <= 0:
                raise ValueError
        except ValueError:
            self.fail(f"{value!r} is not a frame size; use WIDTHxHEIGHT, e.g. 640x480", param, ctx)
        return f"{w}x{h}"


class TimeType(click.ParamType):
    """A time as ffmpeg writes it: seconds (``12.5``) or ``[HH:]MM:SS[.frac]``; in seconds, >= 0."""

    name = "TIME"

    def convert(self, value, param, ctx):
        import math

        if isinstance(value, float):
            return value
        text = str(value).strip()
        try:
            parts = [float(p) for p in text.split(":")]
            if not 1 <= len(parts) <= 3 or any(p < 0 or not math.isfinite(p) for p in parts):
                raise ValueError
        except ValueError:
            self.fail(f"{value!r} is not a time; use seconds (12.5) or [HH:]MM:SS[.ms] (00:01:02.5), >= 0", param, ctx)
        seconds = 0.0
        for p in parts:
            seconds = seconds * 60 + p
        return seconds


class KeyValueType(click.ParamType):
    """KEY=VALUE (an encoder option); returned as a (key, value) tuple."""

    name = "KEY=VALUE"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        key, sep, val = str(value).partition("=")
        if not sep or not key.strip():
            self.fail(f"{value!r} is not KEY=VALUE, e.g. --encoder-opt tune=film", param, ctx)
        return key.strip(), val


class BitrateType(click.ParamType):
    """A bit rate as ffmpeg writes it: ``2500000``, ``2500k``, ``2.5M``; returned in bit/s (int > 0)."""

    name = "RATE"

    def convert(self, value, param, ctx):
        import math

        if isinstance(value, int):
            return value
        text = str(value).strip()
        scale = {"k": 1e3, "m": 1e6, "g": 1e9}.get(text[-1:].lower(), 1)
        try:
            v = float(text[:-1] if scale != 1 else text) * scale
            if not math.isfinite(v) or v <= 0:
                raise ValueError
        except ValueError:
            self.fail(f"{value!r} is not a bit rate; use e.g. 2500k or 4M (> 0)", param, ctx)
        return int(v)


#: x264's preset names; the other encoders map them (io/video.py encoder_options).
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo")


class EncoderType(click.ParamType):
    """--codec: 'auto' or a video encoder of this FFmpeg build (checked with PyAV, imported
    only when the option is given: ``--help`` never loads av)."""

    name = "ENCODER"

    def convert(self, value, param, ctx):
        name = str(value).strip()
        if name == "auto":
            return name
        from psenet_stream.io.video import encoder_kind

        kind = encoder_kind(name)
        if kind is None:
            self.fail(f"{name!r} is not an encoder of this FFmpeg build; use auto, libx264, libx265, libvpx-vp9, ... (`psenet-stream doctor` lists them)", param, ctx)
        if kind != "video":
            self.fail(f"{name!r} is an {kind} encoder, not a video encoder; use auto, libx264, libx265, libvpx-vp9, ...", param, ctx)
        return name


# --- option groups -------------------------------------------------------------------------------


def option_group(cls: type, param: str, options: list[Callable]) -> Callable:
    """A decorator adding ``options`` to a click command and passing their values as one
    ``cls`` instance in the keyword ``param`` (the option names are ``cls``'s fields)."""
    names = [f.name for f in dataclasses.fields(cls)]

    def deco(f):
        @functools.wraps(f)
        def wrapper(*args, **kw):
            kw[param] = cls(**{n: kw.pop(n) for n in names if n in kw})  # fields without an option keep their default
            return f(*args, **kw)

        for opt in reversed(options):
            wrapper = opt(wrapper)
        return wrapper

    return deco


@dataclass(frozen=True)
class EnhancerOptions:
    """How to build the Enhancer (``make_enhancer``). ``smoothing`` None: the caller's default."""

    backend: str = "auto"
    batch: int | None = None
    compile_net: bool = False
    weights: str | None = None
    infer_size: str = "256"
    strength: float = 1.0
    smoothing: float | None = None
    stabilize: float | None = None
    gamma_every: int | None = None
    no_highlight_protection: bool = False
    no_exposure_gain: bool = False
    threads: int | None = None


def enhancer_options(*, smoothing_default: float | None = None, batch: bool = True, compile_net: bool = True, highlight: bool = True) -> Callable:
    """--backend --batch --compile --weights --infer-size --strength --smoothing
    --no-highlight-protection --threads, as ``enhancer: EnhancerOptions``."""
    smoothing_help = (
        f"Per-pixel temporal smoothing of the correction (EMA weight), 0..0.95 (default {VIDEO_SMOOTHING} for video and images)."
        if smoothing_default is None
        else "Temporal smoothing of the correction (0 = off)."
    )
    opts = [
        click.option("--backend", type=click.Choice(BACKEND_NAMES), default="auto", show_default=True, help="Inference backend."),
        click.option("--batch", type=click.IntRange(1, 64), hidden=not batch, help="Frames per inference call (default 4 for files, 8 on a GPU, 1 for live)."),
        click.option("--compile", "compile_net", is_flag=True, hidden=not compile_net, help="GPU: compile the network with torch.compile (minutes at start; ~4x faster with --infer-size full)."),
        click.option("--weights", type=click.Path(dir_okay=False), help="Weight file (default: the shipped weights)."),
        click.option("--infer-size", type=InferSizeType(), default="256", show_default=True, help="Long side the network runs at (16..4096), or 'full'."),
        click.option("--strength", type=FiniteFloat(0, 1), default=1.0, show_default=True, help="0 = off, 1 = the model's correction (0..1)."),
        click.option("--smoothing", type=FiniteFloat(0, 0.95), default=smoothing_default, show_default=smoothing_default is not None, help=smoothing_help),
        click.option(
            "--stabilize",
            type=FiniteFloat(0, 0.99),
            default=None,
            help=f"Hold the exposure steady over time, 0..0.99 (default {VIDEO_STABILIZE} for video, 0 for images); cuts are followed at once.",
        ),
        click.option(
            "--gamma-every",
            type=click.IntRange(1, 64),
            default=None,
            help=f"CPU backends: run the network at most every K frames while the picture barely changes; motion, a brightness change or a cut run it at once, and in between the last answer is scaled to keep the output level (default {VIDEO_GAMMA_EVERY} for video, 1 for images).",
        ),
        click.option("--no-highlight-protection", is_flag=True, hidden=not highlight, help="Let darkening gammas act up to pure white (noisier highlights)."),
        click.option(
            "--no-exposure-gain",
            is_flag=True,
            help="Leave out the weights' global exposure gain (the part that darkens over-exposed frames below the curve's white; it can also darken a bright scene that was fine).",
        ),
        click.option("--threads", type=click.IntRange(1, 256), help="CPU threads for inference (default: half the cores, at least 1; decode and encode run beside it)."),
    ]
    return option_group(EnhancerOptions, "enhancer", opts)


@dataclass(frozen=True)
class ReportOptions:
    """What a run says: progress line, statistics JSON, verbosity."""

    progress: bool | None = None
    stats_json: str | None = None
    quiet: bool = False
    verbose: int = 0

    def show_progress(self) -> bool:
        return (not self.quiet) and (self.progress if self.progress is not None else sys.stderr.isatty())


def report_options(*, progress: bool = True) -> Callable:
    """--progress/--no-progress --stats-json -q -v, as ``report: ReportOptions``."""
    opts = [
        click.option("--progress/--no-progress", default=None, hidden=not progress, help="Progress line on stderr (default: when stderr is a terminal)."),
        click.option("--stats-json", type=click.Path(dir_okay=False), help="Write the run's statistics (fps, latency, drops) as JSON."),
        click.option("-q", "--quiet", is_flag=True, help="Only errors."),
        click.option("-v", "--verbose", count=True, help="More detail (-vv for debug)."),
    ]
    return option_group(ReportOptions, "report", opts)


@dataclass(frozen=True)
class PreviewOptions:
    """Where a live result is shown, and how (``window``: keys to toggle the view and snapshot)."""

    preview: str = "none"
    bind: str = "127.0.0.1"
    port: int = 8090
    snapshot_dir: str = "snapshots"
    view: str = "side-by-side"
    preview_token: str | None = None

    def sink_options(self) -> dict[str, Any]:
        if self.preview == "http":
            return {"bind": self.bind, "port": self.port, "mode": self.view, "token": self.preview_token}
        return {"snapshot_dir": self.snapshot_dir, "mode": self.view}


def preview_options(*, default: str = "none", bare_flag: bool = True) -> Callable:
    """--preview --bind --port --snapshot-dir --view --preview-token, as ``preview: PreviewOptions``."""
    preview = (
        click.option("--preview", type=click.Choice(["none", "window", "http"]), default=default, is_flag=False, flag_value="window", show_default=True, help="Also show the result live (a bare --preview means window).")
        if bare_flag
        else click.option("--preview", type=click.Choice(["window", "http", "none"]), default=default, show_default=True, help="Where to show it.")
    )
    opts = [
        preview,
        click.option("--bind", default="127.0.0.1", show_default=True, help="Address for --preview http (0.0.0.0: every interface)."),
        click.option("--port", type=click.IntRange(0, 65535), default=8090, show_default=True, help="Port for --preview http (0: a free one)."),
        click.option("--snapshot-dir", default="snapshots", show_default=True, type=click.Path(file_okay=False), help="Where 's' in the window saves PNG snapshots."),
        click.option("--view", type=click.Choice(["side-by-side", "enhanced", "original"]), default="side-by-side", show_default=True, help="Initial view of the preview."),
        click.option(
            "--preview-token",
            envvar="PSENET_STREAM_PREVIEW_TOKEN",
            default=None,
            help="Token the http preview requires (?token=...); beyond loopback one is generated and printed once when not given. Also $PSENET_STREAM_PREVIEW_TOKEN.",
        ),
    ]
    return option_group(PreviewOptions, "preview", opts)


def check_stats_json(path: str | None, others: list[str | None], *, overwrite: bool = False) -> None:
    """Before any work: --stats-json must not be an input or the run's output (ever), nor an
    existing file without --overwrite, and its folder must be writable (OutputError)."""
    if path:
        from psenet_stream import guard
        from psenet_stream.errors import OutputError

        files = [o for o in others if o and o != "-" and "://" not in o]
        if guard.Protected(files).covers(path):
            raise OutputError(f"--stats-json {path} is the run's input or output", "give the statistics their own file name, e.g. stats.json")
        guard.check_output(path, files, overwrite=overwrite, what="--stats-json file")


def write_stats_json(path: str | None, stats) -> None:
    """Write the run's statistics as JSON under a temporary name, then rename it into place."""
    if path:
        import json

        from psenet_stream import guard

        guard.write_text(path, json.dumps(stats.as_dict(), indent=2) + "\n", overwrite=True, what="--stats-json file")


def make_enhancer(opts: EnhancerOptions, *, video: bool):
    """The Enhancer ``opts`` describe; where --smoothing / --stabilize were not given, the
    video defaults (``psenet_stream.defaults``) for video, and none for images."""
    from psenet_stream.enhancer import Enhancer

    kw: dict[str, Any] = {
        "infer_size": opts.infer_size,
        "strength": opts.strength,
        "smoothing": (VIDEO_SMOOTHING if video else 0.0) if opts.smoothing is None else opts.smoothing,
        "stabilize": (VIDEO_STABILIZE if video else 0.0) if opts.stabilize is None else opts.stabilize,
        "gamma_every": (VIDEO_GAMMA_EVERY if video else 1) if opts.gamma_every is None else opts.gamma_every,
    }
    if opts.no_highlight_protection:
        kw["highlight_knee"] = 1.0
    if opts.no_exposure_gain:
        kw["exposure_gain"] = False
    if opts.compile_net:
        kw["compile"] = True
    return Enhancer.from_pretrained(weights=opts.weights, backend=opts.backend, threads=opts.threads or default_threads(), **kw)
