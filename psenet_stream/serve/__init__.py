"""``psenet-stream serve``: one process, many streams, one Enhancer, cross-stream batches.

The stable Python entry points (other code, e.g. the Ray actors of ``serve --ray``, calls these):

    from psenet_stream.serve import config, server

    cfg = config.load("streams.toml")             # or config.load(["IN1=OUT1", "IN2=OUT2"]),
                                                  # or config.load({"serve": {...}, "stream": [{...}]})
    cfg: config.ServeConfig                       # .streams: tuple[StreamConfig], .batch, .deadline_ms,
                                                  # .metrics_port, .status_interval, .parallel, .path
    config.StreamConfig(name, input, outputs=("null",), strength=None, smoothing=None,
                        stabilize=None, gamma_every=None, infer_size=None, queue_size=1,
                        preview_port=0, overwrite=False, loop=False, read_timeout=None,
                        open_timeout=None, size=None, fps=None, input_format=None,
                        format=None)              # frozen; None = the server's option (or the input's default)

    srv = server.Server(cfg, enhancer_options=None, *, enhancer=None, metrics_port=None,
                        status=True, status_stream=None)
        # enhancer_options: commands._common.EnhancerOptions, or a dict of its fields
        # (backend, threads, weights, infer_size, strength, smoothing, stabilize, gamma_every, ...)
    srv.run(stop_event) -> dict[name, status dict]   # blocks until stop_event is set, then drains:
                                                     # every output closed, files committed
    srv.add_stream(StreamConfig | dict)              # from any thread, while run() runs
    srv.remove_stream(name) -> bool
    srv.reload(ServeConfig | path | None) -> (added, removed, restarted)
    srv.request_reload()                             # safe from a signal handler (SIGHUP)
    srv.status() -> {name: {"state", "input", "outputs", "frames_in", "frames_out", "dropped",
                            "reconnects", "output_errors", "scene_cuts", "fps", "latency_p95_ms",
                            "last_error"}}       # URLs with credentials masked
    srv.health() -> (ok, {"status", "streams": {name: state}})
    srv.metrics_url -> "http://127.0.0.1:PORT" (GET /metrics, /healthz) or None
    srv.metrics.render() -> bytes                    # the Prometheus text (to merge elsewhere)

States: starting, running, reconnecting, ended, failed, stopping, stopped.
Modules: config.py (TOML / pairs), server.py (the batcher and the stream set), stream.py (a
stream's reader, writer and outputs), batching.py (one backend call for many streams, each
with its own temporal state), metrics.py (Prometheus, /healthz).
"""
