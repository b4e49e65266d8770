"""The video evaluation: exposure schedules, flicker, settling, and the eval command's --video."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from psenet_stream.commands.evaluate import evaluate as eval_cmd
from psenet_stream.evaluation import video as vq
from tests.media import make_video


def test_schedules():
    n, fps = 60, 20.0
    assert vq.Variant("c", "constant", -2).evs(n, fps) == [-2.0] * n
    hunt = vq.Variant("h", "hunt").evs(n, fps)
    assert min(hunt) == pytest.approx(-1.5, abs=0.05) and max(hunt) == pytest.approx(0.5, abs=0.05)
    step = vq.Variant("s", "step", -2).evs(n, fps)
    assert step[: n // 2] == [0.0] * (n // 2) and step[n // 2 :] == [-2.0] * (n - n // 2)
    with pytest.raises(ValueError, match="kind"):
        vq.Variant("x", "wobble").evs(3, fps)


def test_flicker_and_settle():
    assert vq.flicker([10, 12, 11, 11]) == pytest.approx(1.0)
    assert vq.flicker([5]) == 0.0
    y = [100] * 10 + [60, 70, 75, 79, 80] + [80] * 10
    assert vq.settle_frames(y, 10) == 3  # 60 and 70 and 75 are > 2 levels from 80
    assert vq.settle_frames([50] * 20, 10) == 0


def _clip(n=24, h=48, w=64, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 200, (h // 8, w // 8, 3)).astype(np.uint8).repeat(8, 0).repeat(8, 1)
    return [np.roll(base, i, axis=1) for i in range(n)]


def test_identity_scores_the_degradation_itself_and_a_perfect_method_wins():
    clean = _clip()

    def perfect_factory():
        frames = iter(clean * 4)  # one pass per variant, in order
        return lambda x: next(frames)

    r = vq.evaluate_video([("c", clean, 20.0)], {"identity": lambda: (lambda x: x), "perfect": perfect_factory})
    s = r["summary"]
    assert set(s) == {"under -2", "over +1.5", "hunt", "step"}
    assert s["under -2"]["identity"]["psnr"] < 20
    assert s["under -2"]["perfect"]["psnr"] > 60
    # a constant error keeps the clean clip's own flicker at identity, roughly; the hunt adds a lot
    assert s["hunt"]["identity"]["flicker"] > 3 * s["hunt"]["identity"]["flicker_clean"]
    assert s["hunt"]["perfect"]["flicker"] == pytest.approx(s["hunt"]["perfect"]["flicker_clean"])
    assert s["step"]["identity"]["settle_frames"] == 0  # the input itself follows the step at once
    assert "| hunt | perfect |" in vq.to_markdown(r)


def test_eval_command_video(tmp_path):
    clip = tmp_path / "c.mp4"
    make_video(clip, frames=16, width=64, height=48)
    out = tmp_path / "r.json"
    res = CliRunner().invoke(eval_cmd, ["--video", str(clip), "--max-frames", "12", "--video-long-side", "64", "--json", str(out), "-q"])
    assert res.exit_code == 0, res.output
    r = json.loads(out.read_text())["video"]
    assert r["setup"]["frames"] == [12]
    methods = {row["method"] for row in r["rows"]}
    assert any(m.endswith("video defaults") for m in methods)
    assert "| hunt |" in res.output
