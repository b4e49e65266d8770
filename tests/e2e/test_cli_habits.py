"""ffmpeg habits through the real CLI (issue 11, "Habits"): option order, -y / -n, a mistyped
command, trimming with the audio cut to match, several inputs and globs, image sequences,
a container on stdin, option values checked before the model loads, encoder settings, the
wording of the summary, and a paced lavfi source. Media are synthesized (tests/media.py);
every check reads the output back with PyAV."""

from __future__ import annotations

import shutil
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from tests.e2e.conftest import FAST, run_module
from tests.media import make_video, read_video, sha256

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """2 s at 30 fps, 160x120, AAC audio (one track)."""
    p = tmp_path_factory.mktemp("habits") / "clip.mp4"
    make_video(p, frames=60, audio="aac")
    return p


def _copy(src, dst_dir, name=None):
    dst = dst_dir / (name or src.name)
    shutil.copy(src, dst)
    return dst


def _durations(path):
    """(video frames, video seconds (first pts to last pts + one frame), audio seconds (first
    packet start to last packet end), audio packets)."""
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        vts = sorted(Fraction(p.pts) * p.time_base for p in c.demux(vs) if p.pts is not None)
    step = vts[1] - vts[0] if len(vts) > 1 else Fraction(0)
    audio, packets = None, 0
    with av.open(str(path)) as c:
        if c.streams.audio:
            ap = [p for p in c.demux(c.streams.audio[0]) if p.pts is not None]
            packets = len(ap)
            audio = float((ap[-1].pts + ap[-1].duration) * ap[-1].time_base - ap[0].pts * ap[0].time_base)
    return len(vts), float(vts[-1] - vts[0] + step), audio, packets


# --- options and overwriting -------------------------------------------------------------------


def test_options_before_the_input(clip, tmp_path, cli_main):
    out = tmp_path / "out.mp4"
    code, err = cli_main(["-o", out, "-q", *FAST, clip])
    assert code == 0, err
    assert err == ""  # -q: only errors
    assert read_video(out)["frames"] == 60


def test_quiet_prints_nothing_at_all(clip, tmp_path):
    """In a subprocess, so FFmpeg's own log (encoder banners) would show up in stderr too."""
    r = run_module(["-q", clip, "-o", "o.mkv", "-c", "libx265", *FAST], cwd=tmp_path)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stderr == b""


def test_y_overwrites_n_never_does(clip, tmp_path, cli_main):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"old")
    code, err = cli_main([clip, "-o", out, *FAST])
    assert code == 4 and "already exists" in err and "-y" in err
    code, err = cli_main([clip, "-o", out, "-n", *FAST])
    assert code == 0, err
    assert out.read_bytes() == b"old" and "skipped" in err
    code, err = cli_main([clip, "-o", out, "-y", *FAST])
    assert code == 0, err
    assert read_video(out)["frames"] == 60
    for old_spelling in ("--overwrite", "--force"):  # old scripts still work
        code, err = cli_main([clip, "-o", out, old_spelling, *FAST])
        assert code == 0, err
    code, err = cli_main([clip, "-o", out, "-y", "-n", *FAST])
    assert code == 2 and "contradict" in err


def test_folder_run_skips_outputs_that_exist(tmp_path, cli_main):
    src = tmp_path / "photos"
    src.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        cv2.imwrite(str(src / name), np.full((40, 48, 3), 40, np.uint8))
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "b.png").write_bytes(b"keep me")
    code, err = cli_main([src, "-o", dest, "--skip-existing", *FAST])
    assert code == 0, err
    assert (dest / "b.png").read_bytes() == b"keep me"
    assert cv2.imread(str(dest / "a.png")) is not None and cv2.imread(str(dest / "c.png")) is not None
    assert "2 images" in err


@pytest.mark.parametrize("command", ["enhance", "webcam", "export-onnx", "import-weights", "build-engine", "data", "batch"])
def test_every_command_spells_overwrite_y(command):
    from click.testing import CliRunner

    from psenet_stream.cli import cli

    text = CliRunner().invoke(cli, [command, "--help"]).output
    assert "-y, " in text, text


def test_mistyped_command_gets_did_you_mean(tmp_path, cli_main, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, err = cli_main(["doctr"])
    assert code == 2 and "did you mean doctor?" in err
    code, err = cli_main(["benhc", "--help"])
    assert code == 2 and "did you mean bench?" in err
    (tmp_path / "doctr").write_bytes(b"not a video")  # a file of that name is an input
    code, err = cli_main(["doctr", *FAST])
    assert code == 3 and "did you mean" not in err


def test_options_before_a_command_name(tmp_path, cli_main, monkeypatch):
    """`psenet-stream -q doctor`: options before a command name go to that command; -q / -v
    set the message level of a command without its own; any other option the command does
    not take is an exit-2 error naming it and the command."""
    import json
    import logging

    r = run_module(["-q", "doctor", "--json"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr.decode()
    assert "versions" in json.loads(r.stdout) and r.stderr == b""
    for args, level in ((["-q", "doctor", "--json"], logging.ERROR), (["-vv", "doctor", "--json"], logging.DEBUG), (["-v", "--json", "doctor"], logging.INFO)):
        code, err = cli_main(args)
        assert code == 0, err
        assert logging.getLogger("psenet_stream").level == level, args
    onnx = tmp_path / "x.onnx"
    onnx.write_bytes(b"keep")
    missing = str(tmp_path / "missing.pt")  # fails right after the overwrite check: no export runs
    code, err = cli_main(["-o", onnx, "export-onnx", "--weights", missing])  # -o went to export-onnx
    assert code == 4 and "already exists" in err and onnx.read_bytes() == b"keep"
    code, err = cli_main(["-y", "-q", "-o", onnx, "export-onnx", "--weights", missing])  # so did -y
    assert code == 5 and "weights file not found" in err
    for args, opt in ((["-y", "doctor"], "-y"), (["-o", "x.mp4", "doctor"], "-o"), (["--bogus", "doctor"], "--bogus"), (["-n", "-q", "serve", "--help"], "-n")):
        code, err = cli_main(args)
        assert code == 2 and f"{opt} (given before the command name) is not an option of '{args[-1] if args[-1] != '--help' else args[-2]}'" in err, err
        assert "Traceback" not in err
    import click

    from psenet_stream.cli import cli

    # a command with --quiet but no -q (train) gets --quiet; one with -q / -vv of its own keeps them
    assert cli._options_before_command(click.Context(cli), ["-q", "train", "--steps", "1"]) == ["train", "--quiet", "--steps", "1"]
    assert cli._options_before_command(click.Context(cli), ["-vv", "-q", "serve", "x"]) == ["serve", "-vv", "-q", "x"]
    monkeypatch.chdir(tmp_path)
    code, err = cli_main(["-q", "doctr"])
    assert code == 2 and "did you mean doctor?" in err
    code, err = cli_main(["-o", "doctor", "-q", "in.mp4"])  # a command name as an option's value is just the value
    assert code == 3 and "in.mp4" in err


# --- trimming and several inputs -------------------------------------------------------------------


def test_trim_start_and_duration_cut_the_audio_too(clip, tmp_path, cli_main):
    out = tmp_path / "trim.mp4"
    code, err = cli_main([clip, "-ss", "0.5", "-t", "1", "-o", out, *FAST])
    assert code == 0, err
    frames, video_s, audio_s, _ = _durations(out)
    assert frames == 30 and video_s == pytest.approx(1.0, abs=1e-6)
    assert audio_s == pytest.approx(1.0, abs=0.05)  # AAC packets are 21 ms
    first = read_video(out)["first_rgb"]
    assert first.shape == (120, 160, 3)
    # the kept audio is the input's, byte for byte, from the packet across 0.5 s on
    a_in, a_out = read_video(clip)["audio_packets"], read_video(out)["audio_packets"]
    start = next(i for i in range(len(a_in)) if a_in[i : i + len(a_out)] == a_out)
    assert 0.45 < start * 1024 / 48000 < 0.52


def test_trim_time_syntax_and_frame_count(clip, tmp_path, cli_main):
    out = tmp_path / "f.mkv"
    code, err = cli_main([clip, "-ss", "00:00:01.000", "--frames", "10", "-o", out, *FAST])
    assert code == 0, err
    frames, video_s, audio_s, _ = _durations(out)
    assert frames == 10 and video_s == pytest.approx(10 / 30, abs=0.002)
    assert audio_s == pytest.approx(10 / 30, abs=0.05)
    code, err = cli_main([clip, "-t", "0.5", "-o", tmp_path / "t.mp4", *FAST])
    assert code == 0, err
    assert _durations(tmp_path / "t.mp4")[0] == 15
    code, err = cli_main([clip, "-ss", "1:2:3:4", *FAST])
    assert code == 2 and "not a time" in err


def test_a_long_start_seeks_to_the_right_frame(tmp_path, cli_main):
    """-ss past 2 s seeks (to the key frame before) and then drops frames: the first frame out
    is the one at the start time, B-frames and all."""
    from tests.media import pattern

    src = tmp_path / "long.mp4"
    make_video(src, frames=150, audio="aac", bframes=True)
    out = tmp_path / "o.mp4"
    code, err = cli_main([src, "-ss", "3.5", "-t", "1", "--strength", "0", "-o", out, *FAST])
    assert code == 0, err
    first = read_video(out)["first_rgb"].astype(int)
    best = min(range(95, 116), key=lambda i: np.abs(first - pattern(i, 160, 120)).mean())
    assert best == 105
    frames, _, audio_s, _ = _durations(out)
    assert frames == 30 and audio_s == pytest.approx(1.0, abs=0.05)
    code, err = cli_main([src, "-ss", "10", "-o", tmp_path / "p.mp4", *FAST])
    assert code == 3 and "past the end" in err


def test_several_inputs_and_globs_into_a_folder(clip, tmp_path, cli_main):
    a = _copy(clip, tmp_path, "a.mp4")
    make_video(tmp_path / "b.mp4", frames=12)
    dest = tmp_path / "enhanced"
    code, err = cli_main([a, tmp_path / "b.mp4", "-o", dest, *FAST])
    assert code == 0, err
    assert read_video(dest / "a_enhanced.mp4")["frames"] == 60
    assert read_video(dest / "b_enhanced.mp4")["frames"] == 12
    # a quoted glob, -n: both outputs exist, nothing is redone
    before = sha256(dest / "a_enhanced.mp4")
    code, err = cli_main([str(tmp_path / "*.mp4"), "-n", "-o", dest, *FAST])
    assert code == 0, err
    assert sha256(dest / "a_enhanced.mp4") == before and err.count("skipped") == 2
    code, err = cli_main([a, tmp_path / "b.mp4", "-o", tmp_path / "one.mp4", *FAST])
    assert code == 2 and "folder" in err
    code, err = cli_main([str(tmp_path / "*.nothing"), *FAST])
    assert code == 3 and "no file matches" in err


def test_several_inputs_one_fails_the_others_run(clip, tmp_path, cli_main):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\0" * 100)
    code, err = cli_main([bad, clip, "-o", tmp_path / "o", *FAST])
    assert code == 3, err
    assert "bad.mp4" in err and (tmp_path / "o" / "clip_enhanced.mp4").is_file()


def test_image_sequence_out_and_back_in(clip, tmp_path, cli_main):
    code, err = cli_main([clip, "-o", tmp_path / "out_%04d.png", "-t", "0.5", *FAST])
    assert code == 0, err
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [f"out_{i:04d}.png" for i in range(1, 16)]  # numbered from 1, nothing hidden left behind
    assert cv2.imread(str(tmp_path / "out_0001.png")).shape == (120, 160, 3)
    code, err = cli_main([tmp_path / "out_%04d.png", "--fps", "30", "-o", tmp_path / "back.mp4", *FAST])
    assert code == 0, err
    v = read_video(tmp_path / "back.mp4")
    assert v["frames"] == 15 and v["pts_s"][1] - v["pts_s"][0] == Fraction(1, 30)
    code, err = cli_main([tmp_path / "none_%03d.png", *FAST])
    assert code == 3 and "image sequence" in err


@pytest.mark.parametrize("spec", ["-", "pipe:"])
def test_container_on_stdin(spec, tmp_path):
    src = tmp_path / "in.mkv"
    make_video(src, frames=20)
    r = run_module([spec, "-o", "out.mp4", *FAST], cwd=tmp_path, input=src.read_bytes())
    assert r.returncode == 0, r.stderr.decode()
    a, b = read_video(src), read_video(tmp_path / "out.mp4")
    assert b["frames"] == a["frames"] == 20 and b["size"] == (160, 120)


# --- exit codes and errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, says",
    [
        (["--strength", "-1"], "0<=x<=1"),
        (["--strength", "2"], "0<=x<=1"),
        (["--smoothing", "nan"], "finite"),
        (["--preset", "veryfats"], "'veryfast'"),
        (["--codec", "aac"], "not a video encoder"),
        (["--codec", "libnothing"], "not an encoder"),
        (["--fps", "nan"], "finite"),
        (["--infer-size", "8"], "16..4096"),
        (["--bitrate", "fast"], "bit rate"),
        (["--encoder-opt", "novalue"], "KEY=VALUE"),
        (["-o", "x.gif", "--crf", "20"], "--crf is ignored by the encoder gif"),
        (["--pix-fmt", "rgb48"], "does not take --pix-fmt"),
        (["--size", "0x10"], "frame size"),
    ],
)
def test_bad_option_values_exit_2_before_the_model_loads(args, says, clip, tmp_path, cli_main, monkeypatch):
    monkeypatch.setenv("PSENET_STREAM_WEIGHTS", str(tmp_path / "missing.pt"))  # loading a model would exit 5
    monkeypatch.chdir(tmp_path)
    code, err = cli_main([clip, *args, "--backend", "cpu"])
    assert code == 2, err
    assert says in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())  # nothing written


def test_an_encoder_that_cannot_open_is_reported_once(clip, tmp_path, cli_main):
    code, err = cli_main([clip, "-o", tmp_path / "o.mp4", "--encoder-opt", "profile=bogus", *FAST])
    assert code == 4, err
    assert err.count("error:") == 1 and "video encoder libx264 cannot start" in err
    assert "audio" not in err
    assert not list(tmp_path.iterdir())


def test_summary_wording(clip, tmp_path, cli_main):
    img = tmp_path / "p.png"
    cv2.imwrite(str(img), np.full((40, 48, 3), 40, np.uint8))
    code, err = cli_main([img, *FAST])
    assert code == 0, err
    assert "1 image in" in err and "backend" not in err
    code, err = cli_main([clip, "-o", tmp_path / "o.mp4", *FAST])
    assert code == 0, err
    assert "60 frames in" in err and "latency" not in err and "backend" not in err
    code, err = cli_main([clip, "-o", tmp_path / "o.mp4", "-y", "-v", *FAST])
    assert "backend cpu" in err


def test_the_default_backend_is_not_announced_without_v(tmp_path, cli_main):
    """--backend auto (the default) says which backend it picked only with -vv."""
    img = tmp_path / "p.png"
    cv2.imwrite(str(img), np.full((40, 48, 3), 40, np.uint8))
    code, err = cli_main([img, "--infer-size", "32"])
    assert code == 0 and "1 image in" in err, err
    assert "backend auto" not in err and "onnx" not in err and "cpu" not in err.replace(str(tmp_path), ""), err
    code, err = cli_main([img, "--infer-size", "32", "-y", "-vv"])
    assert code == 0 and "backend auto -> " in err, err


# --- encoding -----------------------------------------------------------------------------------------


def test_hevc_in_mp4_is_tagged_hvc1(clip, tmp_path, cli_main):
    out = tmp_path / "h.mp4"
    code, err = cli_main([clip, "-o", out, "-c", "libx265", "--crf", "30", *FAST])
    assert code == 0, err
    with av.open(str(out)) as c:
        vs = c.streams.video[0]
        assert vs.codec_context.name == "hevc" and vs.codec_tag == "hvc1"
        assert c.streams.audio  # the audio is still copied


def test_pix_fmt_bitrate_and_encoder_options(clip, tmp_path, cli_main):
    out = tmp_path / "p.mp4"
    code, err = cli_main([clip, "-o", out, "--pix-fmt", "yuv444p", "--bitrate", "150k", "--maxrate", "200k", "--x264-params", "keyint=5:min-keyint=5:scenecut=0", *FAST])
    assert code == 0, err
    with av.open(str(out)) as c:
        vs = c.streams.video[0]
        assert vs.codec_context.pix_fmt == "yuv444p"
        packets = [p for p in c.demux(vs) if p.size]
        keyframes = sum(p.is_keyframe for p in packets)
        kbps = sum(p.size for p in packets) * 8 / 2.0 / 1000
    assert keyframes == 12  # keyint=5 over 60 frames
    assert 60 < kbps < 260  # near 150k (x264's ABR on a 2 s clip), far from the CRF 18 rate
    code, err = cli_main([clip, "-o", tmp_path / "q.mp4", "--encoder-opt", "g=10", "--encoder-opt", "bf=0", *FAST])
    assert code == 0, err
    with av.open(str(tmp_path / "q.mp4")) as c:
        assert sum(p.is_keyframe for p in c.demux(c.streams.video[0]) if p.size) == 6


def test_codec_auto_picks_a_working_encoder(clip, tmp_path, cli_main):
    from psenet_stream.io.hwcodecs import hw_codecs

    out = tmp_path / "a.mp4"
    code, err = cli_main([clip, "-o", out, "--codec", "auto", *FAST])
    assert code == 0, err
    with av.open(str(out)) as c:
        name = c.streams.video[0].codec_context.codec.name
    working = [n for n, why in hw_codecs()["encoders"].items() if why == "" and n.startswith("h264")]
    assert name == "h264"  # whichever encoder made it, it is H.264
    if not working:  # no hardware encoder here: libx264's stream (x264 writes its SEI banner)
        assert b"x264" in out.read_bytes()


# --- live sources -----------------------------------------------------------------------------------------


def test_re_reads_a_file_at_its_own_rate(clip, tmp_path, cli_main):
    import json

    stats = tmp_path / "s.json"
    code, err = cli_main([clip, "-re", "-o", tmp_path / "o.mp4", "--stats-json", stats, *FAST])
    assert code == 0, err
    assert json.loads(stats.read_text())["seconds"] >= 1.9  # 60 frames at 30 fps: never faster than 2 s
    assert read_video(tmp_path / "o.mp4")["frames"] == 60


def test_a_paced_lavfi_source_records_at_its_own_rate(tmp_path, cli_main):
    out = tmp_path / "live.mp4"
    code, err = cli_main(["lavfi:testsrc2=size=160x120:rate=10", "-t", "2", "-o", out, *FAST])
    assert code == 0, err
    v = read_video(out)
    span = float(v["pts_s"][-1] - v["pts_s"][0])
    fps = (v["frames"] - 1) / span
    assert fps == pytest.approx(10, rel=0.15), (v["frames"], span)
    assert "interrupted" not in err


def test_webcam_takes_t_and_a_camera_index(tmp_path, cli_main):
    """ffmpeg's -t and OpenCV's camera index (--device 7 -> /dev/video7) in the webcam command;
    its summary names the backend only with -v, like the other commands."""
    out = tmp_path / "rec.mp4"
    cam = "lavfi:testsrc2=size=160x90:rate=10"
    code, err = cli_main(["webcam", "--device", cam, "--preview", "none", "-o", out, "-t", "1", "--backend", "cpu", "--infer-size", "32"])
    assert code == 0 and out.exists(), err
    assert " frames in " in err and "backend cpu" not in err, err
    code, err = cli_main(["webcam", "--device", cam, "--preview", "none", "-o", out, "-y", "-t", "1", "--backend", "cpu", "--infer-size", "32", "-v"])
    assert code == 0 and "backend cpu" in err, err
    code, err = cli_main(["webcam", "--device", "7", "--preview", "none", "-o", tmp_path / "x.mp4", "-t", "1"])
    assert code == 3 and "no camera at /dev/video7" in err, err
    code, err = cli_main(["webcam", "-t", "-1"])
    assert code == 2 and "x>0" in err, err


def test_crf_is_checked_against_the_encoders_own_range(clip, tmp_path, cli_main):
    """x264 takes --crf 0..51 (it would clamp 60 silently); libvpx-vp9 takes up to 63."""
    code, err = cli_main([clip, "-o", tmp_path / "o.mp4", "--crf", "60"])
    assert code == 2 and "--crf 60 is out of range for libx264" in err and "0..51" in err, err
    assert not (tmp_path / "o.mp4").exists()
    code, err = cli_main([clip, "-o", tmp_path / "o.webm", "--crf", "60", "--frames", "3", "--backend", "cpu", "--infer-size", "32"])
    assert code == 0 and (tmp_path / "o.webm").exists(), err
    code, err = cli_main(["batch", clip, "-o", tmp_path / "b", "--crf", "60"])
    assert code == 2 and "out of range for libx264" in err and not (tmp_path / "b").exists(), err
