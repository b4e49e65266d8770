"""Media fidelity, bit depth and HDR (issue 11): 10-bit in gives 10-bit out with the curve at
full precision; PQ and HLG clips (synthesized from an SDR pattern) are corrected on an SDR
rendition and written back HDR with their tags and metadata; --hdr sdr tone-maps.
Checked with PyAV on the files written."""

from __future__ import annotations

import numpy as np
import pytest

from psenet_stream.hdr import rendition
from tests.e2e.conftest import FAST
from tests.richmedia import HDR_TAGS, hdr_facts, luma10, make_10bit, make_hdr

pytestmark = pytest.mark.timeout(180)
CPU = ["--backend", "cpu", "--threads", "1"]  # the network at its own working size: the real correction


@pytest.mark.parametrize("codec, ext", [("libx264", "mkv"), ("libx265", "mp4")])
def test_10bit_in_gives_10bit_out_at_full_precision(tmp_path, cli_main, codec, ext):
    inp = make_10bit(tmp_path / f"r.{ext}", w=512)
    fmt_in, y_in = luma10(inp)
    assert fmt_in == "yuv420p10le" and len(np.unique(y_in[8])) > 300  # more levels than 8 bits hold
    out = tmp_path / f"o.{ext}"
    code, err = cli_main([inp, "-o", out, "--codec", codec, "--crf", "0", *FAST])
    assert code == 0, err
    fmt, y = luma10(out)
    assert fmt == "yuv420p10le"
    assert not np.array_equal(y, y_in)  # it was enhanced
    # an 8-bit path (the 8-bit table) would leave at most ~100 distinct levels of this ramp
    # (385 10-bit codes -> 97 8-bit ones); the float curve keeps them apart
    assert len(np.unique(y[8])) > 200
    assert (np.unique(y[8]) % 4 != 0).mean() > 0.5  # levels between the 8-bit ones


def test_8bit_stays_8bit(media, tmp_path, cli_main):
    out = tmp_path / "o.mp4"
    code, err = cli_main([media["clip"], "-o", out, *FAST])
    assert code == 0, err
    assert luma10(out)[0] == "yuv420p"


def _below_white(rgb16, trc):
    r = rendition(rgb16, trc)
    return r[48:, :] * 255.0  # below the highlight patch: the under-exposed SDR part


@pytest.mark.parametrize("kind, codec", [("PQ", None), ("HLG", "libx265")])  # the default encoder (libx264 High 10) and x265
def test_hdr_is_corrected_and_stays_hdr(tmp_path, cli_main, kind, codec):
    inp = make_hdr(tmp_path / f"{kind}.mp4", kind)
    a = hdr_facts(inp)
    assert a["color"] == HDR_TAGS[kind] and a["side"]["cll"] == (1000, 400)
    out = tmp_path / f"{kind}_out.mp4"
    code, err = cli_main([inp, "-o", out, *(["--codec", codec] if codec else []), *CPU])
    assert code == 0, err
    assert "warning" not in err.lower()
    b = hdr_facts(out)
    assert b["pix_fmt"] == "yuv420p10le" and b["codec"] == ("h264" if codec is None else "hevc")
    assert b["color"] == a["color"]  # PQ / HLG, BT.2020, limited range
    assert b["side"] == a["side"]  # mastering display and content light level kept
    trc = HDR_TAGS[kind]["color_trc"]
    # the 1000 cd/m² highlight (above reference white) passes unchanged (to the re-encode's noise)
    assert a["rgb"][2:10, 2:14].mean() > 0.74 * 65535  # it is bright in the input
    assert np.abs(b["rgb"][2:10, 2:14].astype(int) - a["rgb"][2:10, 2:14].astype(int)).mean() < 0.005 * 65535
    # the picture below reference white is brightened, as the SDR path brightens this pattern
    before, after = _below_white(a["rgb"], trc).mean(), _below_white(b["rgb"], trc).mean()
    assert after > before + 3, (before, after)


@pytest.mark.parametrize("kind", ["PQ", "HLG"])
def test_hdr_sdr_tone_maps(tmp_path, cli_main, kind):
    inp = make_hdr(tmp_path / f"{kind}.mp4", kind)
    out = tmp_path / f"{kind}_sdr.mp4"
    code, err = cli_main([inp, "-o", out, "--hdr", "sdr", *CPU])
    assert code == 0, err
    b = hdr_facts(out)
    assert b["pix_fmt"] == "yuv420p"
    assert b["color"]["color_trc"] == 1 and b["color"]["color_primaries"] == 1 and b["color"]["colorspace"] == 1
    assert "mastering" not in b["side"]
    rgb8 = b["rgb"] / 257.0
    assert rgb8[2:10, 2:14].mean() > 235  # the highlight is near SDR white, not clipped grey
    assert 30 < rgb8[48:].mean() < 200  # the rest is a normal SDR picture
