"""A container on stdin keeps what a file keeps (issue 11): `cat in.ts | psenet-stream - -o
out.mp4` carries the audio, subtitles, attachments, tags and chapters over, cut alike when
trimmed, without reading the whole input first. The video and the other streams are
demuxed in one pass (io/streams.PacketFeed). Every run is the real CLI in a subprocess with
the input piped into its stdin; every check reads the output back with PyAV."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from fractions import Fraction

import av
import pytest

from tests.e2e.conftest import FAST, ROOT, run_module
from tests.richmedia import CHAPTERS, SUBTITLES, TAGS, make_interleaved, make_rich, streams_of, subtitle_texts

pytestmark = pytest.mark.timeout(180)

AAC_PACKET_S = 1024 / 48000  # one AAC frame of the test media
FRAME_S = 1 / 30

# containers a pipe can carry: MPEG-TS and matroska stream as they are; an MP4 needs its
# index (moov) first: written with faststart, or fragmented
CAMERA = {
    "ts": ("in.ts", {}),
    "mp4-faststart": ("in.mp4", {"movflags": "faststart"}),
    "mp4-fragmented": ("in.mp4", {"movflags": "frag_keyframe+empty_moov"}),
    "mkv": ("in.mkv", {}),
}


def _payload(data: bytes) -> bytes:
    """An AAC frame without its ADTS header (MPEG-TS carries one; MP4 and mkv strip it)."""
    if len(data) > 7 and data[0] == 0xFF and data[1] & 0xF6 == 0xF0:
        return data[7 if data[1] & 1 else 9 :]
    return data


def _facts(path) -> dict:
    """Video: frame count and span (first pts to last pts + one frame, s); per audio stream
    its packets' bytes (ADTS headers left out), start and end (s); the stream kinds."""
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        vts = sorted(Fraction(p.pts) * p.time_base for p in c.demux(vs) if p.pts is not None and p.size)
        kinds = [(s.type, s.codec_context.name if s.codec_context is not None else None) for s in c.streams]
        n_audio = len(c.streams.audio)
    step = vts[1] - vts[0] if len(vts) > 1 else Fraction(0)
    audio = []
    for i in range(n_audio):
        with av.open(str(path)) as c:
            ap = [p for p in c.demux(c.streams.audio[i]) if p.pts is not None and p.size]
            audio.append({
                "bytes": [_payload(bytes(p)) for p in ap],
                "start": float(ap[0].pts * ap[0].time_base),
                "end": float((ap[-1].pts + ap[-1].duration) * ap[-1].time_base),
            })
    return {"frames": len(vts), "video_s": float(vts[-1] - vts[0] + step), "video_end": float(vts[-1] + step), "audio": audio, "kinds": kinds}


def _pipe(inp, out, *args, spec="-"):
    """psenet-stream SPEC -o OUT with the bytes of ``inp`` on its stdin."""
    r = run_module([spec, "-o", out.name, *args, *FAST], cwd=out.parent, input=inp.read_bytes(), timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    return r.stderr.decode()


@pytest.mark.parametrize("kind", list(CAMERA))
def test_container_on_stdin_keeps_its_audio(kind, tmp_path):
    name, options = CAMERA[kind]
    inp = make_interleaved(tmp_path / name, seconds=3.0, options=options)
    out = tmp_path / "out.mp4"
    err = _pipe(inp, out, spec="pipe:" if kind == "mkv" else "-")
    assert "not kept" not in err and "warning" not in err, err
    a, b = _facts(inp), _facts(out)
    assert b["kinds"] == [("video", "h264"), ("audio", "aac")]
    assert b["frames"] == a["frames"] == 90
    assert b["video_s"] == pytest.approx(a["video_s"], abs=FRAME_S)
    assert len(b["audio"]) == 1
    assert b["audio"][0]["bytes"] == a["audio"][0]["bytes"]  # every packet, byte for byte
    assert b["audio"][0]["end"] - b["audio"][0]["start"] == pytest.approx(a["audio"][0]["end"] - a["audio"][0]["start"], abs=AAC_PACKET_S)


@pytest.mark.parametrize("kind", ["ts", "mkv"])
@pytest.mark.parametrize("trim", [["-ss", "0.5", "-t", "1"], ["--frames", "20"]], ids=["ss-t", "frames"])
def test_trimming_on_stdin_cuts_the_audio_like_a_file(kind, trim, tmp_path, cli_main):
    name, options = CAMERA[kind]
    inp = make_interleaved(tmp_path / name, seconds=3.0, options=options)
    piped = tmp_path / "piped.mkv"
    _pipe(inp, piped, *trim)
    code, err = cli_main([inp, "-o", tmp_path / "file.mkv", *trim, *FAST])
    assert code == 0, err
    a, b = _facts(tmp_path / "file.mkv"), _facts(piped)
    frames = 20 if "--frames" in trim else 30
    assert b["frames"] == a["frames"] == frames
    assert len(b["audio"]) == 1
    assert b["audio"][0]["bytes"] == a["audio"][0]["bytes"]  # the same packets as the file input keeps
    assert b["audio"][0]["end"] == pytest.approx(b["video_end"], abs=AAC_PACKET_S + 0.03)  # cut with the video
    assert b["audio"][0]["start"] == pytest.approx(0.0, abs=AAC_PACKET_S)


def test_mkv_on_stdin_keeps_subtitles_tracks_attachments_tags_and_chapters(tmp_path, cli_main):
    """Two audio tracks, a subtitle track, a font attachment, a cover picture track, tags and
    chapters: what the same file keeps when passed by name."""
    inp = make_rich(tmp_path / "rich.mkv", cover_first=True)
    piped = tmp_path / "piped.mkv"
    _pipe(inp, piped)
    code, err = cli_main([inp, "-o", tmp_path / "file.mkv", *FAST])
    assert code == 0, err
    file_streams = streams_of(tmp_path / "file.mkv")
    assert streams_of(piped) == file_streams
    kinds = sorted((x["type"], x["codec"], x["language"]) for x in file_streams if x["type"] in ("audio", "subtitle"))
    assert kinds == [("audio", "aac", "eng"), ("audio", "aac", "fra"), ("subtitle", "srt", "deu")]
    assert subtitle_texts(piped) == [(s / 1000, t) for s, _e, t in SUBTITLES]
    with av.open(str(piped)) as c:
        assert c.metadata["title"] == TAGS["title"]
        assert [(round(float(ch["start"] * ch["time_base"]), 3), ch["metadata"].get("title")) for ch in c.chapters()] == [
            (s / 1000, t) for s, _e, t in CHAPTERS
        ]
    assert _facts(piped)["frames"] == 30
    for x, y in zip(_facts(piped)["audio"], _facts(inp)["audio"]):
        assert x["bytes"] == y["bytes"]


def test_subtitles_on_stdin_converted_for_mp4(tmp_path):
    inp = make_interleaved(tmp_path / "in.mkv", seconds=1.5, subtitles=True)
    out = tmp_path / "out.mp4"
    _pipe(inp, out)
    assert [(x["type"], x["codec"], x["language"]) for x in streams_of(out)] == [
        ("video", "h264", "und"), ("audio", "aac", "eng"), ("subtitle", "mov_text", "deu")]
    assert subtitle_texts(out) == [(s / 1000, t) for s, _e, t in SUBTITLES]


def test_mp4_without_its_index_first_on_stdin_says_how_to_fix_it(tmp_path):
    inp = make_interleaved(tmp_path / "late-moov.mp4", seconds=30.0, w=96, h=64)  # moov at the end, past what a pipe can look ahead
    r = run_module(["-", "-o", "out.mp4", *FAST], cwd=tmp_path, input=inp.read_bytes(), timeout=120)
    err = r.stderr.decode()
    assert r.returncode == 3, err
    assert "stdin" in err and "faststart" in err and "Traceback" not in err
    assert not (tmp_path / "out.mp4").exists()


def test_live_ts_on_stdin_is_enhanced_while_it_streams(tmp_path):
    """A camera's MPEG-TS piped in: the output is being written while stdin is still open
    (the input is read as it comes, not spooled first), and once it closes the output has
    every frame and the whole audio."""
    inp = make_interleaved(tmp_path / "live.ts", seconds=16.0)
    data = inp.read_bytes()
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "psenet_stream", "-", "-o", "out.ts", *FAST], cwd=tmp_path, stdin=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    head = len(data) * 3 // 4
    writer = threading.Thread(target=lambda: (proc.stdin.write(data[:head]), proc.stdin.flush()), daemon=True)
    writer.start()
    try:
        grown, deadline = 0, time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            temps = list(tmp_path.glob(".psenet-*"))  # the output under its temporary name (renamed when complete)
            grown = max([t.stat().st_size for t in temps if t.exists()] + [0])
            if grown > 100_000:
                break
            time.sleep(0.1)
        assert proc.poll() is None, proc.stderr.read().decode()
        assert grown > 100_000, f"the output did not grow while stdin was open ({grown} bytes)"
        writer.join(timeout=90)
        proc.stdin.write(data[head:])
        proc.stdin.close()
        rc = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read().decode()
    assert rc == 0, err
    a, b = _facts(inp), _facts(tmp_path / "out.ts")
    assert b["frames"] == a["frames"] == 480
    assert b["audio"][0]["bytes"] == a["audio"][0]["bytes"]
