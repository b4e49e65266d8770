"""`psenet-stream clip.mp4`: timestamps, audio, rotation, colour, names, overwrite rules, SIGINT."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time

import av
import pytest
from click.testing import CliRunner

from tests.e2e.conftest import FAST, ROOT, run_module
from tests.media import BT709, read_video, sha256

pytestmark = pytest.mark.timeout(120)


def _copy(src, tmp_path, name=None):
    dst = tmp_path / (name or src.name)
    shutil.copy(src, dst)
    return dst


def test_subprocess_default_name_keeps_everything(media, tmp_path):
    """pts, audio packet bytes, size, rotation, colour tags, frame count; input untouched."""
    inp = _copy(media["clip"], tmp_path)
    before = sha256(inp)
    r = run_module([inp.name, *FAST, "-v"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr.decode()
    out = tmp_path / "clip_enhanced.mp4"
    assert out.is_file()
    assert sha256(inp) == before
    a, b = read_video(inp), read_video(out)
    assert b["frames"] == a["frames"] == 30
    assert b["pts_s"] == a["pts_s"]
    assert b["size"] == a["size"] == (160, 120)
    assert b["rotation"] == a["rotation"] == 90
    assert b["stream_color"] == BT709 and b["color"] == a["color"]
    assert b["audio_packets"] and b["audio_packets"] == a["audio_packets"]
    assert not (b["first_rgb"] == a["first_rgb"]).all()  # it did change the picture
    err = r.stderr.decode()
    assert "30 frames" in err and "fps" in err and "dropped" in err and "backend cpu" in err
    assert "Traceback" not in err
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left behind


def test_vfr_and_pcm_audio_pass_through(media, tmp_path, cli_main):
    out = tmp_path / "v.mkv"
    code, err = cli_main([media["vfr"], "-o", out, *FAST, "--batch", "3"])
    assert code == 0, err
    a, b = read_video(media["vfr"]), read_video(out)
    assert b["frames"] == a["frames"] == 24
    assert b["pts_s"] == a["pts_s"]
    gaps = {y - x for x, y in zip(b["pts_s"], b["pts_s"][1:])}
    assert len(gaps) > 1  # still variable frame rate
    assert b["audio_packets"] == a["audio_packets"]


def test_audio_falls_back_to_aac_when_container_refuses(media, tmp_path, cli_main):
    out = tmp_path / "m.mp4"  # mp4 cannot hold pcm_mulaw
    code, err = cli_main([media["mulaw"], "-o", out, *FAST])
    assert code == 0, err
    with av.open(str(out)) as c:
        assert [s.codec_context.name for s in c.streams.audio] == ["aac"]
        assert c.streams.video[0].frames == 12 or read_video(out)["frames"] == 12


def test_output_folder_gets_the_default_name(media, tmp_path, cli_main):
    (tmp_path / "outdir").mkdir()
    code, err = cli_main([media["clip"], "-o", tmp_path / "outdir", *FAST])
    assert code == 0, err
    assert read_video(tmp_path / "outdir" / "clip_enhanced.mp4")["frames"] == 30


def test_click_runner_and_encoder_options(media, tmp_path):
    from psenet_stream.cli import cli

    out = tmp_path / "o.mp4"
    res = CliRunner().invoke(
        cli, [str(media["clip"]), "-o", str(out), *FAST, "--preset", "ultrafast", "--crf", "30", "--strength", "0.5", "-q"]
    )
    assert res.exit_code == 0, res.output
    assert read_video(out)["frames"] == 30


def test_refuses_to_overwrite(media, tmp_path, cli_main):
    inp = _copy(media["clip"], tmp_path)
    out = tmp_path / "clip_enhanced.mp4"
    out.write_bytes(b"precious")
    code, err = cli_main([inp, *FAST])
    assert code == 4 and "already exists" in err and "--overwrite" in err
    assert out.read_bytes() == b"precious"
    code, err = cli_main([inp, *FAST, "--overwrite"])
    assert code == 0, err
    assert read_video(out)["frames"] == 30
    # never the input, not even with --overwrite
    h = sha256(inp)
    code, err = cli_main([inp, "-o", inp, *FAST, "--overwrite"])
    assert code == 4 and "input" in err
    assert sha256(inp) == h


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def _wait_for_progress(p, timeout=30.0) -> bytes:
    """Read stderr until the progress line shows some frames written."""
    buf = b""
    t0 = time.time()
    while time.time() - t0 < timeout:
        ch = p.stderr.read1(256) if hasattr(p.stderr, "read1") else p.stderr.read(1)
        if not ch:
            break
        buf += ch
        if b" frames (" in buf:
            return buf
    raise AssertionError(f"no progress seen: {buf[-500:]!r}")


@pytest.mark.parametrize(
    "keep, sig", [(False, signal.SIGINT), (True, signal.SIGINT), (False, signal.SIGTERM)], ids=["int", "int-keep", "term"]
)
def test_sigint_leaves_no_corrupt_output(media, tmp_path, keep, sig):
    inp = _copy(media["long"], tmp_path)
    args = [sys.executable, "-m", "psenet_stream", inp.name, *FAST, "--progress", "--batch", "1"]
    if keep:
        args.append("--keep-partial")
    import os

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.Popen(args, cwd=tmp_path, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env)
    try:
        _wait_for_progress(p)
        p.send_signal(sig)
        rest = p.communicate(timeout=60)[1]
    finally:
        if p.poll() is None:
            p.kill()
    err = rest.decode()
    assert p.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    assert not (tmp_path / "long_enhanced.mp4").exists()
    assert not list(tmp_path.glob(".*tmp*"))
    partial = tmp_path / "long_enhanced.partial.mp4"
    if keep:
        n = read_video(partial)["frames"]  # finalized: decodes cleanly
        assert 0 < n < 600
    else:
        assert not partial.exists()


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda d: d / "missing.mp4", "not found"),
        (lambda d: (d / "empty").mkdir() or d / "empty", "no images"),
        (lambda d: _write(d / "zero.mp4", b""), "empty file"),
        (lambda d: _write(d / "text.mp4", b"hello " * 100), "cannot read"),
    ],
    ids=["nonexistent", "dir-without-images", "zero-byte", "not-a-video"],
)
def test_bad_inputs_one_line_error(tmp_path, cli_main, make, fragment):
    code, err = cli_main([make(tmp_path), *FAST])
    assert code == 3, err
    assert err.startswith("error: ") and fragment in err and "hint: " in err
    assert "Traceback" not in err


def test_truncated_and_audio_only_inputs(media, tmp_path):
    data = media["clip"].read_bytes()
    trunc = tmp_path / "trunc.mp4"
    trunc.write_bytes(data[: len(data) // 3])  # moov at the end: cut off
    audio_only = tmp_path / "audio.m4a"
    with av.open(str(media["clip"])) as ic, av.open(str(audio_only), "w") as oc:
        oa = oc.add_stream_from_template(ic.streams.audio[0])
        for pkt in ic.demux(ic.streams.audio[0]):
            if pkt.dts is not None:
                pkt.stream = oa
                oc.mux(pkt)
    for path, fragment in ((trunc, "cannot read"), (audio_only, "no video stream")):
        r = run_module([str(path), *FAST], cwd=tmp_path)
        err = r.stderr.decode()
        assert r.returncode == 3, err
        assert fragment in err and "hint:" in err and "Traceback" not in err
    assert not list(tmp_path.glob("*_enhanced*"))


def test_live_lavfi_input_to_file(tmp_path, cli_main):
    """A paced virtual camera (io/live.py) through the live path: batch 1, drops counted."""
    out = tmp_path / "cam.mp4"
    code, err = cli_main(["lavfi:testsrc2=size=160x120:rate=30:duration=1,realtime", "-o", out, *FAST, "--stats-json", tmp_path / "s.json"])
    assert code == 0, err
    import json

    stats = json.loads((tmp_path / "s.json").read_text())
    r = read_video(out)
    assert r["frames"] == stats["frames_out"] > 10
    assert stats["frames_out"] + stats["dropped"] >= 25
    assert r["pts_s"] == sorted(set(r["pts_s"]))  # strictly increasing
    assert stats["latency_p95_ms"] < 1000


def test_live_input_needs_an_output(cli_main):
    code, err = cli_main(["lavfi:testsrc2=size=160x120:rate=30:duration=1", *FAST])
    assert code == 2 and "needs an output" in err and "-o" in err


def test_truncated_faststart_mp4_keeps_what_decodes_and_warns(media, tmp_path):
    """moov first, mdat cut: players play the first part; so do we, and we say so."""
    fast = tmp_path / "fast.mp4"
    with av.open(str(media["clip"])) as ic, av.open(str(fast), "w", options={"movflags": "faststart"}) as oc:
        m = {s.index: oc.add_stream_from_template(s) for s in ic.streams}
        for pkt in ic.demux():
            if pkt.dts is not None:
                pkt.stream = m[pkt.stream.index]
                oc.mux(pkt)
    data = fast.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 6 // 10])
    r = run_module([str(cut), *FAST], cwd=tmp_path)
    err = r.stderr.decode()
    assert r.returncode == 0, err
    assert "ended early" in err and "Traceback" not in err
    assert 0 < read_video(tmp_path / "cut_enhanced.mp4")["frames"] < 30


def test_stats_json_never_replaces_the_input_or_the_output(media, tmp_path, cli_main):
    """--stats-json is checked before any work: not the input, not the output, not an existing file."""
    inp = _copy(media["clip"], tmp_path)
    before = sha256(inp)
    out = tmp_path / "out.mp4"
    for target in (inp, out):
        code, err = cli_main([inp, "-o", out, *FAST, "--stats-json", target])
        assert code == 4 and "--stats-json" in err and "hint:" in err, err
    assert sha256(inp) == before and not out.exists()
    existing = tmp_path / "s.json"
    existing.write_text("keep me")
    code, err = cli_main([inp, "-o", out, *FAST, "--stats-json", existing])
    assert code == 4 and existing.read_text() == "keep me" and not out.exists()
    code, err = cli_main([inp, "-o", out, *FAST, "--stats-json", tmp_path / "fresh.json"])
    assert code == 0, err
    assert (tmp_path / "fresh.json").read_text().startswith("{") and not list(tmp_path.glob(".*partial"))


def test_a_publish_that_delivered_nothing_is_not_a_success(media, tmp_path, cli_main):
    """A short clip to a network output nobody listens on: the run ends before the publisher
    gives up, yet no frame arrived, so it exits 4 (it exited 0 before), with the URL masked."""
    import socket

    with socket.socket() as s:  # a loopback port with nothing behind it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inp = _copy(media["clip"], tmp_path)
    code, err = cli_main([inp, "-o", f"rtsp://u:Secr3t@127.0.0.1:{port}/x", *FAST])
    assert code == 4, err
    assert "no frame reached rtsp://u:***@127.0.0.1" in err and "hint:" in err and "Secr3t" not in err
