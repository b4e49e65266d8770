"""io/streams.py pieces without a file: --map parsing and the timestamp continuity rule."""

from __future__ import annotations

import pytest

from psenet_stream.errors import UsageError
from psenet_stream.io.streams import Continuity, parse_map, sub_converter


@pytest.mark.parametrize("text, want", [
    ("0", (False, None, None, False)),
    ("0:v:0", (False, "v", 0, False)),
    ("0:a", (False, "a", None, False)),
    ("0:s?", (False, "s", None, True)),
    ("0:3", (False, None, 3, False)),
    ("-0:a:1", (True, "a", 1, False)),
])
def test_parse_map(text, want):
    m = parse_map(text)
    assert (m.negative, m.kind, m.n, m.optional) == want


@pytest.mark.parametrize("bad", ["1:v", "0:x", "v:0", "0:a:-1", ""])
def test_bad_map_is_a_usage_error(bad):
    with pytest.raises(UsageError):
        parse_map(bad)


def test_continuity_joins_a_reset_and_ignores_normal_gaps():
    c = Continuity(True)
    ts = [c.fix(t, 1.0) for t in (1.4, 2.4, 3.4, 1.4, 2.4, 3.4)]  # the second clip restarts at 1.4
    assert ts == pytest.approx([1.4, 2.4, 3.4, 4.4, 5.4, 6.4])
    c = Continuity(True)
    assert [c.fix(t, 0.1) for t in (0.0, 0.1, 0.05, 2.0)] == pytest.approx([0.0, 0.1, 0.05, 2.0])  # B-frame order, a pause
    c = Continuity(True)
    assert c.fix(0.0, 0.1) == 0.0 and c.fix(100.0, 0.1) == pytest.approx(0.1)  # a jump far ahead
    off = Continuity(False)
    assert off.fix(5.0) == 5.0 and off.fix(1.0) == 1.0


def test_subtitle_packet_conversion_round_trip():
    to_srt, to_mov = sub_converter("mov_text", "subrip"), sub_converter("subrip", "mov_text")
    mov = to_mov(b"<i>Hello</i> there")
    assert mov == b"\x00\x0bHello there"
    assert to_srt(mov) == b"Hello there"
    assert sub_converter("subrip", "subrip") is None
    with pytest.raises(ValueError):
        sub_converter("dvd_subtitle", "mov_text")
