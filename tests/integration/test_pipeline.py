"""pipeline.run: back-pressure for files, drop-oldest for live, errors, stop; atomic file sink."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from psenet_stream import pipeline
from psenet_stream.errors import OutputError
from psenet_stream.io.frames import Frame, StreamInfo

pytestmark = pytest.mark.timeout(60)


class FakeSource:
    def __init__(self, n, *, live=False, period_s=0.0, shape=(8, 12, 3), fail_at=None):
        self.n, self.period_s, self.shape, self.fail_at = n, period_s, shape, fail_at
        first = shape(0) if callable(shape) else shape
        self.info = StreamInfo(width=first[1], height=first[0], live=live, frames=n)
        self.dropped = 0

    def __iter__(self):
        for i in range(self.n):
            if self.fail_at == i:
                raise RuntimeError("camera fell over")
            if self.period_s:
                time.sleep(self.period_s)
            shape = self.shape(i) if callable(self.shape) else self.shape
            yield Frame(rgb=np.full(shape, i % 256, np.uint8), index=i, t_capture=time.perf_counter())


class ListSink:
    def __init__(self, delay_s=0.0, fail_at=None):
        self.frames, self.delay_s, self.fail_at = [], delay_s, fail_at

    def write(self, frame, enhanced):
        if self.fail_at is not None and len(self.frames) == self.fail_at:
            raise OutputError("disk full", "free some space")
        if self.delay_s:
            time.sleep(self.delay_s)
        self.frames.append((frame.index, enhanced.copy()))

    def close(self):
        pass


class PlusOne:
    """An enhancer stand-in that records its batch sizes."""

    def __init__(self, delay_s=0.0):
        self.batches, self.delay_s = [], delay_s

    def enhance_frames(self, x):
        self.batches.append(len(x))
        if self.delay_s:
            time.sleep(self.delay_s)
        return x + 1


def test_file_source_never_drops_and_keeps_order():
    sink, enh = ListSink(delay_s=0.002), PlusOne()
    stats = pipeline.run(FakeSource(50), enh, [sink], batch=4)
    assert [i for i, _ in sink.frames] == list(range(50))
    assert all(int(out[0, 0, 0]) == (i % 256) + 1 for i, out in sink.frames)
    assert stats.frames_in == stats.frames_out == 50 and stats.dropped == 0
    assert max(enh.batches) == 4 and sum(enh.batches) == 50
    assert stats.latency_p50_ms is not None and stats.fps > 0


def test_batches_never_mix_frame_sizes():
    shapes = lambda i: (8, 12, 3) if i < 5 else (10, 6, 3)
    sink, enh = ListSink(), PlusOne()
    pipeline.run(FakeSource(11, shape=shapes), enh, [sink], batch=4)
    assert [i for i, _ in sink.frames] == list(range(11))
    assert enh.batches == [4, 1, 4, 2]


def test_live_source_drops_oldest_and_bounds_latency():
    # the camera delivers every 2 ms, enhancement takes 20 ms: most frames must be dropped
    sink, enh = ListSink(), PlusOne(delay_s=0.02)
    stats = pipeline.run(FakeSource(150, live=True, period_s=0.002), enh, [sink])
    assert enh.batches and max(enh.batches) == 1
    assert stats.dropped > 50
    assert stats.frames_in == 150 and stats.frames_out + stats.dropped == 150  # every frame written or counted
    idx = [i for i, _ in sink.frames]
    assert idx == sorted(idx) and idx[-1] >= 140  # the newest frames got through
    assert stats.latency_p95_ms < 200  # bounded: about queue size x enhance time


def test_sink_error_propagates_without_hanging():
    with pytest.raises(OutputError, match="disk full"):
        pipeline.run(FakeSource(1000), PlusOne(), [ListSink(fail_at=3)], batch=2)


def test_source_error_propagates():
    sink = ListSink()
    with pytest.raises(RuntimeError, match="fell over"):
        pipeline.run(FakeSource(100, fail_at=10), PlusOne(), [sink], batch=4)


def test_enhancer_error_propagates():
    class Boom:
        def enhance_frames(self, x):
            raise ValueError("bad batch")

    with pytest.raises(ValueError, match="bad batch"):
        pipeline.run(FakeSource(100), Boom(), [ListSink()], batch=4)


def test_stop_event_ends_early_and_writes_what_was_read():
    stop = threading.Event()
    sink = ListSink()

    def progress(stats):
        if stats.frames_out == 5:
            stop.set()

    stats = pipeline.run(FakeSource(10_000), PlusOne(), [sink], batch=2, stop=stop, progress=progress)
    assert stats.interrupted
    assert 5 <= stats.frames_out < 200
    assert stats.frames_out == stats.frames_in == len(sink.frames)  # nothing read was lost


def test_pass_through_without_enhancer():
    sink = ListSink()
    stats = pipeline.run(FakeSource(7), None, [sink])
    assert stats.frames_out == 7 and int(sink.frames[3][1][0, 0, 0]) == 3


def test_stats_summary_names_everything():
    s = pipeline.Stats(frames_in=10, frames_out=10, dropped=2, seconds=2.0, backend="cpu (cpu)", latencies=[0.01, 0.02])
    text = s.summary()
    assert "10 frames" in text and "5.0 fps" in text and "2 dropped" in text and "cpu" in text and "latency" in text
    assert s.as_dict()["fps"] == 5.0


# --- the file side -----------------------------------------------------------------------------
def test_atomic_sink_renames_only_when_complete(tmp_path):
    from psenet_stream.io.sinks import AtomicFileSink
    from psenet_stream.io.video import VideoFileSink
    from tests.media import read_video

    info = StreamInfo(width=32, height=24, fps=30)
    final = tmp_path / "out.mp4"
    sink = AtomicFileSink(final, lambda tmp: VideoFileSink(tmp, info, preset="ultrafast"))
    for i in range(5):
        sink.write(Frame(rgb=np.full((24, 32, 3), 50, np.uint8), index=i), np.full((24, 32, 3), 60, np.uint8))
    assert not final.exists() and sink.tmp.exists()
    sink.close()
    assert final.exists() and not sink.tmp.exists()
    assert read_video(final)["frames"] == 5

    partial = AtomicFileSink(tmp_path / "p.mp4", lambda tmp: VideoFileSink(tmp, info, preset="ultrafast"))
    for i in range(3):
        partial.write(Frame(rgb=np.zeros((24, 32, 3), np.uint8), index=i), np.zeros((24, 32, 3), np.uint8))
    partial.abort(keep_partial=True)
    assert not (tmp_path / "p.mp4").exists()
    assert read_video(tmp_path / "p.partial.mp4")["frames"] == 3

    # a second failed recording to the same name keeps the first one (it replaced it before)
    again = AtomicFileSink(tmp_path / "p.mp4", lambda tmp: VideoFileSink(tmp, info, preset="ultrafast"))
    for i in range(2):
        again.write(Frame(rgb=np.zeros((24, 32, 3), np.uint8), index=i), np.zeros((24, 32, 3), np.uint8))
    again.abort(keep_partial=True)
    assert again.kept == tmp_path / "p.partial-2.mp4" and not again.tmp.exists()
    assert read_video(tmp_path / "p.partial.mp4")["frames"] == 3 and read_video(tmp_path / "p.partial-2.mp4")["frames"] == 2


def test_video_sink_locks_size(tmp_path):
    from psenet_stream.io.video import VideoFileSink

    sink = VideoFileSink(tmp_path / "x.mp4", StreamInfo(width=32, height=24, fps=30))
    sink.write(Frame(rgb=np.zeros((24, 32, 3), np.uint8), index=0), np.zeros((24, 32, 3), np.uint8))
    with pytest.raises(OutputError, match="size changed"):
        sink.write(Frame(rgb=np.zeros((20, 32, 3), np.uint8), index=1), np.zeros((20, 32, 3), np.uint8))
    sink.close()
    sink.close()  # idempotent
    with pytest.raises(OutputError):
        sink.write(Frame(rgb=np.zeros((24, 32, 3), np.uint8), index=2), np.zeros((24, 32, 3), np.uint8))


def test_enhance_file_and_a_plain_transcode(tmp_path):
    from tests.media import make_video, read_video

    src = tmp_path / "in.mp4"
    make_video(src, frames=12, audio="aac")
    plain = pipeline.enhance_file(src, tmp_path / "plain.mp4", None, codec="libx264", preset="ultrafast", crf=23)
    assert plain.frames_out == 12
    stats = pipeline.enhance_file(src, tmp_path / "enh.mp4", PlusOne(), preset="ultrafast", batch=5)
    assert stats.frames_out == 12
    a, b, c = read_video(src), read_video(tmp_path / "plain.mp4"), read_video(tmp_path / "enh.mp4")
    assert a["pts_s"] == b["pts_s"] == c["pts_s"]
    assert a["audio_packets"] == b["audio_packets"] == c["audio_packets"]
    with pytest.raises(OutputError, match="exists"):
        pipeline.enhance_file(src, tmp_path / "enh.mp4", PlusOne())
    assert pipeline.enhance_file(src, tmp_path / "enh.mp4", PlusOne(), overwrite=True).frames_out == 12
    assert pipeline.enhance_file(src, tmp_path / "plain.mp4", None, preset="ultrafast", overwrite=True).frames_out == 12


def test_open_source_dispatch(tmp_path, monkeypatch):
    import sys
    import types

    from psenet_stream.io import sources

    calls = []
    fake = types.ModuleType("psenet_stream.io.live")
    fake.open_live_source = lambda spec, **kw: calls.append((spec, kw)) or "live"
    monkeypatch.setitem(sys.modules, "psenet_stream.io.live", fake)
    for spec in (
        "rtsp://u:p@cam/s",
        "rtmp://x/app",
        "tcp://127.0.0.1:9",
        "udp://1.2.3.4:5",
        "http://cam/v.mjpg",
        "https://c/x.m3u8",
        "/dev/video0",
        "lavfi:testsrc2",
    ):
        assert sources.open_source(spec, read_timeout=2) == "live"
    assert [c[0] for c in calls][-1] == "lavfi:testsrc2" and calls[0][1] == {"read_timeout": 2}
    assert isinstance(sources.open_source("-", size="4x2"), sources.RawSource)


def test_video_source_repairs_permuted_timestamps(tmp_path, monkeypatch):
    """AVI with packed B-frames decodes with pts 1,2,3,5,4,6,8,7: re-ordered, never duplicated."""
    from fractions import Fraction

    from psenet_stream.io import video
    from tests.media import make_video

    make_video(tmp_path / "x.mp4", frames=3)
    permuted = [1, 2, 3, 5, 4, 6, 8, 7, None, 9, 9, 12]

    def fake_raw(self):
        self._color = {}
        for i, p in enumerate(permuted):
            yield Frame(rgb=np.zeros((4, 4, 3), np.uint8), index=i, pts=p, time_base=Fraction(1, 25))

    monkeypatch.setattr(video.VideoFileSource, "_decode_raw", fake_raw)
    monkeypatch.setattr(video.VideoFileSource, "_tick", lambda self: 1)
    pts = [f.pts for f in video.VideoFileSource(tmp_path / "x.mp4")]
    assert len(pts) == len(permuted)
    assert pts[:8] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert pts == sorted(set(pts))


@pytest.mark.parametrize("colorspace, color_range", [(1, 1), (5, 1), (2, 1), (1, 2), (9, 1)])
def test_rgb_to_yuv420p_matches_swscale(colorspace, color_range):
    import av
    import cv2

    from psenet_stream.colour import rgb_to_yuv420p_np as rgb_to_yuv420p

    rng = np.random.default_rng(1)
    rgb = cv2.GaussianBlur(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), (5, 5), 2)
    ref = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p", dst_colorspace=colorspace, dst_color_range=color_range)
    mine = rgb_to_yuv420p(rgb, colorspace, color_range == 2)
    diff = np.abs(ref.to_ndarray().astype(int) - mine.astype(int))
    assert diff[:48].max() <= 1 and diff[48:].max() <= 5 and diff.mean() < 0.5  # same matrix and range (chroma filters differ)

    # sharp colour edges: the chroma filter differs (2x2 mean vs swscale's), the round trip
    # back to RGB is as good as swscale's own
    rgb[:8, :9] = (255, 0, 0)

    def back(yuv):
        f = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        f.colorspace, f.color_range = colorspace, color_range
        return f.to_ndarray(format="rgb24", src_color_range=color_range if color_range == 2 else None).astype(int)

    ref = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p", dst_colorspace=colorspace, dst_color_range=color_range)
    err_mine = np.abs(back(rgb_to_yuv420p(rgb, colorspace, color_range == 2)) - rgb).mean()
    err_ref = np.abs(back(ref.to_ndarray()) - rgb).mean()
    assert err_mine <= err_ref * 1.25 + 0.1


def test_stopping_a_stalled_live_source_does_not_hang():
    """A camera that stops sending: stop must not wait for its read timeout."""
    release = threading.Event()

    class Stalls(FakeSource):
        def __iter__(self):
            yield from super().__iter__()
            release.wait(30)  # the dead camera: a read that blocks

    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    t = time.perf_counter()
    stats = pipeline.run(Stalls(3, live=True), PlusOne(), [ListSink()], stop=stop)
    release.set()
    assert time.perf_counter() - t < 5
    assert stats.interrupted and stats.frames_out >= 1 and stats.frames_out + stats.dropped == 3


@pytest.mark.parametrize("kind", ["bt709-limited", "bt601-full-mjpeg", "odd-size-ffv1"])
def test_colour_round_trip_without_enhancer(tmp_path, kind):
    """Decode -> RGB -> encode with no enhancement keeps colours (matrix and range honoured)."""
    from fractions import Fraction

    import av

    from tests.media import BT709, make_video, pattern

    src = tmp_path / ("in.mp4" if kind == "bt709-limited" else "in.mkv")
    if kind == "bt709-limited":
        make_video(src, frames=4, color=BT709)
    else:
        codec, fmt, w, h = ("mjpeg", "yuvj420p", 160, 120) if kind.endswith("mjpeg") else ("ffv1", "yuv444p", 161, 121)
        with av.open(str(src), "w") as oc:
            vs = oc.add_stream(codec, rate=25)
            vs.width, vs.height, vs.pix_fmt = w, h, fmt
            for i in range(4):
                f = av.VideoFrame.from_ndarray(pattern(i, w, h, level=0.9), format="rgb24").reformat(
                    format=fmt, dst_color_range=2 if fmt == "yuvj420p" else None
                )
                f.pts, f.time_base = i, Fraction(1, 25)
                for p in vs.encode(f):
                    oc.mux(p)
            for p in vs.encode(None):
                oc.mux(p)

    def first_rgb(path):
        with av.open(str(path)) as c:
            fr = next(c.decode(video=0))
            return (
                fr.to_ndarray(format="rgb24", src_color_range=2 if fr.color_range == 2 else None).astype(int),
                int(fr.color_range),
                fr.width,
            )

    out = tmp_path / "out.mkv"
    pipeline.enhance_file(src, out, None, crf=10, preset="ultrafast")
    (a, ra, wa), (b, rb, wb) = first_rgb(src), first_rgb(out)
    assert ra == rb and wa == wb
    assert np.abs(a - b).mean() < 2.0


def test_split_enhancer_applies_in_the_writer_thread():
    """predict() runs in the caller's thread in order; apply() in the writer thread."""
    caller = threading.current_thread()
    seen = {"predict": set(), "apply": set()}

    class Split(PlusOne):
        def predict(self, x):
            seen["predict"].add(threading.current_thread())
            self.batches.append(len(x))
            return [int(f[0, 0, 0]) + 1 for f in x]

        def apply(self, rgb, plan):
            seen["apply"].add(threading.current_thread())
            return np.full_like(rgb, plan)

    sink, enh = ListSink(), Split()
    stats = pipeline.run(FakeSource(10), enh, [sink], batch=4)
    assert [int(o[0, 0, 0]) for _, o in sink.frames] == [i + 1 for i in range(10)]
    assert seen["predict"] == {caller} and len(seen["apply"]) == 1 and caller not in seen["apply"]
    assert enh.batches == [4, 4, 2] and stats.stage_seconds["apply"] > 0


def test_open_sink_dispatch(tmp_path):
    from psenet_stream.io.sinks import AtomicFileSink, ImageSink, RawSink, open_sink

    info = StreamInfo(width=16, height=8, fps=25)
    assert isinstance(open_sink("-", info), RawSink)
    assert isinstance(open_sink(tmp_path / "a.png", info), ImageSink)
    assert open_sink(tmp_path, info).folder
    video = open_sink(tmp_path / "v.mp4", info, preset="ultrafast")
    assert isinstance(video, AtomicFileSink)
    video.write(Frame(rgb=np.zeros((8, 16, 3), np.uint8), index=0), np.zeros((8, 16, 3), np.uint8))
    video.close()
    assert (tmp_path / "v.mp4").is_file()
    with pytest.raises(OutputError, match="exists"):
        open_sink(tmp_path / "v.mp4", info)
    with pytest.raises(OutputError, match="container"):
        open_sink(tmp_path / "v.nope", info)


def test_gpu_backends_get_their_own_batch_size_by_default():
    """A full-frame (GPU) backend is fed batches of its own size, not the CPU default of 4."""
    from psenet_stream.backends.cuda import CudaBackend
    from psenet_stream.enhancer import Enhancer
    from psenet_stream.model import PSENet

    class Recording(CudaBackend):
        def enhance_uint8(self, frames, *a, **k):
            self.calls = [*getattr(self, "calls", []), len(frames)]
            return super().enhance_uint8(frames, *a, **k)

    be = Recording(PSENet(), {"sha256": "0" * 64}, batch=6, _emulate=True)
    sink = ListSink()
    stats = pipeline.run(FakeSource(14, shape=(16, 24, 3)), Enhancer(be, infer_size=16), [sink])
    assert stats.frames_out == 14 and [i for i, _ in sink.frames] == list(range(14))
    assert be.calls == [6, 6, 2]
