"""The output's disk fills up (RLIMIT_FSIZE in the child: writes fail with EFBIG, which
Python does not turn into a signal, exactly like ENOSPC would fail them).

Mid-stream or while the trailer (mp4 index) is written: exit 4 with one clear error, no
output under the final name (never an unplayable file that looks complete), no temp file.
"""

from __future__ import annotations

import resource
import subprocess
import sys

import pytest

from tests.faults.conftest import FAST, cli_env
from tests.media import make_video, sha256


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    p = tmp_path_factory.mktemp("diskfull") / "in.mp4"
    make_video(p, width=160, height=120, frames=90, audio="aac")
    return p


def _run(clip, out, limit: int | None):
    def pre():
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run([sys.executable, "-m", "psenet_stream", clip, "-o", out, *FAST, "--batch", "1"], preexec_fn=pre,
                          capture_output=True, timeout=120, env=cli_env())


@pytest.mark.parametrize("where", ["mid-stream", "trailer"])
def test_disk_full(clip, tmp_path, where):
    before = sha256(clip)
    if where == "trailer":
        ref = tmp_path / "ref.mp4"
        assert _run(clip, ref, None).returncode == 0
        limit = ref.stat().st_size - 300  # every packet fits, the mp4 index (moov, at the end) does not
        ref.unlink()
    else:
        limit = 20_000
    out = tmp_path / "out.mp4"
    r = _run(clip, out, limit)
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 4, err
    assert "Traceback" not in err and "internal error" not in err, err
    assert "error: cannot write out.mp4" in err and "hint: check the free space" in err, err
    assert not out.exists(), "a truncated, unplayable file under the final name"
    assert [p.name for p in tmp_path.iterdir()] == []
    assert sha256(clip) == before
