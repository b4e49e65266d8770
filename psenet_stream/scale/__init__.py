"""Beyond one machine: Ray (the optional extra ``psenet-stream[ray]``).

    connect(address)        ray.init for --ray auto|ADDRESS, with a clear error without Ray
    ray_batch.run(...)      psenet-stream batch --ray: one task per file
    fleet.run(...)          psenet-stream serve streams.toml --ray: streams over actors

Nothing here is imported unless --ray is given; without Ray installed every command runs
locally. docs/SCALE.md says how to run it on a real cluster.
"""

from __future__ import annotations

import logging
import os
import signal
import threading

from psenet_stream.errors import UsageError

INSTALL_HINT = "install the extra: pip install 'psenet-stream[ray]' (or run without --ray: everything runs locally)"


def import_ray():
    """The ray module, or a UsageError saying how to get it."""
    try:
        import ray
    except ImportError:
        raise UsageError("--ray needs Ray, which is not installed", INSTALL_HINT) from None
    return ray


def connect(address: str):
    """Connect this driver to the cluster at ``address`` ('auto': the one started on this
    machine by `ray start`, or RAY_ADDRESS; 'host:6379'; 'ray://host:10001'). Worker logs
    stay on the workers (the driver prints one progress line). Returns the ray module."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    addr = None if address in ("", "auto") and os.environ.get("RAY_ADDRESS") else address
    if addr and addr != "auto" and "://" not in addr:
        _check_reachable(addr)  # ray.init would retry an address where nothing listens for a minute or more
    # ray.init installs its own SIGTERM handler; the command's (finish cleanly) is put back
    main = threading.current_thread() is threading.main_thread()
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)} if main else {}
    try:
        ray.init(address=addr or "auto", log_to_driver=False, logging_level=logging.WARNING, configure_logging=False)
    except ConnectionError as e:
        raise UsageError(
            f"no Ray cluster at {address}: {str(e).splitlines()[0]}",
            "start one (ray start --head) or pass its address: --ray HOST:6379 or --ray ray://HOST:10001",
        ) from None
    finally:
        for s, h in saved.items():
            if h is not None:
                signal.signal(s, h)
    return ray


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """A HOST:PORT where a Ray head's GCS should listen, or a UsageError at once."""
    import socket

    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--ray {address}: not an address", "pass auto, HOST:PORT (the head's GCS, 6379 by default) or ray://HOST:10001")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise UsageError(
            f"no Ray cluster at {address}: {e.strerror or e}",
            "start one (ray start --head) or pass its address: --ray HOST:6379 or --ray ray://HOST:10001",
        ) from None


def cluster_resources() -> dict:
    import ray

    return dict(ray.cluster_resources())
