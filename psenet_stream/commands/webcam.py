"""``psenet-stream webcam``: a live camera, enhanced, in a window or a browser.

    psenet-stream webcam                                  # /dev/video0, window, side by side
    psenet-stream webcam --device /dev/video2 --size 1280x720 --fps 30 --input-format mjpeg
    psenet-stream webcam --preview http --port 8090       # headless: open the printed URL
    psenet-stream webcam --device rtsp://user:pw@cam/stream -o rtsp://server/enhanced
    psenet-stream webcam --device "lavfi:testsrc2=size=1280x720:rate=30,realtime"   # no camera

Keys in the window: space = enhanced / original / side by side, s = snapshot, q or Esc = quit.
The same sources work through the default command: ``psenet-stream /dev/video0 --preview window``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from pathlib import Path

import click

log = logging.getLogger("psenet_stream")


@click.command("webcam")
@click.option("--device", default="/dev/video0", show_default=True, help="Camera: /dev/videoN, lavfi:GRAPH, or an rtsp:// / http:// URL.")
@click.option("--size", help="Capture size WxH, e.g. 1280x720 (the camera's default when omitted).")
@click.option("--fps", type=float, help="Capture frame rate, e.g. 30.")
@click.option("--input-format", help="Camera pixel format, e.g. mjpeg (most USB cameras need it for 720p30) or yuyv422.")
@click.option("--preview", type=click.Choice(["window", "http", "none"]), default="window", show_default=True, help="Where to show it.")
@click.option("--bind", default="127.0.0.1", show_default=True, help="Address for --preview http (0.0.0.0: every interface).")
@click.option("--port", type=click.IntRange(0, 65535), default=8090, show_default=True, help="Port for --preview http (0: a free one).")
@click.option("-o", "--output", help="Also record to a file (.mp4/.mkv) or publish to rtsp://.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option("--snapshot-dir", default="snapshots", show_default=True, type=click.Path(file_okay=False), help="Where 's' saves PNG snapshots.")
@click.option("--view", type=click.Choice(["side-by-side", "enhanced", "original"]), default="side-by-side", show_default=True, help="Initial view.")
@click.option("--backend", type=click.Choice(["auto", "cpu", "onnx", "cuda", "tensorrt"]), default="auto", show_default=True, help="Inference backend.")
@click.option("--weights", type=click.Path(dir_okay=False), help="Weight file (default: the shipped weights).")
@click.option("--infer-size", default="256", show_default=True, help="Long side the network runs at, or 'full'.")
@click.option("--strength", type=float, default=1.0, show_default=True, help="0 = off, 1 = the model's correction.")
@click.option("--smoothing", type=float, default=0.5, show_default=True, help="Temporal smoothing of the correction (0 = off).")
@click.option("--threads", type=click.IntRange(1, 256), help="CPU threads for inference.")
@click.option("--timeout", "read_timeout", type=float, default=5.0, show_default=True, help="Seconds without frames before the camera counts as lost.")
@click.option("--connect-timeout", type=float, default=10.0, show_default=True, help="Seconds to connect to the camera / the output server.")
@click.option("--max-retries", type=click.IntRange(0, None), help="Give up after this many failed reconnects (default: retry forever).")
@click.option("--duration", type=float, help="Stop after this many seconds.")
@click.option("--stats-json", type=click.Path(dir_okay=False), help="Write fps / latency / drops as JSON at the end.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.option("-v", "--verbose", count=True, help="More detail (-vv for debug).")
def webcam(device, size, fps, input_format, preview, bind, port, output, overwrite, snapshot_dir, view, backend, weights, infer_size,
           strength, smoothing, threads, read_timeout, connect_timeout, max_retries, duration, stats_json, quiet, verbose):
    """Live preview of a webcam (or any live source): original | enhanced side by side."""
    from psenet_stream.cli import setup_logging

    setup_logging(verbose, quiet)
    stats = run_live(
        device,
        preview=preview,
        output=output,
        overwrite=overwrite,
        source_opts={"size": size, "fps": fps, "input_format": input_format, "read_timeout": read_timeout, "open_timeout": connect_timeout, "max_retries": max_retries},
        output_opts={"open_timeout": connect_timeout, "max_retries": max_retries},
        preview_opts={"bind": bind, "port": port, "snapshot_dir": snapshot_dir, "mode": view},
        enhancer_opts={"weights": weights, "backend": backend, "infer_size": infer_size, "strength": strength, "smoothing": smoothing, "threads": threads},
        duration=duration,
    )
    if stats_json:
        Path(stats_json).write_text(json.dumps(stats.as_dict(), indent=2) + "\n")
    if not quiet:
        click.echo(f"{device if '://' not in device else _safe(device)}: {stats.summary()}", err=True)


def _safe(spec: str) -> str:
    from psenet_stream.io.redact import mask_url

    return mask_url(spec)


def run_live(spec, *, preview="window", output=None, overwrite=False, source_opts=None, output_opts=None, preview_opts=None, enhancer_opts=None, duration=None):
    """Open a live source, the enhancer and the sinks, run the pipeline until q / Ctrl-C /
    --duration / the source gives up, then close everything. Returns the pipeline's Stats."""
    from psenet_stream import pipeline
    from psenet_stream.commands.enhance import make_enhancer, stop_on_signals
    from psenet_stream.errors import UsageError
    from psenet_stream.io.live import LockSize, open_live_source, preflight

    if preview == "none" and not output:
        raise UsageError("nothing to show or write", "use --preview window|http or -o out.mp4 / -o rtsp://server/path")
    preflight(spec)
    stop = threading.Event()
    preview_opts = dict(preview_opts or {})
    enhancer_opts = dict(enhancer_opts or {})
    sinks: list = []
    file_sink = None
    # The preview is checked first: a missing display fails before the camera is opened.
    if preview == "window":
        from psenet_stream.io.preview import WindowSink

        sinks.append(WindowSink(None, stop=stop, snapshot_dir=preview_opts.get("snapshot_dir", "snapshots"), mode=preview_opts.get("mode", "side-by-side")))
    # The enhancer loads before the camera opens: a live source drops frames while nobody reads.
    enh = make_enhancer(
        weights=enhancer_opts.get("weights"),
        backend=enhancer_opts.get("backend", "auto"),
        infer_size=str(enhancer_opts.get("infer_size", "256")),
        strength=enhancer_opts.get("strength", 1.0),
        smoothing=enhancer_opts.get("smoothing", 0.5),
        no_highlight_protection=False,
        threads=enhancer_opts.get("threads"),
    )
    src = open_live_source(spec, **(source_opts or {}))
    try:
        info = src.info
        if sinks:
            sinks[0].source = src
        if preview == "http":
            from psenet_stream.io.http_preview import HttpPreviewSink

            sinks.append(HttpPreviewSink(info, bind=preview_opts.get("bind", "127.0.0.1"), port=preview_opts.get("port", 8090), mode=preview_opts.get("mode", "side-by-side")))
        if output:
            from psenet_stream.io.specs import is_live_output

            if is_live_output(output):
                from psenet_stream.io.rtsp_out import RtspSink

                sinks.insert(0, RtspSink(output, info, **(output_opts or {})))
            else:
                from psenet_stream.io.sinks import AtomicFileSink, check_output_path
                from psenet_stream.io.video import VideoFileSink

                out = Path(output)
                check_output_path(out, [], overwrite=overwrite)
                file_sink = AtomicFileSink(out, lambda tmp: LockSize(VideoFileSink(tmp, info, preset="ultrafast")), overwrite=overwrite)
                sinks.insert(0, file_sink)
        log.info("live: %s -> %s; %s", info.description, ", ".join(type(s).__name__ for s in sinks), enh.describe())

        # When asked to stop, also close the source: a source that is reconnecting yields
        # nothing, and the pipeline's reader only looks at `stop` between frames.
        def watch() -> None:
            if duration is not None:
                stop.wait(duration)
                stop.set()
            else:
                stop.wait()
            src.close()

        threading.Thread(target=watch, name="psenet-live-stop", daemon=True).start()
        ok = False
        try:
            with stop_on_signals(stop):
                stats = pipeline.run(src, enh, sinks, batch=1, live=True, stop=stop)
            ok = True
        finally:
            stop.set()
            for s in sinks:
                if s is file_sink:
                    if ok and file_sink.sink.frames_written:
                        file_sink.close()  # q / Ctrl-C / --duration is how a live recording ends
                    else:
                        # an error (the camera gave up, ...): keep what was recorded as .partial
                        file_sink.abort(keep_partial=bool(file_sink.sink.frames_written))
                        if file_sink.kept:
                            log.warning("the recording so far is kept as %s", file_sink.kept)
                else:
                    with contextlib.suppress(Exception):
                        s.close()
        return stats
    finally:
        src.close()
