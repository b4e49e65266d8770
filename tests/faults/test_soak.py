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
