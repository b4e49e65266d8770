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


def setup_logging(verbose: int = 0, quiet: bool = False) -> None:
    """The package's messages on stderr, no prefixes: -q warnings only, default info, -vv debug.

    Only the project's loggers (``psenet_stream`` and the trainer's ``train``) are configured,
    one handler each, reused: the root logger is left alone, so libraries' info chatter (e.g.
    the ONNX exporter's) stays quiet."""
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    for name in ("psenet_stream", "train"):
        log = logging.getLogger(name)
        handler = next((h for h in log.handlers if getattr(h, "psenet_cli", False)), None)
        if handler is None:
            handler = logging.StreamHandler(sys.stderr)
            handler.psenet_cli = True
            handler.setFormatter(logging.Formatter("%(message)s"))
            log.addHandler(handler)
        handler.stream = sys.stderr  # the current stderr (a test runner may have swapped and closed the old one)
        log.setLevel(level)


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


# --- option groups -------------------------------------------------------------------------------


def option_group(cls: type, param: str, options: list[Callable]) -> Callable:
    """A decorator adding ``options`` to a click command and passing their values as one
    ``cls`` instance in the keyword ``param`` (the option names are ``cls``'s fields)."""
    names = [f.name for f in dataclasses.fields(cls)]

    def deco(f):
        @functools.wraps(f)
        def wrapper(*args, **kw):
            kw[param] = cls(**{n: kw.pop(n) for n in names})
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
        click.option("--infer-size", default="256", show_default=True, help="Long side the network runs at, or 'full'."),
        click.option("--strength", type=float, default=1.0, show_default=True, help="0 = off, 1 = the model's correction."),
        click.option("--smoothing", type=float, default=smoothing_default, show_default=smoothing_default is not None, help=smoothing_help),
        click.option(
            "--stabilize",
            type=click.FloatRange(0, 0.99),
            default=None,
            help=f"Hold the exposure steady over time, 0..0.99 (default {VIDEO_STABILIZE} for video, 0 for images); cuts are followed at once.",
        ),
        click.option(
            "--gamma-every",
            type=click.IntRange(1, 64),
            default=None,
            help=f"CPU backends: run the network at most every K frames while the picture barely changes; motion, a brightness change or a cut run it at once (default {VIDEO_GAMMA_EVERY} for video, 1 for images).",
        ),
        click.option("--no-highlight-protection", is_flag=True, hidden=not highlight, help="Let darkening gammas act up to pure white (noisier highlights)."),
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
    if opts.compile_net:
        kw["compile"] = True
    return Enhancer.from_pretrained(weights=opts.weights, backend=opts.backend, threads=opts.threads or default_threads(), **kw)
