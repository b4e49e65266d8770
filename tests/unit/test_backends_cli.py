"""The backend commands end to end on the CPU: doctor, bench, build-engine without TensorRT."""

from __future__ import annotations

import json
import os
import re

import pytest
import torch
from test_backends import session_weights

from psenet_stream.cli import main


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Test weights as the default weights, and the session's ONNX cache."""
    keys = ("PSENET_STREAM_WEIGHTS", "PSENET_STREAM_CACHE")
    old = {k: os.environ.get(k) for k in keys}
    os.environ["PSENET_STREAM_WEIGHTS"] = str(session_weights(tmp_path_factory))
    os.environ["PSENET_STREAM_CACHE"] = str(tmp_path_factory.getbasetemp() / "psenet-cache")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def test_doctor_prints_every_section(env, capsys):
    from psenet_stream.commands.doctor import SECTIONS

    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    for s in SECTIONS:
        assert f"[{s}]" in out
    for needle in ("python", "torch", "FFmpeg", "onnxruntime", "torch_tensorrt", "libx264", "h264_nvenc", "h264_cuvid", "DISPLAY", "Xvfb", "sha256", "auto picks"):
        assert needle in out, needle
    assert "Traceback" not in out
    assert not re.search(r"^\s+error\s", out, re.MULTILINE), out  # no section failed


def test_doctor_survives_a_failing_section(env, capsys, monkeypatch):
    from psenet_stream.commands import doctor

    def boom():
        raise RuntimeError("driver exploded")

    monkeypatch.setitem(doctor.FUNCS, "cuda", boom)
    assert main(["doctor", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["cuda"] == {"error": "RuntimeError: driver exploded"}
    assert set(report) == set(doctor.SECTIONS)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-TensorRT path")
def test_build_engine_without_tensorrt_is_a_clear_error(env, capsys):
    with pytest.raises(SystemExit) as e:
        main(["build-engine"])
    assert e.value.code == 5
    err = capsys.readouterr().err
    assert err.startswith("error: cannot use TensorRT here") and "hint:" in err
    assert "Traceback" not in err


def test_build_engine_rejects_a_bad_range_before_anything_else(env, capsys):
    with pytest.raises(SystemExit) as e:
        main(["build-engine", "--min", "8x3x144x256", "--opt", "1x3x144x256"])
    assert e.value.code == 5
    assert "not ordered" in capsys.readouterr().err


def test_bench_runs_end_to_end_and_writes_json(env, tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = ["bench", "--backends", "cpu,onnx,cuda", "--sizes", "64x48", "--frames", "3", "--json", str(out), "--no-live"]
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "infer fps" in table and "video fps" in table and "targets:" in table
    result = json.loads(out.read_text())
    assert result["meta"]["weights_sha256"] and result["meta"]["command"].startswith("psenet-stream bench")
    rows = {(r["backend"], r["size"], r["infer_size"]): r for r in result["rows"]}
    for name in ("cpu", "onnx"):
        r = rows[(name, "64x48", "default")]
        assert not r["skipped"], r
        assert r["infer_fps"] > 0 and r["peak_rss_mb"] > 0
        assert r["video_fps"] > 0  # the clip in order with the video defaults (gamma reuse)
        if not r["notes"]:  # the pipeline is there: file figures measured side by side
            assert r["file_fps"] > 0 and r["plain_fps"] > 0 and r["ratio"] > 0
    if not torch.cuda.is_available():
        assert rows[("cuda", "64x48", "default")]["skipped"]


def test_bench_preset_and_infer_size_reach_the_transcodes(env, tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = ["bench", "--backends", "cpu", "--sizes", "64x48", "--frames", "3", "--json", str(out), "--no-live", "--preset", "ultrafast", "--infer-size", "32", "--rounds", "2"]
    assert main(argv) == 0
    result = json.loads(out.read_text())
    meta = result["meta"]
    assert "preset=ultrafast" in meta["file_codec"] and meta["infer_size"] == 32
    assert "--preset ultrafast" in meta["command"] and "--infer-size 32" in meta["command"] and "--rounds 2" in meta["command"]
    # two rounds, plain and enhanced alternating: the median and the spread, and the load they ran under
    assert meta["rounds"] == 2 and len(meta["loadavg_start"]) == 3
    row = result["rows"][0]
    if not row["notes"]:
        assert len(row["rounds"]) == 2 and all(r["plain_s"] > 0 and r["enhanced_s"] > 0 for r in row["rounds"])
        assert row["ratio_min"] <= row["ratio"] <= row["ratio_max"]
        assert row["reuse"]["frames"] == 3 and row["reuse"]["predicted"] >= 1


def test_bench_sizes_are_checked(env, capsys):
    with pytest.raises(SystemExit) as e:
        main(["bench", "--sizes", "64by48"])
    assert e.value.code == 2
    assert "bad size" in capsys.readouterr().err
