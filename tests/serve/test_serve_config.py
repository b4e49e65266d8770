"""serve's configuration: the TOML file and the IN=OUT short form (psenet_stream/serve/config.py)."""

from __future__ import annotations

import pytest

from psenet_stream.errors import UsageError
from psenet_stream.serve import config


def test_toml_with_every_field(tmp_path):
    p = tmp_path / "streams.toml"
    p.write_text(
        """
[serve]
batch = 4
deadline_ms = 12
metrics_port = 0

[[stream]]
name = "door"
input = "rtsp://admin:hunter2@cam.local/s1"
outputs = ["rtsp://127.0.0.1:8554/door", "rec/door.mp4", "null"]
strength = 0.7
smoothing = 0.5
infer_size = "128"

[[stream]]
input = "lavfi:testsrc2=size=640x360:rate=25,realtime"
output = "preview:http"
preview_port = 8091
"""
    )
    cfg = config.load(p)
    assert (cfg.batch, cfg.deadline_ms, cfg.metrics_port, cfg.path) == (4, 12, 0, str(p))
    door, second = cfg.streams
    assert door.name == "door" and door.outputs == ("rtsp://127.0.0.1:8554/door", "rec/door.mp4", "null")
    assert door.enhance_overrides() == {"strength": 0.7, "smoothing": 0.5, "infer_size": 128}
    assert door.safe_input == "rtsp://admin:***@cam.local/s1"
    assert second.name == "s2" and second.outputs == ("preview:http",) and second.preview_port == 8091
    assert config.load(p, batch=2).batch == 2  # the command line's settings win


def test_short_form_splits_at_the_output():
    cfg = config.load(["lavfi:testsrc2=size=640x360:rate=25,realtime=null", "cam.mp4=out/cam.mp4", "rtsp://u:p@c/x?a=1=rtsp://127.0.0.1:8554/o"])
    assert [(s.name, s.input, s.outputs) for s in cfg.streams] == [
        ("s1", "lavfi:testsrc2=size=640x360:rate=25,realtime", ("null",)),
        ("s2", "cam.mp4", ("out/cam.mp4",)),
        ("s3", "rtsp://u:p@c/x?a=1", ("rtsp://127.0.0.1:8554/o",)),
    ]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('[[stream]]\nname="a"\ninput="x.mp4"\n[[stream]]\nname="a"\ninput="y.mp4"\n', "two streams are named 'a'"),
        ('[[stream]]\nname="a"\ninput="x.mp4"\nstrength=9\n', "strength 9 out of range"),
        ('[[stream]]\nname="a b"\ninput="x.mp4"\n', "bad stream name"),
        ('[[stream]]\nname="a"\ninput="x.mp4"\ncolour="red"\n', "unknown key 'colour'"),
        ('[[stream]]\nname="a"\ninput="x.mp4"\noutputs=["o.mp4"]\n[[stream]]\nname="b"\ninput="y.mp4"\noutputs=["o.mp4"]\n', "same file o.mp4"),
        ("[[stream]\n", "not valid TOML"),
    ],
)
def test_bad_configs_name_the_problem(tmp_path, text, needle):
    p = tmp_path / "s.toml"
    p.write_text(text)
    with pytest.raises(UsageError, match=None) as e:
        config.load(p)
    assert needle in e.value.problem


def test_a_bad_pair_is_masked():
    with pytest.raises(UsageError) as e:
        config.load(["rtsp://admin:hunter2@cam/s1"])
    assert "hunter2" not in str(e.value) and "admin:***" in str(e.value)
