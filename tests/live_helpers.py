"""Helpers for the live / RTSP / GUI tests: free ports, clips, real servers, Xvfb, weights.

Everything started here is a real process killed by PID in teardown.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SYSTEM_PYTHON = "/usr/bin/python3"
RTSP_SERVER = ROOT / "tests" / "rtsp_server.py"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
        time.sleep(0.05)
    return False


def make_h264_clip(path: Path, *, seconds: float = 10.0, size=(320, 240), fps: int = 30, dark: bool = True) -> Path:
    """A moving gradient clip, H.264 (g=fps, bf=0) in mp4, written with PyAV."""
    import av

    w, h = size
    n = int(seconds * fps)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "g": str(fps), "bf": "0", "keyint_min": str(fps)})
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        xx = np.linspace(0, 1, w, dtype=np.float32)[None, :]
        yy = np.linspace(0, 1, h, dtype=np.float32)[:, None]
        for i in range(n):
            ph = i / fps
            r = 0.5 + 0.5 * np.sin(6 * xx + ph) * np.ones_like(yy)
            g = 0.5 + 0.5 * np.cos(5 * yy + ph) * np.ones_like(xx)
            b = (xx + yy) / 2 * np.ones_like(r)
            img = np.stack([r, g, b], -1)
            if dark:
                img = img * 0.25
            vf = av.VideoFrame.from_ndarray((img * 255).astype(np.uint8), format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, fps)
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


def decode_all(path: Path, timeout: float = 10.0) -> list[np.ndarray]:
    """Every frame of a (possibly unfinalized) recording as rgb24 arrays."""
    import av

    out = []
    try:
        with av.open(str(path), timeout=timeout) as c:
            for f in c.decode(video=0):
                out.append(f.to_ndarray(format="rgb24"))
    except (av.error.FFmpegError, EOFError, OSError):
        pass  # a recording cut off by a killed server ends mid-cluster
    return out


def gst_rtsp_available() -> str | None:
    """None when /usr/bin/python3 can run tests/rtsp_server.py, else the reason it cannot."""
    if not os.path.exists(SYSTEM_PYTHON):
        return f"{SYSTEM_PYTHON} not found"
    try:
        r = subprocess.run([SYSTEM_PYTHON, str(RTSP_SERVER), "--probe"], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"cannot run {SYSTEM_PYTHON}: {e}"
    if r.returncode != 0:
        return "gst-rtsp-server not importable by /usr/bin/python3 (apt-get install python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-{base,good,bad})"
    return None


class Proc:
    """A child process killed by PID (its own process group) on stop()."""

    def __init__(self, args, *, env=None, log: Path | None = None, cwd=None):
        self.log = log
        self._logf = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
        self.p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self._logf, env=env, cwd=cwd, start_new_session=True)

    def wait_line(self, prefix: str, timeout: float = 20.0) -> str | None:
        import selectors

        sel = selectors.DefaultSelector()
        sel.register(self.p.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        buf = b""
        while time.monotonic() < deadline:
            if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                break
            chunk = os.read(self.p.stdout.fileno(), 4096)
            if not chunk:
                break
            buf += chunk
            for line in buf.decode(errors="replace").splitlines():
                if line.startswith(prefix):
                    return line
        return None

    def stop(self, sig=signal.SIGTERM, timeout: float = 5.0) -> None:
        if self.p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.p.pid, sig)
            try:
                self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait(timeout=timeout)
        if self._logf is not subprocess.DEVNULL:
            self._logf.close()
        with contextlib.suppress(Exception):
            self.p.stdout.close()


def start_rtsp_server(port: int, *, play: Path | None = None, record: Path | None = None, log: Path | None = None) -> Proc:
    args = [SYSTEM_PYTHON, str(RTSP_SERVER), "--port", str(port)]
    if play:
        args += ["--play", str(play)]
    if record:
        args += ["--record", str(record)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    proc = Proc(args, env=env, log=log)
    if proc.wait_line("ready", timeout=20.0) is None:
        proc.stop()
        raise RuntimeError(f"gst rtsp server did not start on port {port}" + (f"; see {log}" if log else ""))
    return proc


# --- Xvfb ------------------------------------------------------------------------------------


def xvfb_available() -> str | None:
    return None if shutil.which("Xvfb") else "Xvfb not installed (apt-get install xvfb)"


def start_xvfb(fbdir: Path, size=(1280, 720)) -> tuple[Proc, str]:
    """Xvfb on a free display, its framebuffer mirrored to fbdir/Xvfb_screen0 (XWD)."""
    for _ in range(20):
        n = 100 + (os.getpid() + int(time.time() * 1000)) % 800
        if os.path.exists(f"/tmp/.X11-unix/X{n}") or os.path.exists(f"/tmp/.X{n}-lock"):
            continue
        p = Proc(["Xvfb", f":{n}", "-screen", "0", f"{size[0]}x{size[1]}x24", "-fbdir", str(fbdir), "-nolisten", "tcp", "-ac"])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and p.p.poll() is None:
            if os.path.exists(f"/tmp/.X11-unix/X{n}") and (fbdir / "Xvfb_screen0").exists():
                return p, f":{n}"
            time.sleep(0.05)
        p.stop()
    raise RuntimeError("could not start Xvfb")


def read_xwd(path: Path) -> np.ndarray:
    """An XWD file (Xvfb -fbdir framebuffer) as an (H, W, 3) uint8 RGB array."""
    data = Path(path).read_bytes()
    hdr = np.frombuffer(data[:100], dtype=">u4")
    header_size, _ver, _fmt, _depth, width, height = (int(v) for v in hdr[:6])
    byte_order = int(hdr[7])
    bpp, bpl = int(hdr[11]), int(hdr[12])
    red_mask, green_mask, blue_mask = int(hdr[14]), int(hdr[15]), int(hdr[16])
    ncolors = int(hdr[19])
    off = header_size + ncolors * 12
    if bpp != 32:
        raise ValueError(f"unsupported XWD bits per pixel {bpp}")
    px = np.frombuffer(data, dtype="<u4" if byte_order == 0 else ">u4", count=height * bpl // 4, offset=off).reshape(height, bpl // 4)[:, :width]

    def chan(mask: int) -> np.ndarray:
        shift = (mask & -mask).bit_length() - 1
        return ((px & mask) >> shift).astype(np.uint8)

    return np.stack([chan(red_mask), chan(green_mask), chan(blue_mask)], -1)


# --- weights ---------------------------------------------------------------------------------


def weights_for_tests(tmp_dir: Path, *, brighten: bool = False) -> Path:
    """Weights for end-to-end live tests: $PSENET_STREAM_WEIGHTS, the shipped default, the
    official sice checkpoint from ../shared, or (last resort) a deterministic network that
    brightens every frame (gamma = 3 everywhere: Y = 1 - (1 - I)^3), so 'enhanced' is
    visibly brighter. ``brighten=True`` always gives that last one: for tests that check the
    enhanced picture is brighter whatever weights this checkout ships."""
    from psenet_stream.weights_io import DEFAULT_WEIGHTS, import_official, save_weights

    out = Path(tmp_dir) / ("live-test-gamma3.pt" if brighten else "live-test-weights.pt")
    if out.is_file():
        return out
    if not brighten:
        env = os.environ.get("PSENET_STREAM_WEIGHTS")
        if env and Path(env).is_file():
            return Path(env)
        if DEFAULT_WEIGHTS.is_file():
            return DEFAULT_WEIGHTS
        shared = Path(os.environ.get("PSENET_SHARED", ROOT.parent / "shared")) / "peers" / "psenet" / "sice.pth"
        if shared.is_file():
            import_official(shared, out)
            return out
    import torch

    from psenet_stream.model import PSENet

    torch.manual_seed(0)
    m = PSENet()
    with torch.no_grad():
        for p in m.last_conv.parameters():
            p.zero_()
        # gamma = |r + 1| with r the output of last_conv (no residual there): with every
        # weight zero, r is the bias of its final 1x1 conv
        last = [mod for mod in m.last_conv.modules() if isinstance(mod, torch.nn.Conv2d)][-1]
        last.bias.fill_(2.0)
    save_weights(out, m.state_dict(), {"note": "psenet-stream live tests: constant gamma 3"})
    return out


def subprocess_env(**extra) -> dict:
    env = dict(os.environ)
    env.setdefault("PYTHONPATH", str(ROOT))
    env["PYTHONUNBUFFERED"] = "1"
    env.update({k: str(v) for k, v in extra.items()})
    return env


PSENET = [sys.executable, "-m", "psenet_stream"]
