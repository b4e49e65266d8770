"""A real two-node Ray cluster for a test, in namespaces the test makes itself.

    result = run_in_cluster(driver_code, workdir, timeout=...)

``unshare --net --pid --fork --mount-proc`` (root) gives the cluster a loopback-only network
(Ray advertises the machine's own address even with --node-ip-address 127.0.0.1; in the
namespace it sees only 127.0.0.1, and no traffic leaves loopback) and a PID namespace of its
own: `ray stop --force` there sees only this cluster's processes, and when the namespace's
first process exits the kernel kills every process left in it, so the cluster is gone after
every test, passed, failed or timed out.

Inside: a head node (HEAD_CPUS CPUs, no dashboard) and a worker node (WORKER_CPUS CPUs, the
custom resource ``victim``, raylet on VICTIM_PORT) start via `ray start`; then the driver
runs (``python driver.py``, address in $RAY_ADDRESS); then `ray stop --force`. The driver
can kill the worker node with ``kill_worker_node()`` from this module (it is importable
there: the checkout is on PYTHONPATH).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PORT = 6399
VICTIM_PORT = 46001
HEAD_CPUS = 1
WORKER_CPUS = 2


def require_cluster() -> None:
    """Skip unless a real cluster can be made here: Ray installed, root, unshare and ip."""
    pytest.importorskip("ray")
    if os.geteuid() != 0:
        pytest.skip("the Ray cluster tests make network namespaces: they need root")
    for tool in ("unshare", "ip"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not found")


def run_in_cluster(driver: str, workdir: Path, *, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """Start the cluster in fresh namespaces, run ``driver`` (Python source) against it, stop
    it; returns the completed `unshare` process (driver output in stdout/stderr)."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "driver.py").write_text(driver)
    bin_ = Path(sys.executable).parent
    ray = bin_ / "ray"
    # short: Ray's socket paths live under the temp dir and must fit in 107 bytes
    temp = Path(tempfile.mkdtemp(prefix="psr", dir="/tmp"))
    # a small object store each (the default is 30 % of the RAM per node; the tests pass only small dicts)
    common = f"--num-cpus={{cpus}} --node-ip-address=127.0.0.1 --temp-dir={temp} --object-store-memory=100000000 --disable-usage-stats"
    script = f"""
set -u
ip link set lo up
export RAY_USAGE_STATS_ENABLED=0 RAY_health_check_period_ms=1000 RAY_health_check_failure_threshold=3 RAY_health_check_initial_delay_ms=1000
{ray} start --head --port={PORT} --include-dashboard=false {common.format(cpus=HEAD_CPUS)} > {workdir}/head.log 2>&1 || {{ echo 'head did not start'; cat {workdir}/head.log; exit 90; }}
{ray} start --address=127.0.0.1:{PORT} --node-manager-port={VICTIM_PORT} --resources='{{"victim": 1}}' {common.format(cpus=WORKER_CPUS)} > {workdir}/worker.log 2>&1 || {{ echo 'worker node did not start'; cat {workdir}/worker.log; exit 91; }}
export RAY_ADDRESS=127.0.0.1:{PORT}
cd {workdir}
{sys.executable} driver.py
rc=$?
{ray} stop --force > {workdir}/stop.log 2>&1
exit $rc
"""
    e = dict(os.environ)
    e["PYTHONPATH"] = f"{ROOT}{os.pathsep}{e.get('PYTHONPATH', '')}"
    e.update(env or {})
    cmd = ["unshare", "--net", "--pid", "--fork", "--mount-proc", "--kill-child", "bash", "-c", script]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # the namespace dies with its first process (unshare --kill-child): nothing outlives the test
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        raise AssertionError(f"the cluster test ran over {timeout} s\n{out.decode()[-3000:]}\n{err.decode()[-3000:]}") from None
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return subprocess.CompletedProcess(cmd, p.returncode, out, err)


# --- used by drivers, inside the namespace --------------------------------------------------------


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d.name))
    return kids


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def worker_node_pids() -> list[int]:
    """The worker node's raylet (found by its node-manager port) and every process under it
    (its workers and agents)."""
    roots = [int(d.name) for d in Path("/proc").iterdir() if d.name.isdigit() and "raylet/raylet" in _cmdline(int(d.name))
             and f"--node_manager_port={VICTIM_PORT}" in _cmdline(int(d.name))]
    kids = _children()
    out, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, []))
    return out


def kill_worker_node() -> int:
    """SIGKILL the worker node (raylet and all its processes), as a machine that dies would;
    returns how many processes were killed."""
    pids = worker_node_pids()
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    time.sleep(0.2)
    return len(pids)
