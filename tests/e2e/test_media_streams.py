"""Media fidelity, streams and tags (issue 11): every stream the output can hold is kept,
--map selects as ffmpeg does, covers are never the enhanced video, tags and chapters
survive, and an MPEG-TS with a timestamp reset keeps its whole length and audio.
Checked with PyAV against what the input holds (what ffmpeg's stream copy keeps)."""

from __future__ import annotations

import av
import pytest

from tests.e2e.conftest import FAST, run_module
from tests.media import make_video
from tests.richmedia import (
    CHAPTERS,
    SUBTITLES,
    TAGS,
    concat_ts,
    durations,
    make_mkv_with_cover_attachment,
    make_mp4_with_cover,
    make_rich,
    streams_of,
    subtitle_texts,
)

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def rich(tmp_path_factory):
    d = tmp_path_factory.mktemp("rich")
    return {"mkv": make_rich(d / "rich.mkv", cover_first=True), "mp4": make_rich(d / "rich.mp4")}


def _chapters(path):
    with av.open(str(path)) as c:
        return [(round(float(ch["start"] * ch["time_base"]), 3), ch["metadata"].get("title")) for ch in c.chapters()]


def _tags(path):
    with av.open(str(path)) as c:
        return dict(c.metadata)


def test_mkv_keeps_every_stream_and_enhances_the_main_video_not_the_cover(rich, tmp_path, cli_main):
    inp = rich["mkv"]
    out = tmp_path / "o.mkv"
    code, err = cli_main([inp, "-o", out, *FAST])
    assert code == 0, err
    a, b = streams_of(inp), streams_of(out)
    # the first track of the input is a one-frame picture: the enhanced video is the H.264 one
    assert a[0]["codec"] == "mjpeg" and b[0]["codec"] == "h264"
    assert durations(out)["frames"] == 30
    kinds = lambda s: sorted((x["type"], x["codec"], x["language"]) for x in s if x["type"] in ("audio", "subtitle"))
    assert kinds(b) == kinds(a) == [("audio", "aac", "eng"), ("audio", "aac", "fra"), ("subtitle", "srt", "deu")]
    assert [x["filename"] for x in b if x["type"] == "attachment"] == ["font.ttf"]
    assert any(x["codec"] == "mjpeg" for x in b)  # the cover picture track is kept too
    assert subtitle_texts(out) == subtitle_texts(inp) == [(s / 1000, t) for s, _e, t in SUBTITLES]
    tags = _tags(out)
    assert tags["title"] == TAGS["title"]
    assert _chapters(out) == _chapters(inp) == [(s / 1000, t) for s, _e, t in CHAPTERS]
    # the audio packets are the input's, byte for byte, in both tracks
    for i in range(2):
        with av.open(str(inp)) as ci, av.open(str(out)) as co:
            pa = [bytes(p) for p in ci.demux(ci.streams.audio[i]) if p.size]
            pb = [bytes(p) for p in co.demux(co.streams.audio[i]) if p.size]
        assert pa == pb


def test_mkv_to_mp4_converts_subtitles_and_names_what_cannot_go(rich, tmp_path, cli_main):
    out = tmp_path / "o.mp4"
    code, err = cli_main([rich["mkv"], "-o", out, *FAST])
    assert code == 0, err
    b = streams_of(out)
    assert [x["codec"] for x in b if x["type"] == "subtitle"] == ["mov_text"]
    assert subtitle_texts(out) == [(s / 1000, t) for s, _e, t in SUBTITLES]
    assert sorted(x["language"] for x in b if x["type"] == "audio") == ["eng", "fra"]
    assert "attachment application/x-truetype-font" in err and "left out" in err  # the font cannot go into mp4: named
    tags = _tags(out)
    assert tags["title"] == TAGS["title"] and tags["creation_time"].startswith("2024-05-06T07:08:09")
    assert [t for _s, t in _chapters(out)] == [t for _s, _e, t in CHAPTERS]


def test_mp4_to_mkv_keeps_tags_location_and_converts_mov_text(rich, tmp_path, cli_main):
    inp = rich["mp4"]
    with av.open(str(inp)) as c:
        assert c.metadata.get("location") == TAGS["location"]  # what the input holds
    out_mp4 = tmp_path / "o.mp4"
    code, err = cli_main([inp, "-o", out_mp4, *FAST])
    assert code == 0, err
    tags = _tags(out_mp4)
    assert tags["location"] == TAGS["location"] and tags["title"] == TAGS["title"]
    assert tags["creation_time"].startswith("2024-05-06T07:08:09")
    out_mkv = tmp_path / "o.mkv"
    code, err = cli_main([inp, "-o", out_mkv, *FAST])
    assert code == 0, err
    assert [x["codec"] for x in streams_of(out_mkv) if x["type"] == "subtitle"] == ["srt"]  # subrip, as the mkv demuxer names it
    # mkv cannot hold the negative start of the mp4's AAC priming (-21 ms): its muxer moves
    # every stream by that much, as ffmpeg's stream copy to mkv does
    got = subtitle_texts(out_mkv)
    assert [t for _s, t in got] == [t for _s, _e, t in SUBTITLES]
    assert [s for s, _t in got] == pytest.approx([s / 1000 for s, _e, _t in SUBTITLES], abs=0.03)


def test_map_selects_streams_like_ffmpeg(rich, tmp_path, cli_main):
    out = tmp_path / "m.mkv"
    code, err = cli_main([rich["mkv"], "-o", out, "--map", "0:v:1", "--map", "0:a:1", *FAST])
    assert code == 0, err
    b = streams_of(out)
    assert [(x["type"], x["codec"], x["language"]) for x in b] == [("video", "h264", "eng"), ("audio", "aac", "fra")]
    out2 = tmp_path / "n.mkv"
    code, err = cli_main([rich["mkv"], "-o", out2, "--map", "-0:a:0", "--map", "-0:s", "--map", "-0:t", *FAST])
    assert code == 0, err
    b = streams_of(out2)
    assert b[0]["codec"] == "h264" and durations(out2)["frames"] == 30  # still the main video, not the picture track
    assert [x["language"] for x in b if x["type"] == "audio"] == ["fra"]
    assert not [x for x in b if x["type"] in ("subtitle", "attachment")]
    code, err = cli_main([rich["mkv"], "-o", tmp_path / "x.mkv", "--map", "0:a:7", *FAST])
    assert code != 0 and "--map 0:a:7" in err and "Traceback" not in err


def test_cover_attachment_is_not_the_video(tmp_path, cli_main):
    inp = make_mkv_with_cover_attachment(tmp_path / "cov.mkv")
    assert streams_of(inp)[1]["attached_pic"]
    out = tmp_path / "o.mkv"
    code, err = cli_main([inp, "-o", out, *FAST])
    assert code == 0, err
    assert durations(out)["frames"] == 20
    assert "cover.jpg" in [x["filename"] for x in streams_of(out)]  # kept as an attachment


def _cover_bytes(path) -> list[bytes]:
    """The picture of every cover (attached_pic) stream of a file."""
    with av.open(str(path)) as c:
        covers = [st for st in c.streams.video if int(st.disposition or 0) & int(av.stream.Disposition.attached_pic)]
        return [next(bytes(p) for p in c.demux(st) if p.size) for st in covers]


@pytest.mark.parametrize("how", ["file", "stdin"])
@pytest.mark.parametrize("ext", ["mp4", "mkv"])
def test_mp4_cover_picture_is_not_the_video_and_is_kept(how, ext, tmp_path, cli_main):
    """A phone / iTunes MP4: its cover picture (a 'covr' atom: a one-picture video stream,
    attached_pic, bigger than the video) is never the video enhanced; it is kept as the
    output's cover (mp4) or as a cover attachment (mkv), byte for byte."""
    inp, jpeg = make_mp4_with_cover(tmp_path / "phone.mp4")
    assert [(x["type"], x["codec"], x["attached_pic"]) for x in streams_of(inp)] == [("video", "h264", False), ("video", "mjpeg", True)]
    out = tmp_path / f"o.{ext}"
    if how == "file":
        code, err = cli_main([inp, "-o", out, *FAST])
    else:
        r = run_module(["-", "-o", out.name, *FAST], cwd=tmp_path, input=inp.read_bytes())
        code, err = r.returncode, r.stderr.decode()
    assert code == 0 and "warning" not in err, err
    with av.open(str(out)) as c:
        main = [st for st in c.streams.video if not int(st.disposition or 0) & int(av.stream.Disposition.attached_pic)]
        assert len(main) == 1 and (main[0].codec_context.width, main[0].codec_context.height) == (160, 120)
    assert durations(out)["frames"] == 20
    assert _cover_bytes(out) == [jpeg]
    if ext == "mkv":
        assert [x["filename"] for x in streams_of(out) if x["attached_pic"]] == ["cover1.jpg"]


def test_mpegts_timestamp_reset_keeps_length_and_audio(tmp_path, cli_main):
    make_video(tmp_path / "a.ts", frames=45, audio="aac")
    make_video(tmp_path / "b.ts", frames=45, audio="aac")
    inp = concat_ts(tmp_path / "ab.ts", [tmp_path / "a.ts", tmp_path / "b.ts"])
    one = durations(tmp_path / "a.ts")
    out = tmp_path / "ab.mp4"
    code, err = cli_main([inp, "-o", out, *FAST])
    assert code == 0, err
    d = durations(out)
    assert d["frames"] == 90
    span_one = one["last"] - one["first"]
    assert d["last"] - d["first"] == pytest.approx(2 * span_one + 1 / 30, abs=0.05)  # not collapsed
    assert d["audio"][0]["packets"] == 2 * one["audio"][0]["packets"]
    assert d["audio"][0]["end"] == pytest.approx(2 * one["audio"][0]["end"], abs=0.1)


def test_timecode_and_data_stream(tmp_path, cli_main):
    """A mov timecode track (a data stream) survives as a timecode track in mp4 and as the
    video's TIMECODE tag in mkv, without a warning."""
    import numpy as np

    inp = tmp_path / "tc.mov"
    oc = av.open(str(inp), "w")
    vs = oc.add_stream("libx264", rate=30, options={"preset": "ultrafast"})
    vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
    vs.metadata["timecode"] = "01:02:03:04"
    for i in range(10):
        f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 9, np.uint8), format="rgb24")
        f.pts = i
        for p in vs.encode(f):
            oc.mux(p)
    for p in vs.encode(None):
        oc.mux(p)
    oc.close()
    assert [x["type"] for x in streams_of(inp)] == ["video", "data"]
    for ext in ("mp4", "mkv"):
        out = tmp_path / f"tc.{ext}"
        code, err = cli_main([inp, "-o", out, *FAST])
        assert code == 0 and "warning" not in err, err
        with av.open(str(out)) as c:
            tags = {k.lower(): v for k, v in c.streams.video[0].metadata.items()}
            assert tags.get("timecode") == "01:02:03:04"
            if ext == "mp4":
                assert [s.type for s in c.streams] == ["video", "data"]


def test_trim_cuts_every_kept_stream(rich, tmp_path, cli_main):
    """-ss / -t with several audio tracks and subtitles: each is cut and moved like the video."""
    out = tmp_path / "t.mkv"
    code, err = cli_main([rich["mkv"], "-o", out, "-ss", "0.5", "-t", "0.4", *FAST])
    assert code == 0, err
    d = durations(out)
    assert d["frames"] == 12
    assert len(d["audio"]) == 2
    for a in d["audio"]:
        assert 0.3 < a["end"] < 0.55  # cut with the video (an AAC frame is 21 ms)
    got = subtitle_texts(out)
    assert [t for _s, t in got] == ["Second line"]  # 0.6-0.9 s in the input: inside the cut
    assert got[0][0] == pytest.approx(0.1, abs=0.03)
