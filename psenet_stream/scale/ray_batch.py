"""``psenet-stream batch --ray``: one Ray task per file.

Each task runs ``batch.run_job`` (the single-file path) on whichever node has the declared
resources free: one CPU (inference on one thread beside decode and encode), or one CPU and
a GPU share for --backend cuda. A task whose worker or node dies is retried by Ray
(``max_retries``); an attempt's output only gets its final name through ``batch.commit``,
so a retried file is never written twice, and a killed attempt leaves only staging files,
which the driver removes at the end. A problem with the file itself (undecodable, ...)
is not retried: the task returns it as a failure with its reason.

Every node must see the inputs and OUTDIR under the same paths (a shared or object-storage
mount; docs/SCALE.md) and have psenet-stream installed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict

from psenet_stream.batch import Job, Result, Settings, run_job

MAX_RETRIES = 3  # attempts after a worker or node dies
GPU_SHARE = 0.25  # --backend cuda: four files share a GPU (the network is tiny; decode/encode dominate)


def _task(job: dict, settings: dict) -> dict:
    import ray

    r = run_job(job, settings)
    ctx = ray.get_runtime_context()
    r["node"] = f"{r['node']}/{ctx.get_node_id()[:8]}"  # host and Ray node: two nodes may share a host
    return r


def resources(settings: Settings) -> dict:
    """The resources one file's task declares."""
    if settings.enhancer.get("backend") in ("cuda", "tensorrt"):
        return {"num_cpus": 1, "num_gpus": GPU_SHARE}
    return {"num_cpus": 1}


def _failure_reason(e: BaseException) -> str:
    import ray.exceptions as rx

    if isinstance(e, (rx.WorkerCrashedError, rx.NodeDiedError, rx.LocalRayletDiedError)):
        return f"its worker died {MAX_RETRIES + 1} times ({type(e).__name__})"
    if isinstance(e, rx.TaskCancelledError):
        return "cancelled (interrupted)"
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[-1] if text else ''}"


def run(jobs: list[Job], settings: Settings, *, address: str, max_in_flight: int | None, on_result: Callable[[Result], None], stop: threading.Event) -> list[Result]:
    """Every job as a Ray task on the cluster at ``address``; at most ``max_in_flight``
    submitted at a time (default: twice the cluster's CPUs)."""
    from psenet_stream.scale import connect

    ray = connect(address)
    res = resources(settings)
    if res.get("num_gpus") and not ray.cluster_resources().get("GPU"):
        from psenet_stream.errors import UsageError

        raise UsageError("--backend cuda was asked for, but the Ray cluster has no GPU", "add GPU nodes, or use --backend cpu/onnx")
    sett = dict(asdict(settings))
    sett["enhancer"] = {**settings.enhancer, "threads": settings.enhancer.get("threads") or 1}
    task = ray.remote(max_retries=MAX_RETRIES, retry_exceptions=False, **res)(_task)
    cap = max_in_flight or max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
    queue = list(jobs)
    pending: dict = {}
    results: list[Result] = []

    def submit():
        while queue and len(pending) < cap and not stop.is_set():
            j = queue.pop(0)
            pending[task.remote(asdict(j), sett)] = j

    submit()
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
        for ref in ready:
            j = pending.pop(ref)
            try:
                r = Result.from_dict(ray.get(ref))
            except Exception as e:  # noqa: BLE001 - retries exhausted, or the task could not run at all
                r = Result(j.input, j.output, "failed", _failure_reason(e))
            results.append(r)
            on_result(r)
        if stop.is_set():
            for ref in pending:
                ray.cancel(ref)
        submit()
    for j in queue:
        results.append(Result(j.input, j.output, "failed", "not started (interrupted)"))
    return results
