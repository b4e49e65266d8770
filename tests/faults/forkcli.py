"""Run the CLI many times cheaply: one parent imports psenet_stream (torch, av, cv2) once,
then each run is a fork()ed child calling ``psenet_stream.cli.main(args)`` with its own
cwd, stdout/stderr files and exit code, killed when it exceeds its timeout.

``python -m psenet_stream`` spends ~2-3 s importing torch on the shared 2-core machine; a
forked child starts in milliseconds, which keeps the fault matrix inside the CI budget.
An uncaught exception prints its traceback to stderr and exits 1, exactly as the
interpreter would, so the "no Traceback in stderr" check means the same thing.

Protocol (JSON lines): stdin {"args": [...], "cwd": ..., "timeout": s, "env": {...}};
stdout {"rc": int, "stdout": str, "stderr": str, "seconds": float, "timed_out": bool}.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _child(args: list[str], cwd: str | None, env: dict, out_path: str, err_path: str) -> None:
    os.setpgid(0, 0)
    fd_out = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    fd_err = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd_out, 1)
    os.dup2(fd_err, 2)
    sys.stdout = open(1, "w", closefd=False)
    sys.stderr = open(2, "w", closefd=False)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    code = 1
    try:
        if cwd:
            os.chdir(cwd)
        os.environ.update(env)
        from psenet_stream.cli import main

        main(args)
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def serve() -> None:
    import psenet_stream.cli
    import psenet_stream.commands.enhance
    import psenet_stream.enhancer
    import psenet_stream.io.video  # noqa: F401

    sys.stdout.write(json.dumps({"ready": True}) + "\n")
    sys.stdout.flush()
    for line in sys.stdin:
        req = json.loads(line)
        with tempfile.TemporaryDirectory(prefix="forkcli-") as d:
            out_p, err_p = os.path.join(d, "out"), os.path.join(d, "err")
            t0 = time.monotonic()
            pid = os.fork()
            if pid == 0:
                _child([str(a) for a in req["args"]], req.get("cwd"), req.get("env") or {}, out_p, err_p)
            timed_out = False
            deadline = t0 + float(req.get("timeout", 60))
            status = None
            while True:
                wpid, st = os.waitpid(pid, os.WNOHANG)
                if wpid:
                    status = st
                    break
                if time.monotonic() > deadline:
                    timed_out = True
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    _, status = os.waitpid(pid, 0)
                    break
                time.sleep(0.02)
            rc = os.waitstatus_to_exitcode(status)
            res = {
                "rc": rc,
                "stdout": Path(out_p).read_text(errors="replace"),
                "stderr": Path(err_p).read_text(errors="replace"),
                "seconds": time.monotonic() - t0,
                "timed_out": timed_out,
            }
        sys.stdout.write(json.dumps(res) + "\n")
        sys.stdout.flush()


class ForkCli:
    """The parent side, used by the tests: ``run(args, cwd=..., timeout=...)``."""

    def __init__(self, env: dict):
        self.p = subprocess.Popen(
            [sys.executable, "-m", "tests.faults.forkcli"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=str(ROOT),
            env=env,
            text=True,
        )
        ready = self.p.stdout.readline()
        if "ready" not in ready:
            raise RuntimeError(f"fork server did not start: {ready!r}")

    def run(self, args, *, cwd=None, timeout: float = 60.0, env: dict | None = None) -> dict:
        req = {"args": [str(a) for a in args], "cwd": str(cwd) if cwd else None, "timeout": timeout, "env": env or {}}
        self.p.stdin.write(json.dumps(req) + "\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError("fork server died")
        return json.loads(line)

    def close(self) -> None:
        if self.p.poll() is None:
            self.p.stdin.close()
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


if __name__ == "__main__":
    serve()
