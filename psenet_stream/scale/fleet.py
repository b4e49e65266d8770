"""``psenet-stream serve streams.toml --ray ADDRESS``: the streams spread over Ray actors.

    driver (this process)                         actors (anywhere in the cluster)
    split the streams into shares  ─────────────► ServeActor(share): serve.Server.run, one
    poll status + metrics every second ◄───────── Enhancer, cross-stream batches for its share
    one status line per stream; merged /metrics and /healthz on 127.0.0.1:metrics_port

- Sizing: one actor per ``CPUS_PER_ACTOR`` CPUs of the cluster (inference threads, or 1),
  or one per GPU with --backend cuda; never more actors than streams. Streams are dealt
  round-robin, so each actor's share is about the same.
- An actor that dies (its process or its node) is restarted by Ray (``max_restarts``); Ray
  calls its constructor again with the same share, so its streams resume (file outputs
  start a new recording: the killed one's temporary file is gone with its process).
- SIGHUP, or an edit of the TOML, re-deals (``redeal``): streams that stay keep their actor
  (a changed one restarts there), removed ones stop, new ones go to the actors with the
  fewest streams. The number of actors stays what it was at the start. An actor restarted
  after a re-deal is given its current share again (Ray's restart replays the first one).
- Each actor's Prometheus text is merged into one registry on the driver, every series
  with an ``actor`` label added, plus ``psenet_fleet_actor_up{actor,node,pid}`` and
  ``psenet_fleet_actor_restarts_total{actor}``; ``/healthz`` is 200 while every actor answers.

File outputs and file inputs need the same paths on every node (shared storage); network
inputs and outputs need the nodes to reach the cameras and the RTSP server (docs/SCALE.md).
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
from dataclasses import asdict, replace
from typing import Any

log = logging.getLogger("psenet_stream")

CPUS_PER_ACTOR = 1
MAX_RESTARTS = -1  # Ray restarts a dead actor for as long as the fleet runs
POLL_S = 1.0
CALL_TIMEOUT_S = 3.0


class ServeActor:
    """One share of the streams in a serve.Server, in a thread of the actor's process.
    (Made a Ray actor class by ``_actor_class``; importable without Ray.)"""

    def __init__(self, index: int, config: dict, enhancer_options: dict):
        from psenet_stream.serve.config import from_dict
        from psenet_stream.serve.server import Server

        self.index = index
        self.pid = os.getpid()
        self.started = time.time()
        cfg = from_dict(config)
        self.server = Server(cfg, enhancer_options, metrics_port=-1, status=False)
        self.stop_event = threading.Event()
        self.final: dict | None = None
        self.error: str | None = None
        self.thread = threading.Thread(target=self._run, name=f"psenet-fleet-{index}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.final = self.server.run(self.stop_event)
        except Exception as e:  # reported through status(); the driver shows it
            self.error = f"{type(e).__name__}: {e}"
            log.exception("fleet actor %d failed", self.index)

    def info(self) -> dict:
        import ray

        return {"actor": self.index, "pid": self.pid, "host": socket.gethostname(), "node": ray.get_runtime_context().get_node_id()[:8], "started": self.started}

    def poll(self) -> dict:
        """Status of every stream of the share, the actor's identity, and its metrics text."""
        return {**self.info(), "streams": self.final or self.server.status(), "error": self.error, "metrics": self.server.metrics.render().decode()}

    def reload(self, config: dict) -> dict:
        """Serve ``config``'s streams from now on (serve.Server.reload: the streams that stay
        are not touched)."""
        from psenet_stream.serve.config import from_dict

        added, removed, restarted = self.server.reload(from_dict(config))
        return {"added": added, "removed": removed, "restarted": restarted}

    def stop(self, timeout: float = 20.0) -> dict:
        self.stop_event.set()
        self.thread.join(timeout)
        return {**self.info(), "streams": self.final or self.server.status(), "error": self.error}


def _actor_class(ray, resources: dict):
    return ray.remote(max_restarts=MAX_RESTARTS, max_task_retries=0, **resources)(ServeActor)


def shares(streams: list, n: int) -> list[list]:
    """Deal ``streams`` round-robin into ``n`` non-empty shares."""
    n = max(1, min(n, len(streams)))
    return [streams[i::n] for i in range(n)]


def redeal(owner: dict[str, int], names: list[str], n: int) -> dict[str, int]:
    """Stream name -> actor index for ``names`` over ``n`` actors: a name in ``owner`` keeps
    its actor, a new one goes to the actor with the fewest streams (the lowest index on a tie),
    and names no longer listed are dropped."""
    kept = {name: owner[name] for name in names if name in owner and 0 <= owner[name] < n}
    load = [0] * max(1, n)
    for i in kept.values():
        load[i] += 1
    out = {}
    for name in names:
        if name in kept:
            out[name] = kept[name]
        else:
            i = min(range(len(load)), key=lambda j: (load[j], j))
            load[i] += 1
            out[name] = i
    return out


def _share_conf(base: dict, streams: list) -> dict:
    """An actor's config dict (what ServeActor and its reload take) for ``streams``."""
    conf = {"serve": {**base, "metrics_port": -1}, "stream": [dict(asdict(s)) for s in streams]}
    for st in conf["stream"]:
        st["outputs"] = list(st["outputs"])
    return conf


def _mtime(path) -> float | None:
    try:
        return os.stat(path).st_mtime if path else None
    except OSError:
        return None


def plan_actors(n_streams: int, cluster: dict, enhancer: dict) -> tuple[int, dict]:
    """(number of actors, the resources each declares) for the cluster's CPUs / GPUs."""
    if enhancer.get("backend") in ("cuda", "tensorrt"):
        gpus = int(cluster.get("GPU", 0))
        if gpus < 1:
            from psenet_stream.errors import UsageError

            raise UsageError("--backend cuda was asked for, but the Ray cluster has no GPU", "add GPU nodes, or use --backend cpu/onnx")
        return min(n_streams, gpus), {"num_cpus": 1, "num_gpus": 1}
    per = max(CPUS_PER_ACTOR, int(enhancer.get("threads") or 1))
    return min(n_streams, max(1, int(cluster.get("CPU", 1)) // per)), {"num_cpus": per}


class FleetMetrics:
    """The actors' Prometheus texts merged into one (duck-types serve.metrics.ServeMetrics for
    its MetricsServer: ``render()`` and ``content_type``)."""

    def __init__(self):
        from prometheus_client import CONTENT_TYPE_LATEST

        self.content_type = CONTENT_TYPE_LATEST
        self.texts: dict[int, str] = {}
        self.info: dict[int, dict] = {}
        self.up: dict[int, bool] = {}
        self.restarts: dict[int, int] = {}
        self.lock = threading.Lock()
        self._registry = None

    def render(self) -> bytes:
        from prometheus_client import CollectorRegistry, generate_latest

        if self._registry is None:
            self._registry = CollectorRegistry(auto_describe=False)
            self._registry.register(self)
        return generate_latest(self._registry)

    def collect(self):
        """The merged families (prometheus_client formats them: one HELP/TYPE each)."""
        from prometheus_client.metrics_core import Metric
        from prometheus_client.parser import text_string_to_metric_families

        with self.lock:
            texts, info, up, restarts = dict(self.texts), dict(self.info), dict(self.up), dict(self.restarts)
        merged: dict[str, Any] = {}
        for idx, text in sorted(texts.items()):
            for fam in text_string_to_metric_families(text):
                m = merged.get(fam.name)
                if m is None:
                    m = merged[fam.name] = Metric(fam.name, fam.documentation, fam.type)
                for s in fam.samples:
                    m.add_sample(s.name, {**s.labels, "actor": str(idx)}, s.value, s.timestamp)
        upm = Metric("psenet_fleet_actor_up", "1 while the actor answers; its node and process", "gauge")
        rst = Metric("psenet_fleet_actor_restarts", "Times Ray restarted the actor", "counter")
        for idx in sorted(up):
            i = info.get(idx, {})
            upm.add_sample("psenet_fleet_actor_up", {"actor": str(idx), "node": str(i.get("node", "")), "pid": str(i.get("pid", ""))}, 1.0 if up[idx] else 0.0)
            rst.add_sample("psenet_fleet_actor_restarts_total", {"actor": str(idx)}, float(restarts.get(idx, 0)))
        yield from merged.values()
        yield upm
        yield rst


def run(
    cfg, enhancer_options, *, address: str, stop: threading.Event, status_interval: float | None = None, stream=None, reload: threading.Event | None = None
) -> dict[str, dict]:
    """Serve ``cfg``'s streams on Ray actors until ``stop`` is set; returns every stream's
    final status (with ``actor`` and ``node`` added). Setting ``reload`` (SIGHUP), or an edit
    of ``cfg.path``, re-deals the streams of the file as it is then."""
    from psenet_stream.scale import connect
    from psenet_stream.serve.metrics import MetricsServer

    ray = connect(address)
    enh = asdict(enhancer_options) if hasattr(enhancer_options, "__dataclass_fields__") else dict(enhancer_options or {})
    streams = list(cfg.streams)
    if not streams:
        from psenet_stream.errors import UsageError

        raise UsageError("no streams to serve", "add [[stream]] entries to the TOML")
    n, res = plan_actors(len(streams), ray.cluster_resources(), enh)
    enh_actor = {**enh, "threads": enh.get("threads") or res.get("num_cpus", 1)}
    parts = shares(streams, n)
    Actor = _actor_class(ray, res)
    base = {k: v for k, v in asdict(replace(cfg, streams=())).items() if k not in ("streams", "path")}
    actors = []
    confs: list[dict] = []  # each actor's current share
    owner: dict[str, int] = {}
    for i, part in enumerate(parts):
        confs.append(_share_conf(base, part))
        owner.update({s.name: i for s in part})
        actors.append(Actor.options(name=None).remote(i, confs[i], enh_actor))
    first = [dict(c) for c in confs]  # what Ray replays when it restarts an actor
    mtime = _mtime(cfg.path)
    log.info("serve --ray: %d stream(s) on %d actor(s) (%s each)", len(streams), len(actors), ", ".join(f"{k}={v}" for k, v in res.items()))
    metrics = FleetMetrics()
    last: dict[int, dict] = {}
    server = None
    if cfg.metrics_port >= 0:
        server = MetricsServer(metrics, lambda: _health(metrics, last), cfg.metrics_port)
        log.info("serve --ray: merged metrics %s/metrics, health %s/healthz", server.url, server.url)
    pids: dict[int, int] = {}
    out = stream or sys.stderr
    interval = cfg.status_interval if status_interval is None else status_interval
    last_print = 0.0
    try:
        while not stop.is_set():
            restarted = _poll(ray, actors, metrics, last, pids)
            for i in restarted:  # Ray replayed the first share: give it the current one
                if confs[i] != first[i]:
                    _send(ray, actors, {i: confs[i]})
            now_mtime = _mtime(cfg.path)
            if (reload is not None and reload.is_set()) or now_mtime != mtime:
                if reload is not None:
                    reload.clear()
                mtime = now_mtime
                owner = _reload(ray, actors, cfg, base, owner, confs)
            now = time.monotonic()
            if interval and now - last_print >= interval:
                _print(out, last, metrics)
                last_print = now
            stop.wait(POLL_S)
    finally:
        final = _stop_all(ray, actors, last)
        if server is not None:
            server.close()
    return final


def _reload(ray, actors, cfg, base: dict, owner: dict[str, int], confs: list[dict]) -> dict[str, int]:
    """Re-read ``cfg.path`` and re-deal its streams (``redeal``); a file that does not load
    is reported and changes nothing. Updates ``confs`` in place; returns the new owners."""
    from psenet_stream.serve.config import load

    if not cfg.path:
        return owner
    try:
        new = load(cfg.path)
    except Exception as e:  # noqa: BLE001 - a broken edit keeps the running streams
        log.error("reload: %s; keeping the running streams", getattr(e, "problem", e))
        return owner
    names = [s.name for s in new.streams]
    new_owner = redeal(owner, names, len(actors))
    by_name = new.by_name()
    changed = {}
    for i in range(len(actors)):
        conf = _share_conf(base, [by_name[nm] for nm in names if new_owner[nm] == i])
        if conf != confs[i]:
            confs[i] = conf
            changed[i] = conf
    added = [nm for nm in names if nm not in owner]
    removed = [nm for nm in owner if nm not in new_owner]
    _send(ray, actors, changed)
    log.info("reload: %d added, %d removed, %d actor(s) given a new share", len(added), len(removed), len(changed))
    for nm in added:
        log.info("reload: [%s] on actor %d", nm, new_owner[nm])
    return new_owner


def _send(ray, actors, confs: dict[int, dict]) -> None:
    """Hand each listed actor its share (an actor down now gets it when Ray restarts it)."""
    refs = {actors[i].reload.remote(c): i for i, c in confs.items()}
    ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=30) if refs else ([], [])
    for ref, i in refs.items():
        if ref not in ready:
            log.warning("reload: actor %d did not answer; it gets its streams when it is back", i)
            continue
        try:
            ray.get(ref)
        except Exception as e:  # noqa: BLE001 - dead or restarting: the restart check sends it again
            log.warning("reload: actor %d: %s", i, e)


def _poll(ray, actors, metrics: FleetMetrics, last: dict, pids: dict) -> set[int]:
    """Polls every actor; returns the indices of those Ray restarted since the last poll."""
    restarted: set[int] = set()
    refs = {a.poll.remote(): i for i, a in enumerate(actors)}
    ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=CALL_TIMEOUT_S)
    answered = set()
    for ref in ready:
        i = refs[ref]
        try:
            doc = ray.get(ref)
        except Exception as e:  # noqa: BLE001 - dead or restarting: shown as down until it answers again
            log.debug("actor %d did not answer: %s", i, e)
            continue
        answered.add(i)
        if i in pids and pids[i] != doc["pid"]:
            restarted.add(i)
            metrics.restarts[i] = metrics.restarts.get(i, 0) + 1
            log.warning("actor %d restarted (pid %s on node %s); its streams resume", i, doc["pid"], doc["node"])
        pids[i] = doc["pid"]
        with metrics.lock:  # the metrics server's thread reads these
            last[i] = doc
            metrics.texts[i] = doc.pop("metrics", "")
            metrics.info[i] = {"node": doc["node"], "pid": doc["pid"]}
    for ref in refs:
        if ref not in ready:
            ray.cancel(ref, force=False)
    with metrics.lock:
        for i in range(len(actors)):
            metrics.up[i] = i in answered
            if i not in answered:
                metrics.texts.pop(i, None)
    return restarted


def _health(metrics: FleetMetrics, last: dict) -> tuple[bool, dict]:
    with metrics.lock:
        up, seen = dict(metrics.up), dict(last)
    streams = {n: (st.get("state") if up.get(i) else "actor down") for i, d in seen.items() for n, st in d.get("streams", {}).items()}
    ok = bool(up) and all(up.values())
    bad = [n for n, s in streams.items() if s != "running"]
    return ok, {"status": ("ok" if not bad else "degraded") if ok else "actor down", "actors": {str(i): u for i, u in up.items()}, "streams": streams}


def _print(out, last: dict, metrics: FleetMetrics) -> None:
    with metrics.lock:
        up = dict(metrics.up)
    for i in sorted(up):
        d = last.get(i, {})
        state = "up" if up[i] else ("DOWN" if d else "starting")
        head = f"actor {i} {state} node {d.get('node', '?')} pid {d.get('pid', '?')}"
        if metrics.restarts.get(i):
            head += f" ({metrics.restarts[i]} restarts)"
        for name, st in sorted(d.get("streams", {}).items()):
            fps = st.get("fps")
            out.write(f"{head}  [{name}] {st.get('state')} {st.get('frames_out', 0)} frames"
                      + (f" {fps:.1f} fps" if isinstance(fps, (int, float)) else "") + f" {st.get('dropped', 0)} dropped\n")
        if not d.get("streams"):
            out.write(head + "\n")
    out.flush()


def _stop_all(ray, actors, last: dict) -> dict[str, dict]:
    refs = {a.stop.remote(): i for i, a in enumerate(actors)}
    ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=30)
    final: dict[str, dict] = {}
    for i, d in last.items():  # what was last seen, for an actor that cannot answer now
        for name, st in d.get("streams", {}).items():
            final[name] = {**st, "actor": i, "node": d.get("node")}
    for ref in ready:
        try:
            d = ray.get(ref)
        except Exception as e:  # noqa: BLE001 - a dead actor: its last status stays
            log.debug("actor %d could not stop: %s", refs[ref], e)
            continue
        for name, st in d.get("streams", {}).items():
            final[name] = {**st, "actor": d["actor"], "node": d["node"]}
    for a in actors:
        ray.kill(a, no_restart=True)
    return final
