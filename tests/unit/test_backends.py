"""Backends on the CPU: choice and fallback, the interface, parity with the cpu reference,
batching and frame order, the cuda backend's math and pipelining (emulated on the CPU),
and the TensorRT engine sidecar checks with a fake engine file."""

from __future__ import annotations

import importlib
import json
import logging

import cv2
import numpy as np
import pytest
import torch

from psenet_stream import backends
from psenet_stream.backends import tensorrt as trt
from psenet_stream.backends.cpu import CpuBackend
from psenet_stream.backends.cuda import CudaBackend, Downscaler, area_matrix, curve_uint8, uint8_to_nchw
from psenet_stream.enhancer import Enhancer, GammaLUT, apply_exact, working_size
from psenet_stream.errors import BackendError
from psenet_stream.model import PSENet
from psenet_stream.weights_io import load_model, save_weights

CUDA = torch.cuda.is_available()


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The nets here are tiny: one thread avoids thread hand-offs on a busy 2-core box."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def session_weights(tmp_path_factory):
    """One weight file per test session (shared by the backend, ONNX and CLI test modules,
    so the ONNX export cached by weights hash happens once)."""
    path = tmp_path_factory.getbasetemp() / "psenet-test-weights.pt"
    if not path.exists():
        torch.manual_seed(3)
        m = PSENet()
        with torch.no_grad():  # a gentle, non-trivial gamma map (random init is near gamma = 1)
            m.last_conv.conv[-1].bias.add_(0.3)
        save_weights(path, m.state_dict(), {"source": "test"})
    return path


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory):
    """$PSENET_STREAM_CACHE -> a per-session directory, restored afterwards."""
    import os

    old = os.environ.get("PSENET_STREAM_CACHE")
    os.environ["PSENET_STREAM_CACHE"] = str(tmp_path_factory.getbasetemp() / "psenet-cache")
    yield
    if old is None:
        os.environ.pop("PSENET_STREAM_CACHE", None)
    else:
        os.environ["PSENET_STREAM_CACHE"] = old


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return session_weights(tmp_path_factory)


@pytest.fixture(scope="module")
def model_meta(weights):
    return load_model(weights)


@pytest.fixture(scope="module")
def onnx_backend(model_meta, onnx_cache):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from psenet_stream.backends.onnx import OnnxBackend

    model, meta = model_meta
    return OnnxBackend(model, meta)  # exported once per session into the cache, by weights hash


def clip(n=7, h=72, w=128, seed=0):
    """Real-looking frames: a dim shaded scene with an object moving and a bright window."""
    from psenet_stream.evaluation.bench import synthetic_scene

    return synthetic_scene(w, h, n, seed)


# --- choice and fallback ---------------------------------------------------------------------


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(BackendError, match="unknown backend"):
        backends.resolve("vulkan")


@pytest.mark.skipif(CUDA, reason="checks the no-CUDA messages")
def test_cuda_absent_is_a_clear_error():
    with pytest.raises(BackendError) as e:
        backends.resolve("cuda")
    assert "cuda" in e.value.problem and ("CPU-only" in e.value.problem or "no CUDA" in e.value.problem)
    assert e.value.fix


@pytest.mark.skipif(CUDA, reason="checks the no-CUDA messages")
def test_tensorrt_without_cuda_is_a_clear_error():
    with pytest.raises(BackendError) as e:
        backends.resolve("tensorrt")
    assert "tensorrt" in e.value.problem
    assert "torch-tensorrt" in e.value.problem or "CUDA" in e.value.problem


def test_tensorrt_falls_back_to_cuda_when_cuda_works(monkeypatch, caplog):
    monkeypatch.setattr(backends, "available", lambda: {"cpu": "", "onnx": "", "cuda": "", "tensorrt": "torch-tensorrt is not installed"})
    with caplog.at_level(logging.WARNING, logger="psenet_stream"):
        assert backends.resolve("tensorrt") == "cuda"
    assert "falling back to the cuda backend" in caplog.text


def test_auto_says_which_backend_it_picked(monkeypatch, caplog):
    monkeypatch.setattr(backends, "available", lambda: {"cpu": "", "onnx": "", "cuda": "no CUDA device", "tensorrt": "no CUDA"})
    with caplog.at_level(logging.DEBUG, logger="psenet_stream"):
        assert backends.resolve("auto") == "onnx"
    assert "backend auto -> onnx" in caplog.text and "cuda: no CUDA device" in caplog.text
    monkeypatch.setattr(backends, "available", lambda: {"cpu": "", "onnx": "x", "cuda": "", "tensorrt": ""})
    assert backends.resolve("auto") == "tensorrt"


def test_create_ignores_options_a_backend_does_not_take(model_meta):
    model, meta = model_meta
    be = backends.create("cpu", model, meta, batch=4, threads=None)
    assert isinstance(be, CpuBackend)


@pytest.mark.skipif(CUDA, reason="checks the no-CUDA messages")
def test_cuda_and_tensorrt_backends_refuse_to_start_without_cuda(model_meta):
    model, meta = model_meta
    with pytest.raises(BackendError):
        CudaBackend(model, meta)
    with pytest.raises(BackendError, match="TensorRT"):
        trt.TensorRTBackend(model, meta)


def test_hw_codecs_reports_every_nvidia_codec():
    from psenet_stream.io import hwcodecs

    hw = hwcodecs.hw_codecs()
    assert set(hw) == {"decoders", "encoders"}
    assert "h264_nvenc" in hw["encoders"] and "h264_cuvid" in hw["decoders"]
    for kind in hw.values():
        for name, reason in kind.items():
            assert isinstance(reason, str)


# --- the interface and parity with the cpu reference --------------------------------------------


def _backends(model_meta, onnx_backend):
    model, meta = model_meta
    out = {"cpu": CpuBackend(model, meta), "onnx": onnx_backend, "cuda-emulated": CudaBackend(model, meta, batch=3, _emulate=True)}
    if CUDA:
        out["cuda"] = CudaBackend(model, meta, batch=3)
    return out


def test_every_backend_obeys_the_interface(model_meta, onnx_backend):
    x = np.random.default_rng(0).random((2, 3, 37, 53), dtype=np.float32)
    for name, be in _backends(model_meta, onnx_backend).items():
        g = be.predict_gamma(x)
        assert isinstance(g, np.ndarray) and g.shape == x.shape and g.dtype == np.float32, name
        assert (g >= 0).all(), name
        assert isinstance(be.describe(), str) and be.name in be.describe()
        enh = Enhancer(be, infer_size=32)
        out = enh.enhance_frames(clip(3, h=36, w=64))
        assert out.shape == (3, 36, 64, 3) and out.dtype == np.uint8, name
        be.close()


def test_onnx_gamma_matches_cpu(model_meta, onnx_backend):
    model, meta = model_meta
    cpu = CpuBackend(model, meta)
    for shape in ((1, 3, 16, 16), (3, 3, 61, 97), (2, 3, 72, 128)):
        x = np.random.default_rng(1).random(shape, dtype=np.float32)
        assert np.abs(onnx_backend.predict_gamma(x) - cpu.predict_gamma(x)).max() <= 1e-4


@pytest.mark.parametrize("infer_size", [64, "full"])
def test_enhance_frames_matches_cpu_within_one_level(model_meta, onnx_backend, infer_size):
    model, meta = model_meta
    frames = clip(3, h=48, w=80)
    ref = Enhancer(CpuBackend(model, meta), infer_size=infer_size).enhance_frames(frames)
    for name, be in _backends(model_meta, onnx_backend).items():
        if name == "cpu":
            continue
        out = Enhancer(be, infer_size=infer_size).enhance_frames(frames)
        tol = 1 if name != "cuda" else 2  # fp16 network on the GPU
        assert np.abs(out.astype(int) - ref).max() <= tol, name


# --- batching and order ------------------------------------------------------------------------


@pytest.mark.parametrize("smoothing", [0.0, 0.6])
def test_batches_and_a_partial_last_batch_keep_frames_and_order(model_meta, smoothing):
    model, meta = model_meta
    frames = clip(7, h=36, w=64)
    one = Enhancer(CudaBackend(model, meta, batch=1, _emulate=True), infer_size=32, smoothing=smoothing)
    ref = np.stack([one.enhance_frames(f[None])[0] for f in frames])
    for b in (3, 4):
        enh = Enhancer(CudaBackend(model, meta, batch=b, _emulate=True), infer_size=32, smoothing=smoothing)
        out = enh.enhance_frames(frames)
        np.testing.assert_array_equal(out, ref, err_msg=f"batch {b}")
        # and the same when the caller hands frames over in uneven chunks
        enh.reset()
        parts = [enh.enhance_frames(frames[:3]), enh.enhance_frames(frames[3:4]), enh.enhance_frames(frames[4:])]
        np.testing.assert_array_equal(np.concatenate(parts), ref, err_msg=f"chunks, batch {b}")


def test_cpu_enhancer_batch_equals_frame_by_frame(model_meta, onnx_backend):
    model, meta = model_meta
    frames = clip(7, h=36, w=64)
    for be in (CpuBackend(model, meta), onnx_backend):
        enh = Enhancer(be, infer_size=48)
        ref = np.stack([enh.enhance_frames(f[None])[0] for f in frames])
        np.testing.assert_array_equal(enh.enhance_frames(frames), ref)


def test_ring_is_reused_and_rebuilt_on_a_new_size(model_meta):
    model, meta = model_meta
    be = CudaBackend(model, meta, batch=2, _emulate=True)
    enh = Enhancer(be, infer_size=32)
    enh.enhance_frames(clip(3))
    ring = be._ring
    enh.enhance_frames(clip(5))
    assert be._ring is ring
    enh.enhance_frames(clip(2, h=40, w=64))
    assert be._ring is not ring and be._ring.key[1:3] == (40, 64)
    be.close()
    assert be._ring is None


# --- the GPU pipeline's math, on the CPU -----------------------------------------------------------


@pytest.mark.parametrize("hw", [(720, 1280), (1080, 1920), (360, 640), (100, 75), (37, 61), (13, 9), (301, 17)])
def test_gpu_downscale_is_cv2s(hw):
    h, w = hw
    sh, sw = working_size(h, w, 64)
    frames = np.random.default_rng(2).integers(0, 256, (2, h, w, 3), dtype=np.uint8)
    interp = cv2.INTER_AREA if sh < h else cv2.INTER_LINEAR
    ref = np.stack([cv2.resize(f, (sw, sh), interpolation=interp) for f in frames]).transpose(0, 3, 1, 2)
    got = Downscaler(h, w, sh, sw)(uint8_to_nchw(torch.from_numpy(frames))).numpy()
    tol = 0 if sh < h or (sh, sw) == (h, w) else 1  # cv2's linear upscale uses fixed-point weights
    assert np.abs(got - ref).max() <= tol


def test_area_matrix_rows_sum_to_one():
    for n_in, n_out in ((1920, 256), (1080, 144), (17, 5), (9, 16)):
        a = area_matrix(n_in, n_out, area=n_out < n_in)
        assert a.shape == (n_out, n_in)
        np.testing.assert_allclose(a.sum(1), 1.0, atol=1e-6)


@pytest.mark.parametrize("knee", [0.85, 1.0])
def test_gpu_curve_is_apply_exact_and_matches_the_lut(knee):
    rng = np.random.default_rng(4)
    frames = rng.integers(0, 256, (2, 45, 80, 3), dtype=np.uint8)
    lg = rng.uniform(-4, 4, (2, 3, 9, 16)).astype(np.float32)
    got = curve_uint8(uint8_to_nchw(torch.from_numpy(frames)), torch.from_numpy(lg), knee).numpy()
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).double() / 255
    exact = (apply_exact(x, torch.from_numpy(lg).double(), knee) * 255).round().permute(0, 2, 3, 1).numpy()
    assert np.abs(got - exact).max() <= 1
    lut = GammaLUT(knee)
    via_lut = np.stack([lut.apply(frames[i], np.ascontiguousarray(lg[i].transpose(1, 2, 0))) for i in range(2)])
    assert np.abs(got.astype(int) - via_lut).max() <= 1


def test_lut_nearest_rows_stay_within_one_level_over_the_whole_range():
    """The CPU table is read with nearest rows (enhancer.GammaLUT): check every log gamma."""
    lut = GammaLUT(0.85)
    lg = np.linspace(-4, 4, 4001, dtype=np.float32)
    i = np.arange(256, dtype=np.uint8)
    frame = np.broadcast_to(i[None, :, None], (lg.size, 256, 3)).copy()
    lgm = np.broadcast_to(lg[:, None, None], (lg.size, 256, 3)).copy()
    got = lut.apply(frame, lgm).astype(int)
    x = torch.from_numpy(frame).permute(2, 0, 1)[None].double() / 255
    exact = (apply_exact(x, torch.from_numpy(lgm).permute(2, 0, 1)[None].double(), 0.85) * 255).round()
    assert np.abs(got - exact[0].permute(1, 2, 0).numpy()).max() <= 1


# --- TensorRT engine files and sidecars (no TensorRT needed) ------------------------------------


def _fake_engine(tmp_path, wsha="a" * 64, gpu="NVIDIA H100 80GB HBM3"):
    vers = {"torch": "2.11.0", "cuda": "13.0", "torch_tensorrt": "2.11.0", "tensorrt": "10.15.1"}
    lo, opt, hi = (1, 3, 16, 16), (8, 3, 144, 256), (16, 3, 512, 512)
    path = tmp_path / trt.engine_filename(wsha, lo, hi, gpu, vers)
    path.write_bytes(b"not really an engine" * 10)
    trt.write_sidecar(path, weights_sha256=wsha, weights_path="w.pt", smin=lo, sopt=opt, smax=hi, gpu={"name": gpu, "capability": "sm_90"}, vers=vers)
    return path, wsha, gpu, vers


def test_engine_name_says_weights_range_gpu_and_versions(tmp_path):
    path, wsha, gpu, vers = _fake_engine(tmp_path)
    assert path.name == "psenet-aaaaaaaaaaaa-b1-16_16x16-512x512-nvidia-h100-80gb-hbm3-trt10.15.1-torch2.11.0-fp16.ep"
    side = json.loads(trt.sidecar_path(path).read_text())
    for key in ("weights_sha256", "engine_sha256", "shape_min", "shape_opt", "shape_max", "gpu", "versions"):
        assert key in side
    assert trt.find_engines(tmp_path, wsha, gpu) == [path]
    assert trt.find_engines(tmp_path, "b" * 64, gpu) == []
    assert trt.find_engines(tmp_path, wsha, "NVIDIA A100") == []


def test_valid_engine_is_accepted(tmp_path):
    path, wsha, gpu, vers = _fake_engine(tmp_path)
    info = trt.check_engine(path, weights_sha256=wsha, gpu_name=gpu, vers=vers)
    assert trt.in_range((8, 3, 144, 256), info) and not trt.in_range((32, 3, 144, 256), info)


def test_engine_with_changed_bytes_is_refused(tmp_path):
    path, wsha, gpu, vers = _fake_engine(tmp_path)
    path.write_bytes(path.read_bytes() + b"tampered")
    with pytest.raises(BackendError, match="does not match its sidecar"):
        trt.check_engine(path, weights_sha256=wsha, gpu_name=gpu, vers=vers)


def test_engine_for_other_weights_is_refused(tmp_path):
    path, wsha, gpu, vers = _fake_engine(tmp_path)
    with pytest.raises(BackendError, match="other weights") as e:
        trt.check_engine(path, weights_sha256="c" * 64, gpu_name=gpu, vers=vers)
    assert "build-engine" in e.value.fix


def test_engine_for_another_gpu_is_refused(tmp_path):
    path, wsha, gpu, vers = _fake_engine(tmp_path)
    with pytest.raises(BackendError, match="built on GPU"):
        trt.check_engine(path, weights_sha256=wsha, gpu_name="NVIDIA A100-SXM4-40GB", vers=vers)


def test_engine_from_other_tensorrt_is_refused(tmp_path):
    path, wsha, gpu, vers = _fake_engine(tmp_path)
    with pytest.raises(BackendError, match="tensorrt"):
        trt.check_engine(path, weights_sha256=wsha, gpu_name=gpu, vers={**vers, "tensorrt": "10.16.1"})


def test_engine_without_or_with_a_broken_sidecar_is_refused(tmp_path):
    path, wsha, gpu, vers = _fake_engine(tmp_path)
    side = trt.sidecar_path(path)
    side.write_text("{not json")
    with pytest.raises(BackendError, match="cannot read the sidecar"):
        trt.check_engine(path, weights_sha256=wsha, gpu_name=gpu)
    side.unlink()
    with pytest.raises(BackendError, match="no sidecar"):
        trt.check_engine(path, weights_sha256=wsha, gpu_name=gpu)
    with pytest.raises(BackendError, match="not found"):
        trt.check_engine(tmp_path / "missing.ep", weights_sha256=wsha, gpu_name=gpu)


@pytest.mark.parametrize("bad", ["1x3x144", "1x4x144x256", "axbxcxd", "1x3x8x256", "0x3x16x16"])
def test_bad_engine_shapes_are_clear_errors(bad):
    with pytest.raises(BackendError):
        trt.parse_shape(bad)


def test_shape_range_must_be_ordered():
    trt.check_range((1, 3, 16, 16), (8, 3, 144, 256), (16, 3, 512, 512))
    with pytest.raises(BackendError, match="not ordered"):
        trt.check_range((1, 3, 16, 16), (32, 3, 144, 256), (16, 3, 512, 512))


def test_threaded_host_copy_equals_a_plain_copy(monkeypatch):
    from psenet_stream.backends.cuda import _Copier

    monkeypatch.setattr(_Copier, "MIN_BYTES", 0)
    src = np.random.default_rng(5).integers(0, 256, (3, 101, 37, 3), dtype=np.uint8)
    for threads in (1, 3, 8):
        c = _Copier(threads)
        dst = np.zeros_like(src)
        c(dst, src)
        np.testing.assert_array_equal(dst, src)
        part = np.zeros_like(src)
        c(part[:2], src[1:])
        np.testing.assert_array_equal(part[:2], src[1:])
        c.close()


def test_codec_probes_really_encode_and_decode():
    av = pytest.importorskip("av")
    from psenet_stream.io.hwcodecs import _probe_decoder, _probe_encoder

    assert _probe_encoder(av, "libx264") == ""
    assert _probe_decoder(av, "h264") == ""  # decodes real packets made by libx264
    assert _probe_encoder(av, "no_such_encoder") != ""


def test_auto_falls_back_to_cuda_when_the_tensorrt_backend_cannot_start(monkeypatch, caplog):
    class NoEngine:
        def __init__(self, model, meta, batch=None):
            raise BackendError("no usable TensorRT engine")

    class FakeCuda:
        def __init__(self, model, meta, batch=None):
            self.batch = batch

    monkeypatch.setattr(backends, "available", lambda: {"cpu": "", "onnx": "", "cuda": "", "tensorrt": ""})
    monkeypatch.setattr(backends, "backend_class", lambda n: {"tensorrt": NoEngine, "cuda": FakeCuda}[n])
    with caplog.at_level(logging.WARNING, logger="psenet_stream"):
        be = backends.create("auto", None, {}, batch=2, threads=3)
    assert isinstance(be, FakeCuda) and be.batch == 2
    assert "falls back to the cuda backend" in caplog.text
    with pytest.raises(BackendError, match="no usable"):
        backends.create("tensorrt", None, {})


def test_threaded_copy_of_several_pairs_at_once(monkeypatch):
    from psenet_stream.backends.cuda import _Copier

    monkeypatch.setattr(_Copier, "MIN_BYTES", 0)
    rng = np.random.default_rng(6)
    a, b = rng.integers(0, 256, (4, 64, 9, 3), dtype=np.uint8), rng.integers(0, 256, (2, 7, 5, 3), dtype=np.uint8)
    c = _Copier(4)
    da, db = np.zeros_like(a), np.zeros_like(b)
    c.many([(da, a), (db, b)])
    np.testing.assert_array_equal(da, a)
    np.testing.assert_array_equal(db, b)
    c.close()


def _smoothing_run(post_kind, gammas, smalls, splits, **opts):
    """Feed (gamma, small) through Enhancer.post (the GammaPost) in batches of the given sizes."""
    enh = Enhancer(CpuBackend(*_tiny_model()), **opts)
    outs, i = [], 0
    for n in splits:
        g, s = gammas[i : i + n], smalls[i : i + n]
        if post_kind == "torch":
            outs.append(enh.post(torch.from_numpy(g.copy()), torch.from_numpy(s.copy())).numpy())
        else:
            outs.append(enh.post(g.copy(), s.copy()))
        i += n
    return np.concatenate(outs), enh.scene_cuts


def _tiny_model():
    from psenet_stream.model import PSENet

    return PSENet(), {"sha256": "0" * 64, "path": "x"}


@pytest.mark.parametrize("opts", [{"smoothing": 0.7}, {"smoothing": 0.5, "strength": 0.6}, {"smoothing": 0.0, "strength": 1.5}, {"stabilize": 0.9}, {"smoothing": 0.3, "stabilize": 0.8}])
def test_gpu_side_gamma_post_processing_equals_the_host_one(opts):
    """The cuda backend runs the Enhancer's post-processing on tensors: same log gamma and
    scene cuts as the numpy path, whatever the batch boundaries."""
    rng = np.random.default_rng(8)
    n = 11
    smalls = np.repeat(rng.random((1, 3, 9, 16), dtype=np.float32), n, axis=0)
    smalls[5:] = rng.random((1, 3, 9, 16), dtype=np.float32)  # a scene cut at frame 5
    smalls += rng.normal(0, 0.01, smalls.shape).astype(np.float32)
    gammas = np.exp(rng.normal(0, 0.5, (n, 3, 9, 16))).astype(np.float32)
    ref, ref_cuts = _smoothing_run("numpy", gammas, smalls, [n], **opts)
    for splits in ([n], [1] * n, [4, 4, 3], [5, 6]):
        got, cuts = _smoothing_run("torch", gammas, smalls, splits, **opts)
        np.testing.assert_allclose(got, ref, atol=1e-5)
        assert cuts == ref_cuts
    if opts.get("smoothing") or opts.get("stabilize"):
        assert ref_cuts == 1


def test_fused_curve_kernel_matches_the_eager_curve(monkeypatch):
    """The Triton curve kernel (run by Triton's CPU interpreter here; on the GPU in
    tests/gpu) against curve_uint8: within one 8-bit level, at sizes that are not block
    multiples, up- and down-sampled gamma, and with protection on and off."""
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    pytest.importorskip("triton", reason="Triton ships with CUDA builds of torch; not in the CPU test environment")
    from psenet_stream.backends import kernels
    from psenet_stream.backends.cuda import curve_uint8, uint8_to_nchw

    kernels = importlib.reload(kernels)  # decorate the kernels again, for the interpreter
    if not kernels.HAVE_TRITON:
        pytest.skip("triton did not import")
    g = torch.Generator().manual_seed(0)
    for n, h, w, sh, sw, knee in [(2, 37, 61, 16, 27, 0.95), (1, 40, 48, 40, 48, 1.0), (2, 30, 50, 16, 28, 0.8)]:
        x = torch.randint(0, 256, (n, h, w, 3), dtype=torch.uint8, generator=g)
        x[0, 0, :5] = 255
        lg = torch.rand((n, 3, sh, sw), generator=g) * 6 - 3
        y = kernels.curve(x, lg, knee)
        assert (y[x == 255] == 255).all()  # white stays white (the GPU once made it black)
        d = (y.int() - curve_uint8(uint8_to_nchw(x), lg, knee).int()).abs()
        assert d.max() <= 1
        assert (d > 0).float().mean() < 0.01


@pytest.mark.parametrize("smoothing", [0.0, 0.6])
def test_frames_as_tensors_take_the_device_path_and_match_the_host_path(model_meta, smoothing):
    """The cuda backend's frames-already-on-the-device path, run in CPU emulation: same
    frames, same order, same scene cuts as numpy in / numpy out, written into ``out``."""
    model, meta = model_meta
    frames = clip(7, h=36, w=64)
    host = Enhancer(CudaBackend(model, meta, batch=3, _emulate=True), infer_size=32, smoothing=smoothing)
    dev = Enhancer(CudaBackend(model, meta, batch=3, _emulate=True), infer_size=32, smoothing=smoothing)
    ref = host.enhance_frames(frames)
    out = torch.zeros(frames.shape, dtype=torch.uint8)
    got = dev.enhance_frames(torch.from_numpy(frames), out=out)
    assert got is out
    np.testing.assert_array_equal(got.numpy(), ref)
    assert dev.scene_cuts == host.scene_cuts
    np.testing.assert_allclose(dev.last_gamma, host.last_gamma, atol=1e-6)


def test_out_array_is_filled_by_every_backend(model_meta, onnx_backend):
    model, meta = model_meta
    frames = clip(5, h=36, w=64)
    for be in (CpuBackend(model, meta), onnx_backend, CudaBackend(model, meta, batch=2, _emulate=True)):
        enh = Enhancer(be, infer_size=32)
        out = np.zeros_like(frames)
        assert enh.enhance_frames(frames, out=out) is out
        enh.reset()
        np.testing.assert_array_equal(out, enh.enhance_frames(frames), err_msg=be.name)


def test_uint8_cpu_tensors_work_on_a_host_backend_and_others_are_a_clear_error(model_meta):
    from psenet_stream.errors import PsenetError

    model, meta = model_meta
    enh = Enhancer(CpuBackend(model, meta), infer_size=32)
    out = enh(torch.full((36, 64, 3), 40, dtype=torch.uint8))  # a CPU tensor: the numpy path
    assert torch.is_tensor(out) and out.shape == (36, 64, 3) and out.dtype == torch.uint8
    with pytest.raises(PsenetError, match=r"\(N, H, W, 3\)"):
        enh.enhance_frames(torch.zeros((2, 36, 64), dtype=torch.uint8))
