"""``psenet-stream serve``: many streams in one process (psenet_stream/serve/)."""

from __future__ import annotations

import click

from psenet_stream.commands._common import EnhancerOptions, enhancer_options


@click.command("serve")
@click.argument("streams", nargs=-1, required=True)
@enhancer_options(smoothing_default=None, batch=True, compile_net=True)
@click.option("--deadline-ms", type=click.FloatRange(0, 1000), default=None, help="After the first frame of a batch, wait this long for the other streams [default: 8, or the TOML's].")
@click.option("--metrics-port", type=click.IntRange(-1, 65535), default=None, help="Prometheus /metrics and /healthz on 127.0.0.1:PORT (0: a free port, -1: off) [default: 9464, or the TOML's].")
@click.option("--status-interval", type=click.FloatRange(0, 3600), default=None, help="Seconds between the per-stream status lines (0: off) [default: 5].")
@click.option("--duration", type=click.FloatRange(0, None, min_open=True), default=None, help="Stop (and close every output) after this many seconds.")
@click.option("--status-json", type=click.Path(dir_okay=False), default=None, help="Write every stream's final counters here as JSON.")
@click.option("--ray", "ray_address", metavar="auto|ADDRESS", default=None, help="Spread the streams over Ray actors on this cluster (psenet_stream/scale/fleet.py; needs psenet-stream[ray]).")
@click.option("-q", "--quiet", is_flag=True, help="Warnings only.")
@click.option("-v", "--verbose", count=True, help="More messages (-vv: debug).")
def serve(streams, enhancer: EnhancerOptions, deadline_ms, metrics_port, status_interval, duration, status_json, ray_address, quiet, verbose) -> None:
    """Serve many streams from one process, with one model and cross-stream batches.

    \b
    psenet-stream serve streams.toml
    psenet-stream serve rtsp://cam1/s=rtsp://127.0.0.1:8554/out1 rtsp://cam2/s=rec/cam2.mp4

    Each stream has its own temporal state, reconnects on its own, and is written to its own
    outputs (files, rtsp:// publish, preview:http, null). SIGHUP or editing the TOML adds and
    removes streams without touching the others; SIGTERM or Ctrl-C drains and closes every
    output. Metrics: http://127.0.0.1:9464/metrics and /healthz. The TOML format is described
    in psenet_stream/serve/config.py.
    """
    import signal
    import threading

    from psenet_stream.commands._common import setup_logging, stop_on_signals
    from psenet_stream.serve import config as serve_config
    from psenet_stream.serve.server import Server
    from psenet_stream.serve.server import status_json as to_json

    setup_logging(verbose, quiet)
    if ray_address:
        from psenet_stream.scale import import_ray

        import_ray()  # without the extra: a clear message before anything starts
    source = streams[0] if len(streams) == 1 and streams[0].endswith(".toml") else list(streams)
    cfg = serve_config.load(
        source, batch=enhancer.batch, deadline_ms=deadline_ms, metrics_port=metrics_port, status_interval=status_interval
    )
    srv = None if ray_address else Server(cfg, enhancer)
    stop = threading.Event()
    timer = None
    if duration:
        timer = threading.Timer(duration, stop.set)
        timer.daemon = True
        timer.start()
    old_hup = None
    reload = threading.Event()  # --ray: the fleet re-deals on the next poll
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGHUP"):
        old_hup = signal.signal(signal.SIGHUP, (lambda *_: srv.request_reload()) if srv is not None else (lambda *_: reload.set()))
    try:
        with stop_on_signals(stop):
            if ray_address:
                from psenet_stream.scale import fleet

                final = fleet.run(cfg, enhancer, address=ray_address, stop=stop, reload=reload)
            else:
                final = srv.run(stop)
    finally:
        if timer is not None:
            timer.cancel()
        if old_hup is not None:
            signal.signal(signal.SIGHUP, old_hup)
    for name, st in final.items():
        lat = st.get("latency_p95_ms")
        click.echo(
            f"{name}: {st['frames_out']} frames, {st['dropped']} dropped, {st['reconnects']} reconnects, "
            f"{st['output_errors']} output errors" + (f", recent p95 {lat:.0f} ms" if lat is not None else "") + f" ({st['state']})",
            err=True,
        )
    if status_json:
        from pathlib import Path

        Path(status_json).write_text(to_json(final) + "\n", encoding="utf-8")
