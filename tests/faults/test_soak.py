"""The soak (slow): 720p at real-time pace through the real pipeline; see tests/faults/soak.py.

    PSENET_SOAK_S=1200 pytest -m slow tests/faults/test_soak.py -s
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest


@pytest.mark.slow
@pytest.mark.timeout(0)
def test_soak_720p_realtime(tmp_path, fault_weights):
    from tests.faults.soak import soak

    seconds = float(os.environ.get("PSENET_SOAK_S", "1200"))
    s = soak(seconds, warmup=min(60.0, seconds / 4), weights=str(fault_weights), out_dir=tmp_path, log=lambda *a, **k: None)
    (tmp_path / "soak.json").write_text(json.dumps(s, indent=1))
    out = os.environ.get("PSENET_SOAK_JSON")
    if out:
        Path(out).write_text(json.dumps(s, indent=1) + "\n")
    assert s["error"] is None
    assert not s["pipeline_stuck_after_stop"]
    assert s["frames_out"] > 0
    assert s["rss_growth_pct"] is not None and s["rss_growth_pct"] < 5.0, s["rss_growth_pct"]
    assert s["latency_flat"] is not False, (s["latency_p50_first_ms"], s["latency_p50_last_ms"])
    assert s["leaked_threads"] == [], s["leaked_threads"]


def _check_flaky(s: dict, min_cycles: int) -> None:
    assert s["error"] is None, s["error"]
    assert not s["pipeline_stuck_after_stop"]
    assert s["leaked_threads"] == [], s["leaked_threads"]
    assert s["temporaries_left"] == [], s["temporaries_left"]
    assert s["camera_cycles"] >= min_cycles, s["camera_cycles"]
    assert s["reconnects"] >= s["camera_cycles"] - 2, (s["reconnects"], s["camera_cycles"])
    assert s["frames_in_file"] and s["frames_in_file"] >= s["frames_out"] * 0.9, (s["frames_in_file"], s["frames_out"])


@pytest.mark.timeout(180)
def test_flaky_camera_soak_fast(tmp_path, fault_weights):
    """A camera that drops and returns three times: the live filter reconnects each time, the
    recording is committed and plays, no thread or temporary is left (make test)."""
    from tests.faults.soak import flaky_soak

    s = flaky_soak(float(os.environ.get("PSENET_FLAKY_FAST_S", "14")), weights=str(fault_weights), out_dir=tmp_path, log=lambda *a, **k: None)
    _check_flaky(s, min_cycles=2)


@pytest.mark.slow
@pytest.mark.timeout(0)
def test_flaky_camera_soak_long(tmp_path, fault_weights):
    """The same for 10 minutes (PSENET_FLAKY_SOAK_S): also RSS flat within 10 %."""
    from tests.faults.soak import flaky_soak

    s = flaky_soak(float(os.environ.get("PSENET_FLAKY_SOAK_S", "600")), weights=str(fault_weights), out_dir=tmp_path, log=lambda *a, **k: None)
    out = os.environ.get("PSENET_SOAK_JSON")
    if out:
        Path(out).write_text(json.dumps(s, indent=1) + "\n")
    _check_flaky(s, min_cycles=10)
    assert s["rss_growth_pct"] is not None and s["rss_growth_pct"] < 10.0, s["rss_growth_pct"]
