"""The examples in examples/ run (the demo needs the fetched data and runs in `make demo`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(300)
def test_enhance_a_clip_example(tmp_path):
    out = tmp_path / "out.mp4"
    r = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "enhance_a_clip.py"), "--synthetic", str(out), "--backend", "cpu"],
        capture_output=True, text=True, timeout=280, cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 24
