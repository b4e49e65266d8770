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


# --- PacketFeed: the other streams of an input read once (stdin), on a real file -------------------


def _feed(path, **kw):
    import av

    from psenet_stream.io.streams import PacketFeed, select_streams

    c = av.open(str(path))
    video, others = select_streams(c, None)
    return c, PacketFeed(c, video, others, **kw)


def _run(feed) -> int:
    """The source's loop: video packets counted, the others handed to the feed."""
    videos = 0
    for pkt in feed.demux():
        if pkt.stream.index == feed.video.index:
            videos += pkt.size > 0
        else:
            feed.put(pkt)
    return videos


def test_packet_feed_hands_over_the_other_streams_in_one_pass(tmp_path):
    from tests.richmedia import make_interleaved

    path = make_interleaved(tmp_path / "a.mkv", seconds=1.0, subtitles=True)
    import av

    with av.open(str(path)) as c:
        want = [(p.stream.type, bytes(p)) for p in c.demux(c.streams.audio[0], c.streams.subtitles[0]) if p.size]
    c, feed = _feed(path)
    with c:
        assert _run(feed) == 30
        got = []
        while (p := feed.get()) is not None:
            got.append((p.stream.type, bytes(p)))
    assert got == want  # every packet, in the container's order, nothing of the video
    assert len(feed) == 0 and feed.get() is None and feed.dropped == 0


def test_packet_feed_drops_past_its_cap_with_one_warning(tmp_path, caplog):
    from tests.richmedia import make_interleaved

    path = make_interleaved(tmp_path / "a.ts", seconds=1.0)
    c, feed = _feed(path, max_bytes=4000)
    with c, caplog.at_level("WARNING", logger="psenet_stream"):
        _run(feed)
    assert feed.dropped > 0 and feed.peak_bytes <= 4000
    warnings = [r.getMessage() for r in caplog.records if "runs too far ahead" in r.getMessage()]
    assert len(warnings) == 1 and "#1 (audio aac" in warnings[0]


def test_packet_feed_leaves_out_what_is_before_the_trimmed_start(tmp_path):
    from tests.richmedia import make_interleaved

    path = make_interleaved(tmp_path / "a.mkv", seconds=2.0)
    c, feed = _feed(path)
    feed.retimer.shift_s = 1.0  # -ss 1 (the source sets it when it trims)
    with c:
        _run(feed)
        kept = []
        while (p := feed.get()) is not None:
            kept.append(p)
    # AAC frames of 1024 samples at 48 kHz: those ending before 1 s are never held; the rest start from 0
    assert 45 <= len(kept) <= 49
    first = float(kept[0].pts * kept[0].time_base)
    assert -1024 / 48000 < first <= 0.001


def test_packet_feed_keeps_a_cover_picture(tmp_path):
    from tests.richmedia import make_mp4_with_cover

    path, jpeg = make_mp4_with_cover(tmp_path / "c.mp4")
    c, feed = _feed(path)
    with c:
        assert [s.type for s in feed.streams] == ["video"]  # the cover, not the main video
        _run(feed)
    assert list(feed.covers.values()) == [jpeg]
