"""The multi-stream server: one Enhancer (one model, one backend) for every stream.

    readers (a thread per stream) ──► slots ──► batchers (``parallel`` threads) ──► writers (a thread per stream)

The batcher waits for the first frame to arrive in any slot, then up to ``deadline_ms`` more
for the other running streams (or until ``batch`` frames wait), takes the newest frame of
each, and makes one backend call for all of them (``batching.CrossStreamPredictor``).
With ``parallel`` > 1 (the default on a CPU: one per core) several batchers do this at once,
each for streams that have no frame in a call already, so a many-core host runs that many
calls side by side; a GPU fills one batch at a time. ``run``'s own thread keeps house
(reloads, counters, status lines). A slow
or dead stream only costs the others the deadline, never its own pace. Each writer applies
the curve to its own frames at their own size and writes its outputs.

Streams are added and removed while it runs (``add_stream``, ``remove_stream``, ``reload``);
the others are not touched. ``run(stop)`` returns when ``stop`` is set, after draining: the
frames already read are enhanced and written and every output is closed (files committed).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from psenet_stream.errors import UsageError
from psenet_stream.io.redact import RedactingFilter
from psenet_stream.serve.batching import CrossStreamPredictor, StreamState
from psenet_stream.serve.config import ServeConfig, StreamConfig, load
from psenet_stream.serve.metrics import MetricsServer, ServeMetrics
from psenet_stream.serve.stream import StreamWorker

log = logging.getLogger("psenet_stream.serve")

_ENH_DEFAULTS = ("strength", "smoothing", "stabilize", "gamma_every", "infer_size")


class _StreamNameFilter(logging.Filter):
    """Prefixes ``[name]`` to messages about a stream that do not carry it yet: those logged
    by the stream's own threads, and those of the shared I/O code naming its input or output."""

    def __init__(self, server: Server):
        super().__init__()
        self.server = server

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # noqa: BLE001
            return True
        if msg.startswith("["):
            return True
        name = None
        t = threading.current_thread().name
        if t.startswith("psenet-serve:"):
            name = t.split(":")[1]
        else:
            for w in list(self.server.workers.values()):
                if w.cfg.safe_input in msg or any(o.safe in msg for o in w.outputs if "://" in o.spec):
                    name = w.name
                    break
        if name:
            record.msg, record.args = f"[{name}] {msg}", ()
        return True


class Server:
    """Many streams through one Enhancer (see the module docstring).

    ``config``: a ``ServeConfig`` (``config.load``), a TOML path, or a list of IN=OUT pairs.
    ``enhancer_options``: how to build the Enhancer: a ``commands._common.EnhancerOptions``, a
    dict of its fields, or None (the defaults: best backend, the video defaults). ``enhancer``:
    an already built Enhancer instead. ``metrics_port``: overrides the config's (0: a free
    port, -1: no HTTP). ``status``: print one status line per stream every
    ``config.status_interval`` s on ``status_stream`` (stderr).
    """

    def __init__(self, config: ServeConfig | str | Path | list[str], enhancer_options: Any = None, *, enhancer=None, metrics_port: int | None = None, status: bool = True, status_stream=None):
        self.config = config if isinstance(config, ServeConfig) else load(config)
        if metrics_port is not None:
            self.config = _replace(self.config, metrics_port=metrics_port)
        self._enh_opts = _options_dict(enhancer_options)
        self.enhancer = enhancer
        self.metrics = ServeMetrics()
        self.workers: dict[str, StreamWorker] = {}
        self.predictor: CrossStreamPredictor | None = None
        self.metrics_server: MetricsServer | None = None
        self.status_enabled = status
        self.status_stream = status_stream
        self.batches = 0
        self.batch_frames = 0
        self.backend_seconds = 0.0
        self.predict_seconds = 0.0  # backend + reuse checks + stacking
        self._cond = threading.Condition()
        self._lock = threading.RLock()  # workers dict
        self._state = "starting"
        self._reload = threading.Event()
        self._rr = 0  # round-robin start when more streams wait than a batch holds
        self._busy: set[str] = set()  # streams with a frame in a backend call now
        self._batch_error: BaseException | None = None
        self.parallel = 1  # backend calls in flight (batcher threads); set by _start
        self._mtime = self._config_mtime()

    # --- the public API -------------------------------------------------------------------------
    @property
    def metrics_url(self) -> str | None:
        return self.metrics_server.url if self.metrics_server else None

    def add_stream(self, stream: StreamConfig | Mapping[str, Any]) -> None:
        """Start a stream (a StreamConfig, or a dict of its fields); its name must be new."""
        cfg = stream if isinstance(stream, StreamConfig) else load({"stream": [dict(stream)]}).streams[0]
        with self._lock:
            if cfg.name in self.workers:
                raise UsageError(f"a stream named {cfg.name!r} already runs", "remove it first, or choose another name")
            self._start_worker(cfg)
            self.config = self.config.with_streams([*(s for s in self.config.streams if s.name != cfg.name), cfg])

    def remove_stream(self, name: str, timeout: float = 10.0) -> bool:
        """Stop a stream: its queued frames are written and its outputs closed. False if unknown."""
        with self._lock:
            w = self.workers.pop(name, None)
            self.config = self.config.with_streams([s for s in self.config.streams if s.name != name])
        if w is None:
            return False
        w.stop_input()
        w.finish(timeout)
        self.metrics.remove(name)
        self.metrics.streams.set(len(self.workers))
        log.info("[%s] removed", name)
        return True

    def reload(self, config: ServeConfig | str | Path | None = None) -> tuple[list[str], list[str], list[str]]:
        """Apply a new config's streams (default: read ``config.path`` again): new streams
        start, removed ones stop, changed ones restart; the others are not touched. The [serve]
        settings stay those the server started with. Returns (added, removed, restarted). A
        config that does not load is reported and changes nothing."""
        if config is None:
            if not self.config.path:
                return [], [], []
            config = self.config.path
            self._mtime = self._config_mtime()  # this edit is taken now, not again by the watcher
        try:
            new = config if isinstance(config, ServeConfig) else load(config)
        except Exception as e:  # noqa: BLE001 - a broken edit keeps the running streams
            log.error("reload: %s; keeping the running streams", getattr(e, "problem", e))
            return [], [], []
        old = self.config.by_name()
        want = new.by_name()
        removed = [n for n in old if n not in want]
        added = [n for n in want if n not in old]
        changed = [n for n in want if n in old and want[n] != old[n]]
        with self._lock:
            if self._state == "starting":  # run() has not started the workers: they start from this
                self.config = self.config.with_streams(list(want.values()))
                return added, removed, changed
        for n in removed + changed:
            self.remove_stream(n)
        for n in added + changed:
            self.add_stream(want[n])
        with self._lock:  # the [serve] settings stay those the server started with
            self.config = self.config.with_streams([want[n] for n in want if n in self.workers])
        if removed or added or changed:
            log.info("reload: %d added, %d removed, %d restarted", len(added), len(removed), len(changed))
        return added, removed, changed

    def request_reload(self) -> None:
        """Reload within 0.1 s, in ``run``'s thread (safe from a signal handler: only sets an Event)."""
        self._reload.set()

    def status(self) -> dict[str, dict]:
        with self._lock:
            return {n: w.status() for n, w in self.workers.items()}

    def health(self) -> tuple[bool, dict]:
        st = {n: w.state for n, w in list(self.workers.items())}
        ok = self._state == "running"
        bad = [n for n, s in st.items() if s != "running"]
        return ok, {"status": ("ok" if not bad else "degraded") if ok else self._state, "streams": st}

    def run(self, stop: threading.Event | None = None) -> dict[str, dict]:
        """Serve until ``stop`` is set, then drain and close every output. Returns ``status()``
        as it was at the end. Call from one thread; ``add_stream``/``remove_stream``/
        ``reload``/``request_reload`` may be called from others."""
        stop = stop or threading.Event()
        filters = self._install_log_filters()
        batchers: list[threading.Thread] = []
        halt = threading.Event()  # the batchers' own stop: set after ``stop``, before the drain
        try:
            self._start()
            for i in range(self.parallel):
                t = threading.Thread(target=self._batch_loop, args=(halt,), name=f"psenet-serve-batcher-{i}", daemon=True)
                t.start()
                batchers.append(t)
            # this thread keeps house: reloads, counters, status lines (a reload that takes
            # seconds to close a removed stream's outputs never holds up the batches)
            last_tick = last_status = time.monotonic()
            while not stop.wait(0.1):
                now = time.monotonic()
                if now - last_tick >= 1.0:
                    self._tick(now - last_tick)
                    last_tick = now
                    self._watch_config()
                if self._reload.is_set():
                    self._reload.clear()
                    self.reload()
                iv = self.config.status_interval
                if self.status_enabled and iv and now - last_status >= iv:
                    self._print_status()
                    last_status = now
                if self._batch_error is not None:
                    raise self._batch_error
            halt.set()
            self._notify()
            for t in batchers:
                t.join(timeout=30)
            return self._drain()
        finally:
            halt.set()
            self._notify()
            self._state = "stopped"
            if self.metrics_server is not None:
                self.metrics_server.close()
            for h, f in filters:
                h.removeFilter(f)

    def _batch_loop(self, halt: threading.Event) -> None:
        try:
            while not halt.is_set():
                self._batch_once(halt)
        except BaseException as e:  # noqa: BLE001 - handed to run()'s thread, which re-raises it
            self._batch_error = e

    # --- internals ---------------------------------------------------------------------------------
    def _start(self) -> None:
        if self.enhancer is None:
            self.enhancer = _make_enhancer(self._enh_opts)
        self.predictor = CrossStreamPredictor(self.enhancer)
        p = int(self.config.parallel)
        if p <= 0:  # auto: a GPU fills one batch at a time; a CPU runs one call per core
            p = 1 if self.predictor.full_frame else max(1, os.cpu_count() or 1)
        self.parallel = p
        self._warm_up()
        log.info(
            "serve: %d stream(s), %s, batch up to %d, deadline %g ms, %d backend call(s) in flight",
            len(self.config.streams), self.enhancer.backend_description, self.config.batch, self.config.deadline_ms, self.parallel,
        )
        if self.config.metrics_port >= 0:
            self.metrics_server = MetricsServer(self.metrics, self.health, self.config.metrics_port)
            log.info("serve: metrics %s/metrics, health %s/healthz", self.metrics_server.url, self.metrics_server.url)
        with self._lock:  # (a reload before this point only replaced the config: see reload)
            for cfg in self.config.streams:
                self._start_worker(cfg)
            self._state = "running"

    def _warm_up(self) -> None:
        """One throwaway batch before any stream starts, so the first camera frames do not
        pay for the backend's first call (its allocations, a GPU's kernels)."""
        import numpy as np

        e = self.enhancer.options
        frame = np.full((360, 640, 3), 96, np.uint8)
        with contextlib.suppress(Exception):
            self.predictor.predict([(StreamState(infer_size=e.infer_size), frame)] * min(2, self.config.batch))

    def summary(self) -> dict[str, float]:
        """The batcher's counters: batches, frames, mean frames per batch, backend ms per batch."""
        b = max(1, self.batches)
        return {"batches": self.batches, "frames": self.batch_frames, "mean_batch": round(self.batch_frames / b, 2), "backend_ms_per_batch": round(1000 * self.backend_seconds / b, 2), "predict_ms_per_batch": round(1000 * self.predict_seconds / b, 2)}

    def _start_worker(self, cfg: StreamConfig) -> None:
        if self.predictor is None:  # before run(): started by _start
            return
        e = self.enhancer.options
        d = self._stream_defaults()
        o = {**d, **cfg.enhance_overrides()}
        gain = self.enhancer.make_gain(o["strength"], o["stabilize"]) if hasattr(self.enhancer, "make_gain") else None
        state = StreamState(
            infer_size=o.get("infer_size", e.infer_size), strength=o["strength"], smoothing=o["smoothing"], stabilize=o["stabilize"],
            gamma_every=o["gamma_every"], scene_cut=e.scene_cut, gain=gain,
        )
        w = StreamWorker(cfg, state, self.predictor, self.metrics, self._notify)
        self.workers[cfg.name] = w
        self.metrics.streams.set(len(self.workers))
        w.start()
        log.info("[%s] %s -> %s", cfg.name, cfg.safe_input, ", ".join(cfg.safe_outputs))

    def _stream_defaults(self) -> dict[str, Any]:
        e = self.enhancer.options
        return {"strength": e.strength, "smoothing": e.smoothing, "stabilize": e.stabilize, "gamma_every": e.gamma_every, "infer_size": e.infer_size}

    def _notify(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _ready(self) -> list[StreamWorker]:
        """Streams with a frame waiting and none in a backend call now (one in flight per
        stream: its GammaReuse state and its frame order stay with one batch at a time)."""
        with self._lock:
            return [w for w in self.workers.values() if w.waiting() and w.name not in self._busy]

    def _batch_once(self, stop: threading.Event, drain: bool = False) -> int:
        """Wait for frames (up to 0.1 s), gather up to ``batch`` within the deadline, run them."""
        cfg = self.config
        if not drain:
            with self._cond:
                if not self._ready():
                    self._cond.wait(0.1)
            ready = self._ready()
            if not ready:
                return 0
            with self._lock:
                running = sum(1 for w in self.workers.values() if w.state == "running")
            want = max(1, min(cfg.batch, running))
            deadline = time.monotonic() + cfg.deadline_ms / 1000.0
            with self._cond:
                while len(ready) < want and not stop.is_set():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                    ready = self._ready()
        else:
            ready = self._ready()
        if len(ready) > cfg.batch:  # fairness: start where the last full batch stopped
            k = self._rr % len(ready)
            ready = (ready[k:] + ready[:k])[: cfg.batch]
            self._rr += cfg.batch
        items = []
        with self._lock:  # claim the streams: another batcher skips them until this batch is out
            for w in ready:
                if w.name in self._busy:
                    continue
                got = w.take_newest()
                if got is not None:
                    self._busy.add(w.name)
                    items.append((w, *got))
        if not items:
            return 0
        try:
            t_pred = time.perf_counter()
            try:
                pending, rep = self.predictor.network_report([(w.state_obj, f.rgb, small) for w, f, small in items])
            except Exception as e:  # noqa: BLE001 - a failing batch drops its frames, the server goes on
                log.error("serve: backend call failed (%d frames dropped): %s: %s", len(items), type(e).__name__, e)
                return 0
            with self._lock:
                self.predict_seconds += time.perf_counter() - t_pred
                self.batches += 1
                self.batch_frames += len(items)
                self.backend_seconds += rep.backend_seconds
            self.metrics.batch.observe(len(items))
            if rep.network:
                self.metrics.backend.observe(rep.backend_seconds)
            for (w, f, _), p in zip(items, pending):
                w.deliver(f, p)
        finally:
            with self._lock:
                for w, _, _ in items:
                    self._busy.discard(w.name)
            self._notify()
        return len(items)

    def _drain(self) -> dict[str, dict]:
        self._state = "stopping"
        log.info("serve: stopping: draining %d stream(s)", len(self.workers))
        with self._lock:
            workers = list(self.workers.values())
        for w in workers:
            w.stop_input()
            w._set_state("stopping")
        deadline = time.monotonic() + 5.0  # one bound for all: a reader may sit in a camera's open timeout
        for w in workers:
            w.join_reader(max(0.0, deadline - time.monotonic()))
        for _ in range(8):  # the frames still in the slots
            if not self._batch_once(threading.Event(), drain=True):
                break
        for w in workers:
            w.finish()
        self._tick(1.0)
        st = self.status()
        sm = self.summary()
        log.info("serve: %d batches, %.2f frames per batch, backend %.1f ms per batch (%.1f ms with the reuse checks and batching)", sm["batches"], sm["mean_batch"], sm["backend_ms_per_batch"], sm["predict_ms_per_batch"])
        with self._lock:
            self.workers.clear()
        self._state = "stopped"
        return st

    def _tick(self, dt: float) -> None:
        with self._lock:
            workers = list(self.workers.values())
        now = time.monotonic()
        for w in workers:
            if self._state == "running":
                w.check_stalled(now)
            n = w.frames_out
            prev = getattr(w, "_fps_prev", 0)
            w._fps_prev = n
            w.fps = (n - prev) / dt if dt > 0 else 0.0
            self.metrics.fps.labels(w.name).set(round(w.fps, 2))
            w.report_drops()

    def _config_mtime(self) -> float | None:
        p = self.config.path
        try:
            return os.stat(p).st_mtime if p else None
        except OSError:
            return None

    def _watch_config(self) -> None:
        m = self._config_mtime()
        if m is not None and m != self._mtime:
            self._mtime = m
            log.info("serve: %s changed; reloading", self.config.path)
            self.reload()

    def _print_status(self) -> None:
        out = self.status_stream or sys.stderr
        with self._lock:
            workers = list(self.workers.values())
        for w in workers:
            lat = w.recent_p95_ms()
            out.write(
                f"{w.name:<12} {w.state:<12} {getattr(w, 'fps', 0.0):5.1f} fps  p95 {'-' if lat is None else f'{lat:.0f}'} ms  "
                f"drops {w.dropped}  reconnects {w.reconnects}  out errors {sum(o.errors for o in w.outputs)}  {w.cfg.safe_input}\n"
            )
        out.flush()

    def _install_log_filters(self) -> list:
        red = RedactingFilter()
        for s in self.config.streams:
            red.add(s.input)
            for o in s.outputs:
                red.add(o)
        names = _StreamNameFilter(self)
        pairs = []
        for h in logging.getLogger("psenet_stream").handlers:
            for f in (names, red):
                h.addFilter(f)
                pairs.append((h, f))
        self._redacting = red
        return pairs


def _replace(cfg: ServeConfig, **kw) -> ServeConfig:
    from dataclasses import replace

    return replace(cfg, **kw)


def _options_dict(opts: Any) -> dict[str, Any]:
    if opts is None:
        return {}
    if is_dataclass(opts):
        return asdict(opts)
    return dict(opts)


def _make_enhancer(o: dict[str, Any]):
    """The shared Enhancer from EnhancerOptions fields (the video defaults where unset; threads:
    the CLI's default, half the cores: more inference threads than that spin on a small,
    busy machine, commands/_common.default_threads)."""
    from psenet_stream.commands._common import EnhancerOptions, make_enhancer

    fields = {k: v for k, v in o.items() if k in EnhancerOptions.__dataclass_fields__}
    if "infer_size" in fields and fields["infer_size"] is not None:
        fields["infer_size"] = str(fields["infer_size"])
    return make_enhancer(EnhancerOptions(**fields), video=True)


def status_json(status: dict[str, dict]) -> str:
    return json.dumps(status, indent=2, sort_keys=True)
