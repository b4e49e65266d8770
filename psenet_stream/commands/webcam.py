"""``psenet-stream webcam``: a live camera, enhanced, in a window or a browser.

    psenet-stream webcam                                  # /dev/video0, window, side by side
    psenet-stream webcam --device /dev/video2 --size 1280x720 --fps 30 --input-format mjpeg
    psenet-stream webcam --preview http --port 8090       # headless: open the printed URL
    psenet-stream webcam --device rtsp://user:pw@cam/stream -o rtsp://server/enhanced
    psenet-stream webcam --device "lavfi:testsrc2=size=1280x720:rate=30,realtime"   # no camera

Keys in the window: space = enhanced / original / side by side, s = snapshot, q or Esc = quit.
A thin alias of the live path of the default command (``psenet-stream /dev/video0
--preview window``, ``commands.enhance.run_live``) with camera-friendly defaults: a window,
the video temporal defaults, recordings at --preset ultrafast.
"""

from __future__ import annotations

import click

from psenet_stream.commands._common import (
    EnhancerOptions,
    PreviewOptions,
    ReportOptions,
    check_stats_json,
    enhancer_options,
    preview_options,
    report_options,
    setup_logging,
    write_stats_json,
)


@click.command("webcam")
@click.option("--device", default="/dev/video0", show_default=True, help="Camera: /dev/videoN (or just N, as in OpenCV), lavfi:GRAPH, or an rtsp:// / http:// URL.")
@click.option("--size", help="Capture size WxH, e.g. 1280x720 (the camera's default when omitted).")
@click.option("--fps", type=float, help="Capture frame rate, e.g. 30.")
@click.option("--input-format", help="Camera pixel format, e.g. mjpeg (most USB cameras need it for 720p30) or yuyv422.")
@preview_options(default="window", bare_flag=False)
@click.option("-o", "--output", help="Also record to a file (.mp4/.mkv) or publish to rtsp://.")
@click.option("-y", "--overwrite", "--force", "overwrite", is_flag=True, help="Replace an existing output file (--force: the old spelling).")
@enhancer_options(smoothing_default=None, batch=False, compile_net=False, highlight=False)
@click.option("--timeout", "read_timeout", type=float, default=5.0, show_default=True, help="Seconds without frames before the camera counts as lost.")
@click.option("--connect-timeout", type=float, default=10.0, show_default=True, help="Seconds to connect to the camera / the output server.")
@click.option("--max-retries", type=click.IntRange(0, None), help="Give up after this many failed reconnects (default: retry forever).")
@click.option("-t", "--duration", type=click.FloatRange(0, None, min_open=True), help="Stop after this many seconds (ffmpeg's -t).")
@report_options(progress=False)
def webcam(device, size, fps, input_format, preview: PreviewOptions, output, overwrite, enhancer: EnhancerOptions, read_timeout, connect_timeout, max_retries, duration, report: ReportOptions):
    """Live preview of a webcam (or any live source): original | enhanced side by side."""
    from psenet_stream.commands.enhance import run_live
    from psenet_stream.errors import UsageError
    from psenet_stream.io.redact import mask_url

    setup_logging(report.verbose, report.quiet)
    if device.isdigit():  # OpenCV's camera index
        device = f"/dev/video{int(device)}"
    check_stats_json(report.stats_json, [device, output], overwrite=overwrite)
    if preview.preview == "none" and not output:
        raise UsageError("nothing to show or write", "use --preview window|http or -o out.mp4 / -o rtsp://server/path")
    source_opts = {"size": size, "fps": fps, "input_format": input_format, "read_timeout": read_timeout, "open_timeout": connect_timeout, "max_retries": max_retries}
    stats, _ = run_live(
        device,
        enhancer,
        preview,
        output=output,
        overwrite=overwrite,
        encode={"preset": "ultrafast"},
        source_opts=source_opts,
        output_opts={"open_timeout": connect_timeout, "max_retries": max_retries},
        duration=duration,
    )
    write_stats_json(report.stats_json, stats)
    if not report.quiet:
        click.echo(f"{mask_url(device) if '://' in device else device}: {stats.summary(backend=report.verbose > 0)}", err=True)
