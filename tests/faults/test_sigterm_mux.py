"""SIGTERM during the final mux and audio encode (and around it) leaves no temporary file.

The clip is 8 video frames and 4 minutes of PCM audio in Matroska (the reader says it "ended
early" when the video stops: the signal is sent after that); written as .webm the audio
must be re-encoded to Opus when the output is finished, after the last video frame: about
two seconds spent in ``pipeline.finish``, in the main thread, with the temporary output open. A real
``python -m psenet_stream`` gets SIGTERM (once, or twice: the second one interrupts the
encode itself) while that temporary exists. Whatever the timing: the process ends, no
``.psenet-*`` temporary is left, and the final name holds either nothing or a complete file.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from tests.faults.conftest import FAST, cli_env

AUDIO_S = 240


@pytest.fixture(scope="module")
def long_audio_clip(tmp_path_factory) -> Path:
    import av

    p = tmp_path_factory.mktemp("sigterm") / "talk.mkv"
    with av.open(str(p), "w") as oc:
        vs = oc.add_stream("libx264", rate=10, options={"preset": "ultrafast"})
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        a = oc.add_stream("pcm_s16le", rate=48000, layout="mono")
        for i in range(8):
            vf = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 30 * i, np.uint8), format="rgb24").reformat(format="yuv420p")
            vf.pts, vf.time_base = i, Fraction(1, 10)
            for pk in vs.encode(vf):
                oc.mux(pk)
        for pk in vs.encode(None):
            oc.mux(pk)
        rng = np.random.default_rng(0)
        chunk = 4800
        for off in range(0, 48000 * AUDIO_S, chunk):
            af = av.AudioFrame.from_ndarray(rng.integers(-8000, 8000, (1, chunk), dtype=np.int16), format="s16", layout="mono")
            af.sample_rate, af.pts, af.time_base = 48000, off, Fraction(1, 48000)
            for pk in a.encode(af):
                oc.mux(pk)
        for pk in a.encode(None):
            oc.mux(pk)
    return p


def _temps(d: Path) -> list[str]:
    return [p.name for p in d.iterdir() if p.name.startswith(".psenet-") or ".tmp" in p.name or ".partial" in p.name]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("delay,twice", [(0.0, True), (0.4, True), (1.0, True), (0.2, False)])
def test_sigterm_during_final_audio_encode_leaves_no_temporary(long_audio_clip, tmp_path, delay, twice):
    out = tmp_path / "out.webm"
    p = subprocess.Popen(
        [sys.executable, "-m", "psenet_stream", long_audio_clip, "-o", out, *FAST, "--progress"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=cli_env(),
    )
    try:
        buf = b""
        t0 = time.monotonic()
        while time.monotonic() - t0 < 120 and p.poll() is None:  # every frame read: only the mux is left
            if b"ended early" not in buf:
                buf += p.stderr.read1(256)
            elif _temps(tmp_path):
                break
            else:
                time.sleep(0.01)
        assert p.poll() is None, f"finished before the signal: {buf[-600:]!r}"
        seen = _temps(tmp_path)
        assert seen, "no temporary output while writing"
        time.sleep(delay)
        p.send_signal(signal.SIGTERM)
        if twice:
            time.sleep(0.3)
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(timeout=120)
        except subprocess.TimeoutExpired:
            pytest.fail("the process did not end after SIGTERM")
        err = (buf + p.stderr.read()).decode(errors="replace")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    print(f"delay {delay} twice {twice}: rc {rc}, output {out.exists()}, {err.strip().splitlines()[-1]!r}")
    assert "Traceback" not in err, err
    # -15: the second signal came while the interpreter was exiting (Python restores the
    # default handler then), after every temporary was removed: checked below
    assert rc in (0, 130, -signal.SIGTERM), (rc, err)
    assert not _temps(tmp_path), (_temps(tmp_path), err)
    if out.exists():  # a complete file, or none at all
        import av

        with av.open(str(out)) as c:
            assert c.streams.video and c.streams.audio
            assert float(c.duration or 0) / 1e6 > AUDIO_S - 5
    if rc == 130:
        assert "interrupted" in err


@pytest.mark.timeout(120)
def test_sigterm_while_starting_leaves_nothing(small_video_for_sigterm, tmp_path):
    """SIGTERM before the run's own handler is installed (while the model loads): exit 130."""
    out = tmp_path / "o.mp4"
    p = subprocess.Popen([sys.executable, "-m", "psenet_stream", small_video_for_sigterm, "-o", out, *FAST], stderr=subprocess.PIPE, env=cli_env())
    time.sleep(1.0)
    p.send_signal(signal.SIGTERM)
    rc = p.wait(timeout=60)
    err = p.stderr.read().decode(errors="replace")
    assert rc in (0, 130, -signal.SIGTERM), (rc, err)  # -15: before Python ran the CLI at all
    assert "Traceback" not in err, err
    assert not _temps(tmp_path)


@pytest.fixture(scope="module")
def small_video_for_sigterm(tmp_path_factory) -> Path:
    from tests.media import make_video

    p = tmp_path_factory.mktemp("sigterm-small") / "s.mp4"
    make_video(p, width=64, height=48, frames=20, fps=10)
    return p


@pytest.mark.slow  # the ONNX export takes 20-100 s on the shared CPU
@pytest.mark.timeout(300)
def test_sigterm_during_export_onnx_leaves_no_temporary(tmp_path):
    """A command without a run loop (export-onnx: export, parity check, metadata) gets SIGTERM
    while its temporary model exists: exit 130, nothing left (was: a leftover temporary)."""
    pytest.importorskip("onnxscript")
    out = tmp_path / "m.onnx"
    p = subprocess.Popen([sys.executable, "-m", "psenet_stream", "export-onnx", "-o", out], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=cli_env())
    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 240 and p.poll() is None and not _temps(tmp_path):
            time.sleep(0.005)
        if p.poll() is not None:
            pytest.skip("the export finished before its temporary was seen")
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=120)
        err = p.stderr.read().decode(errors="replace")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert rc in (130, 0), (rc, err)
    assert "Traceback" not in err, err
    assert not _temps(tmp_path) and not list(tmp_path.glob("*.partial")), list(tmp_path.iterdir())
    assert out.exists() == (rc == 0)
