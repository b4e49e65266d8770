"""The yuv420p path: colour conversion in torch (what the cuda backend runs on the GPU),
the Enhancer's yuv entry point, and a file transcoded in yuv mode end to end. The cuda
backend runs here in its CPU emulation (same torch code, no streams or pinned memory)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from psenet_stream import colour, pipeline
from psenet_stream.backends.cpu import CpuBackend
from psenet_stream.backends.cuda import CudaBackend
from psenet_stream.evaluation.bench import synthetic_scene, write_clip
from psenet_stream.colour import rgb_to_yuv420p_np as rgb_to_yuv420p
from psenet_stream.enhancer import Enhancer
from psenet_stream.io.video import VideoFileSource
from psenet_stream.model import PSENet

av = pytest.importorskip("av")


@pytest.fixture(scope="module")
def model_meta():
    torch.manual_seed(3)
    m = PSENet()
    with torch.no_grad():
        m.last_conv.conv[-1].bias.add_(0.3)
    return m.eval(), {"sha256": "0" * 64, "path": "test"}


@pytest.mark.parametrize("cs,full", [(2, False), (1, False), (1, True), (9, False)])
@pytest.mark.parametrize("hw", [(36, 64), (118, 160)])
def test_torch_rgb_to_yuv_is_the_cpu_writer_s_conversion(cs, full, hw):
    h, w = hw
    rgb = np.random.default_rng(1).integers(0, 256, (2, h, w, 3), dtype=np.uint8)
    m, _ = colour.matrices(cs, full, "cpu")
    got = colour.rgb_to_yuv420p(torch.from_numpy(rgb), m).numpy().astype(int)
    ref = np.stack([rgb_to_yuv420p(f, cs, full) for f in rgb]).astype(int)
    d = np.abs(got - ref)
    assert d.max() <= 1 and (d > 0).mean() < 0.08


@pytest.mark.parametrize("cs,full", [(2, False), (1, False), (1, True)])
def test_torch_yuv_to_rgb_follows_swscale_and_the_colour_tags(cs, full):
    h, w = 72, 128
    rgb = synthetic_scene(w, h, 1)[0].copy()
    rgb[:, :16], rgb[:, 16:32], rgb[:, 32:48] = (220, 30, 30), (30, 200, 40), (40, 40, 230)  # saturated bars
    yuv = rgb_to_yuv420p(rgb, cs, full)
    f = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
    f.colorspace, f.color_range = cs, 2 if full else 1
    sws = f.to_ndarray(format="rgb24", src_color_range=2 if full else None).astype(int)
    _, back = colour.matrices(cs, full, "cpu")
    mine = colour.yuv420p_to_rgb(torch.from_numpy(yuv[None]), back).numpy()[0].astype(int)
    # swscale's fixed-point path comes out ~1 level darker than the exact inverse on
    # limited range (measured: mean signed -1.2), so compare loosely with it ...
    d = np.abs(mine - sws)
    assert d.max() <= 3 and d.mean() < 1.5
    # ... and exactly with the float64 inverse of the writer's matrix (chroma repeated 2x2)
    from psenet_stream.colour import yuv_matrix as _yuv_matrix

    mm = _yuv_matrix(cs, full).astype(np.float64)
    yy = yuv[:h].astype(float)
    q = (h // 2) * (w // 2)
    flat = yuv.reshape(-1)[h * w :]
    uu = flat[:q].reshape(h // 2, w // 2).repeat(2, 0).repeat(2, 1)
    vv = flat[q:].reshape(h // 2, w // 2).repeat(2, 0).repeat(2, 1)
    exact = np.clip(np.rint((np.stack([yy, uu, vv], -1) - mm[:, 3]) @ np.linalg.inv(mm[:, :3]).T), 0, 255)
    assert np.abs(mine - exact).max() <= 1
    # and the other matrix is visibly wrong, so the test can tell them apart
    _, wrong = colour.matrices(1 if cs != 1 else 2, full, "cpu")
    assert np.abs(colour.yuv420p_to_rgb(torch.from_numpy(yuv[None]), wrong).numpy()[0].astype(int) - sws).max() > 8


@pytest.mark.parametrize("smoothing", [0.0, 0.5])
def test_enhance_yuv420p_on_the_cuda_backend_equals_the_cpu_conversion_path(model_meta, smoothing):
    model, meta = model_meta
    rgb = synthetic_scene(128, 72, 7)
    yuv = np.stack([rgb_to_yuv420p(f, 1, False) for f in rgb])
    gpu = Enhancer(CudaBackend(model, meta, batch=3, _emulate=True), infer_size=32, smoothing=smoothing)
    host = Enhancer(CpuBackend(model, meta), infer_size=32, smoothing=smoothing)
    out = np.zeros_like(yuv)
    a = gpu.enhance_yuv420p(yuv, colorspace=1, out=out)
    b = host.enhance_yuv420p(yuv, colorspace=1)
    assert a is out and a.shape == yuv.shape and a.dtype == np.uint8
    assert np.abs(a.astype(int) - b).max() <= 2  # the curve: exact on one, the 8-bit table on the other
    assert np.abs(a.astype(int) - yuv).mean() > 2  # it did enhance
    assert gpu.scene_cuts == host.scene_cuts


def test_enhance_yuv420p_rejects_odd_shapes(model_meta):
    from psenet_stream.errors import PsenetError

    enh = Enhancer(CpuBackend(*model_meta), infer_size=32)
    with pytest.raises(PsenetError, match="yuv420p"):
        enh.enhance_yuv420p(np.zeros((1, 10, 8), np.uint8))


def _decode(p):
    with av.open(str(p)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def test_a_file_through_a_gpu_backend_stays_yuv_and_matches_the_cpu_backend(model_meta, tmp_path, monkeypatch):
    model, meta = model_meta
    x = synthetic_scene(160, 96, 10)
    src = write_clip(tmp_path / "in.mp4", x)
    kinds = []
    real = Enhancer.enhance_yuv420p

    def spy(self, frames, **kw):
        kinds.append(len(frames))
        return real(self, frames, **kw)

    monkeypatch.setattr(Enhancer, "enhance_yuv420p", spy)
    gpu = pipeline.enhance_file(src, tmp_path / "gpu.mp4", Enhancer(CudaBackend(model, meta, batch=4, _emulate=True), infer_size=32), preset="ultrafast")
    cpu = pipeline.enhance_file(src, tmp_path / "cpu.mp4", Enhancer(CpuBackend(model, meta), infer_size=32), preset="ultrafast")
    assert gpu.frames_out == cpu.frames_out == 10
    # the first frames are decoded before the mode is chosen (RGB); the rest went as yuv
    assert sum(kinds) >= 5
    g, c = _decode(tmp_path / "gpu.mp4"), _decode(tmp_path / "cpu.mp4")
    assert g.shape == c.shape == x.shape
    assert np.abs(g.astype(float) - c).mean() < 1.5


def test_plain_transcode_in_yuv_mode_copies_the_picture(tmp_path):
    x = synthetic_scene(160, 96, 8)
    src = write_clip(tmp_path / "in.mp4", x)
    stats = pipeline.enhance_file(src, tmp_path / "plain.mp4", None, preset="ultrafast", crf=12, yuv=True)
    assert stats.frames_out == 8
    a, b = _decode(src), _decode(tmp_path / "plain.mp4")
    # a re-encode at crf 12: the same picture up to the encoder, no colour round trip
    assert np.abs(a.astype(float) - b).mean() < 2.0


def test_yuv_mode_is_off_when_a_sink_needs_rgb(model_meta, tmp_path):
    """A preview (or any sink without accepts_yuv) keeps the whole run in RGB."""
    model, meta = model_meta

    class RgbSink:
        def __init__(self):
            self.shapes = []

        def write(self, frame, enhanced):
            self.shapes.append(enhanced.shape)

        def close(self):
            pass

    src_path = write_clip(tmp_path / "in.mp4", synthetic_scene(64, 48, 6))
    sink = RgbSink()
    with VideoFileSource(src_path) as src:
        pipeline.run(src, Enhancer(CudaBackend(model, meta, batch=2, _emulate=True), infer_size=32), [sink])
        assert src.frame_format == "rgb24"
    assert sink.shapes == [(48, 64, 3)] * 6


def test_a_failing_yuv_path_falls_back_to_rgb_without_losing_frames(model_meta, tmp_path, caplog):
    import logging

    model, meta = model_meta
    src = write_clip(tmp_path / "in.mp4", synthetic_scene(96, 64, 12))
    enh = Enhancer(CudaBackend(model, meta, batch=2, _emulate=True), infer_size=32)

    def broken(*a, **k):
        raise RuntimeError("simulated device failure")

    enh.enhance_yuv420p = broken
    with caplog.at_level(logging.WARNING, logger="psenet_stream"):
        stats = pipeline.enhance_file(src, tmp_path / "out.mp4", enh, preset="ultrafast")
    assert stats.frames_out == 12
    assert "yuv420p path failed" in caplog.text and caplog.text.count("yuv420p path failed") == 1
    ref = pipeline.enhance_file(src, tmp_path / "ref.mp4", Enhancer(CudaBackend(model, meta, batch=2, _emulate=True), infer_size=32), preset="ultrafast")
    assert ref.frames_out == 12
    assert np.abs(_decode(tmp_path / "out.mp4").astype(float) - _decode(tmp_path / "ref.mp4")).mean() < 1.5
