"""The CUDA backend: the whole frame on the GPU, torch fp16 network, fp32 curve.

Per batch of B frames (B from ``batch``; 1-2 for live input, 8+ for files):

    host:           the caller's uint8 RGB -> a pinned ring slot (a few threads)
    upload stream:  pinned -> GPU uint8 (N, H, W, 3)
    compute stream: uint8 -> fp16, downscale exactly like the CPU path (cv2 INTER_AREA as
                    matrices, rounded to 8 bits), network in fp16 channels_last -> gamma
                    (one CUDA graph); the Enhancer's gamma post-processing (strength,
                    temporal smoothing, scene cuts) on the GPU tensors; the curve with
                    highlight protection at full resolution, fused into one Triton kernel
                    (``kernels.curve``; the eager ``apply_exact`` when Triton is missing)
    download stream: GPU uint8 -> pinned -> (host threads) the caller's array

Nothing in a batch waits for the host. Upload and download run on their own streams
(both copy engines) ordered by events, and the host keeps two batches in flight while it
fills the third slot, so host copies, transfers and kernels overlap. Pinned buffers are
allocated once per (B, H, W) and reused; a partial last batch runs the full graph on
padded slots and only its first n frames are used.

Frames already on the GPU (a CUDA uint8 tensor) skip the host entirely.

The device-independent pieces (``area_matrix``, ``Downscaler``, ``curve_uint8``) run on
the CPU too and are tested there against the CPU reference path.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
from collections import deque
from collections.abc import Callable

import numpy as np
import torch
from torch.nn import functional as F

from psenet_stream.backends.base import Backend, Capabilities, GammaHook
from psenet_stream.curve import apply_exact
from psenet_stream.errors import BackendError

log = logging.getLogger("psenet_stream")

RING = 4  # ring slots: the host fills one while three batches are on the GPU
PINNED_BUDGET = 96 << 20  # bytes of uint8 frames per ring slot (each way); caps B for 4K


# --- device-independent math (tested on the CPU) ---------------------------------------------


def area_matrix(n_in: int, n_out: int, area: bool = True) -> np.ndarray:
    """(n_out, n_in) float64 weights of cv2.resize along one axis (INTER_AREA, or INTER_LINEAR).

    Built by resizing the identity with cv2 itself, so the weights are cv2's by construction.
    Both interpolations are separable, so a 2-D resize is ``A_h @ img @ A_w.T``.
    """
    import cv2

    if n_out == n_in:
        return np.eye(n_in)
    interp = cv2.INTER_AREA if area else cv2.INTER_LINEAR
    eye = np.eye(n_in, dtype=np.float64)
    # cv2 resizes along columns: each row e_r (1 x n_in) becomes row r of A.T (n_in x n_out)
    at = cv2.resize(eye, (n_out, n_in), interpolation=interp)
    return np.ascontiguousarray(at.T)


class Downscaler:
    """Resize (N, 3, H, W) float images holding 0..255 to (sh, sw) like cv2.resize on uint8.

    Integer factors use average pooling (cv2's fast INTER_AREA path); other factors use
    the separable cv2 weight matrices. The result is rounded to whole 8-bit levels, as the
    CPU path's uint8 resize is.
    """

    def __init__(self, h: int, w: int, sh: int, sw: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
        self.size = (sh, sw)
        self.identity = (sh, sw) == (h, w)
        self.pool = None
        area = sh < h  # the Enhancer's rule: INTER_AREA to shrink, INTER_LINEAR to enlarge tiny frames
        if not self.identity and area and h % sh == 0 and w % sw == 0:
            self.pool = (h // sh, w // sw)
        if not self.identity and self.pool is None:
            self.ah = torch.from_numpy(area_matrix(h, sh, area)).to(device=device, dtype=dtype)
            self.awt = torch.from_numpy(area_matrix(w, sw, area).T.copy()).to(device=device, dtype=dtype)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.identity:
            return x
        if self.pool is not None:
            y = F.avg_pool2d(x, self.pool, stride=self.pool)
        else:
            y = torch.matmul(self.ah, torch.matmul(x.to(self.ah.dtype), self.awt))
        return y.float().round_().clamp_(0.0, 255.0)


def curve_uint8(x255: torch.Tensor, log_gamma_small: torch.Tensor, knee: float) -> torch.Tensor:
    """The curve at full resolution: (N, 3, H, W) fp32 0..255, small log gamma -> (N, H, W, 3) uint8.

    Exactly ``curve.apply_exact`` (bilinear log-gamma upsample, highlight protection,
    Y = 1 - (1 - I) ** gamma) in fp32, rounded like the CPU table (round(Y * 255)).
    """
    y = apply_exact(x255 / 255.0, log_gamma_small.float(), knee)
    return (y * 255.0).round_().clamp_(0.0, 255.0).to(torch.uint8).permute(0, 2, 3, 1)


def uint8_to_nchw(frames: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float 0..255 in channels_last memory (no transpose copy)."""
    return frames.permute(0, 3, 1, 2).to(dtype)


# --- host copies --------------------------------------------------------------------------------


class _Copier:
    """Copies big uint8 batches host-to-host with a few threads (numpy releases the GIL).

    One thread moves ~7 GB/s (measured on the H100 machine's host: 7.7 ms for eight
    1080p frames); a batch is 50 MB each way, so at thousands of fps the copies into and
    out of the pinned ring would otherwise be the bottleneck. Several (dst, src) pairs go
    in one call and run at the same time, rows split between threads.
    """

    MIN_BYTES = 4 << 20  # below this one thread is faster than the hand-off

    def __init__(self, threads: int):
        self.threads = max(1, threads)
        self.pool = None
        if self.threads > 1:
            from concurrent.futures import ThreadPoolExecutor

            self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="psenet-copy")

    def __call__(self, dst: np.ndarray, src: np.ndarray) -> None:
        self.many([(dst, src)])

    def many(self, pairs: list[tuple[np.ndarray, np.ndarray]]) -> None:
        """``dst[...] = src`` for every pair, in parallel."""
        total = sum(d.nbytes for d, _ in pairs)
        if self.pool is None or total < self.MIN_BYTES:
            for d, s in pairs:
                np.copyto(d, s)
            return
        jobs = []
        for d, s in pairs:
            rows = d.shape[1] if d.ndim > 1 else 0
            parts = max(1, min(rows // 2, round(self.threads * d.nbytes / total)))
            if rows < 2 or parts == 1:
                jobs.append((d, s))
                continue
            cuts = np.linspace(0, rows, parts + 1).astype(int)
            jobs += [(d[:, a:b], s[:, a:b]) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]
        for f in [self.pool.submit(np.copyto, d, s) for d, s in jobs]:
            f.result()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)
            self.pool = None


# --- the backend -------------------------------------------------------------------------------


class _NoEvent:
    """Stands in for torch.cuda.Event when the backend is emulated on the CPU (tests only)."""

    def record(self, stream=None) -> None:
        pass

    def synchronize(self) -> None:
        pass


class _NoStream:
    def wait_event(self, event) -> None:
        pass


class _Slot:
    """One ring slot: pinned host buffers, device buffers, events, and the captured graph."""

    def __init__(self, b: int, h: int, w: int, sh: int, sw: int, device: torch.device, host: bool = True, yuv: bool = False):
        cuda = device.type == "cuda"
        pin = dict(pin_memory=cuda)  # pin_memory raises without a CUDA device
        if host:  # what travels: uint8 RGB, or yuv420p (half the bytes)
            shape = (b, h * 3 // 2, w) if yuv else (b, h, w, 3)
            self.h_in = torch.empty(shape, dtype=torch.uint8, **pin)
            self.h_out = torch.empty(shape, dtype=torch.uint8, **pin)
            # numpy views of the pinned buffers (no copies)
            self.n_in, self.n_out = self.h_in.numpy(), self.h_out.numpy()
        if yuv:
            self.d_yuv_in = torch.zeros((b, h * 3 // 2, w), dtype=torch.uint8, device=device)
            self.d_yuv_out = torch.empty((b, h * 3 // 2, w), dtype=torch.uint8, device=device)
        self.d_in = torch.zeros((b, h, w, 3), dtype=torch.uint8, device=device)
        self.d_out = torch.empty((b, h, w, 3), dtype=torch.uint8, device=device)
        self.d_gamma = torch.ones((b, 3, sh, sw), dtype=torch.float32, device=device)
        self.d_small = torch.zeros((b, 3, sh, sw), dtype=torch.float32, device=device)
        self.d_lg = torch.zeros((b, 3, sh, sw), dtype=torch.float32, device=device)
        # blocking: the host waits on some of them, so sleep rather than spin
        event = (lambda: torch.cuda.Event(blocking=True)) if cuda else _NoEvent
        self.ev_in = event()  # H2D of the frames done (upload stream)
        self.ev_curve = event()  # output frames ready on the device (compute stream)
        self.ev_out = event()  # output on the host (download stream)
        self.graph_net: torch.cuda.CUDAGraph | None = None
        self.graph_curve: torch.cuda.CUDAGraph | None = None


class _Ring:
    def __init__(self, b, h, w, sh, sw, device, host=True, yuv=False):
        self.key = (b, h, w, sh, sw, host, yuv)
        self.slots = [_Slot(b, h, w, sh, sw, device, host, yuv) for _ in range(RING)]
        dtype = torch.float16 if device.type == "cuda" else torch.float32
        self.down = Downscaler(h, w, sh, sw, device, dtype)
        self.graphs_ok: bool | None = None  # None: not tried yet
        self.knee: float | None = None  # the knee baked into captured curve graphs (no Triton)


class CudaBackend(Backend):
    name = "cuda"
    capabilities = Capabilities(full_frame=True, yuv420p=True, device_frames=True)
    capture_net = True  # capture the network phase as a CUDA graph (the tensorrt subclass does not)

    def __init__(
        self,
        model,
        meta,
        batch: int | None = None,
        device: str | torch.device | None = None,
        graphs: bool = True,
        copy_threads: int | None = None,
        fused: bool = True,
        compile: bool = False,
        _emulate: bool = False,
    ):
        """``fused``: the Triton curve kernel when Triton is importable (else eager torch).
        ``compile``: compile the network with torch.compile (max-autotune) for each new
        frame size: minutes of compilation, then ~5x faster at full resolution (cudnn's
        depthwise and 3-9 channel convolutions are slow there); pays off for long jobs
        with ``infer_size='full'``.
        ``_emulate`` runs the same batching/ring/hook logic on the CPU with no streams,
        events, pinned memory or graphs (fp32): for the CPU test suite only."""
        super().__init__(model, meta)
        self.emulated = _emulate
        if _emulate:
            self.device = torch.device("cpu")
        else:
            if not torch.cuda.is_available():
                raise BackendError("the cuda backend needs a CUDA device and a CUDA build of torch", "use --backend auto, onnx or cpu")
            self.device = torch.device(device or "cuda")
            if self.device.type != "cuda":
                raise BackendError(f"the cuda backend cannot run on {self.device}", "pass a CUDA device such as cuda:0")
            if self.device.index is None:
                self.device = torch.device("cuda", torch.cuda.current_device())
            torch.backends.cudnn.benchmark = True
        self.batch = max(1, int(batch or 8))
        self.use_graphs = graphs and not _emulate
        self.fused = False
        if fused and not _emulate:
            from psenet_stream.backends import kernels

            self.fused = kernels.HAVE_TRITON
        self.net = self._make_net(model)
        self.compiled = False
        if compile and not _emulate:
            self.net = torch.compile(self.net, mode="max-autotune-no-cudagraphs", dynamic=False)
            self.compiled = True
        if _emulate:
            self.up_stream = self.down_stream = self.compute_stream = _NoStream()
        else:
            self.up_stream = torch.cuda.Stream(self.device)
            self.down_stream = torch.cuda.Stream(self.device)
            self.compute_stream = torch.cuda.Stream(self.device)
        self._ring: _Ring | None = None
        self._colour: dict = {}  # (colorspace, full_range) -> (matrix, inverse) on the device
        self._copy = _Copier(copy_threads if copy_threads is not None else min(8, max(1, (os.cpu_count() or 2) // 2)))

    def _make_net(self, model) -> Callable[[torch.Tensor], torch.Tensor]:
        """The gamma network: fp16, channels_last. (N, 3, h, w) fp16 -> gamma (any float dtype)."""
        model = copy.deepcopy(model)  # .half() converts in place; leave the caller's model alone
        if self.emulated:
            return model.float().eval().gamma
        m = model.to(self.device).half().eval().to(memory_format=torch.channels_last)
        return m.gamma

    def describe(self) -> str:
        where = "emulated on the CPU" if self.emulated else torch.cuda.get_device_name(self.device)
        extra = (", fused curve" if self.fused else "") + (", compiled network" if self.compiled else "")
        return f"{self.name} ({where}, fp16, batch {self.batch}{extra})"

    def _on(self, stream):
        """Context manager making ``stream`` current (nothing when emulated)."""
        return contextlib.nullcontext() if self.emulated else torch.cuda.stream(stream)

    def _sync(self) -> None:
        if not self.emulated:
            torch.cuda.synchronize(self.device)

    # --- the network on small frames (the generic interface) ------------------------------
    @torch.inference_mode()
    def predict_gamma(self, x: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device)
        g = self._gamma_fp16(t)
        return g.float().cpu().numpy()

    def _gamma_fp16(self, small01: torch.Tensor) -> torch.Tensor:
        if self.emulated:
            return self.net(small01.float())
        x = small01.half().contiguous(memory_format=torch.channels_last)
        return self.net(x)

    # --- whole frames ----------------------------------------------------------------------
    def _batch_for(self, h: int, w: int) -> int:
        return max(1, min(self.batch, PINNED_BUDGET // (h * w * 3)))

    def _get_ring(self, b, h, w, sh, sw, host=True, yuv=False) -> _Ring:
        key = (b, h, w, sh, sw, host, yuv)
        if self._ring is None or self._ring.key != key:
            self._free_ring()
            self._ring = _Ring(b, h, w, sh, sw, self.device, host, yuv)
            self._sync()  # the zero-fills ran on the default stream
        return self._ring

    def _free_ring(self) -> None:
        if self._ring is not None:
            self._sync()
            self._ring = None

    def _phase_net(self, slot: _Slot, down: Downscaler) -> None:
        """compute stream: d_in -> d_small (0..1) and d_gamma (fp32)."""
        x = uint8_to_nchw(slot.d_in, down.ah.dtype if down.pool is None and not down.identity else torch.float32)
        small = down(x).mul_(1.0 / 255.0)
        slot.d_small.copy_(small)
        slot.d_gamma.copy_(self._gamma_fp16(slot.d_small))

    def _phase_curve(self, slot: _Slot, knee: float) -> None:
        """compute stream: d_in, d_lg -> d_out (uint8 NHWC)."""
        if self.fused:
            from psenet_stream.backends import kernels

            kernels.curve(slot.d_in, slot.d_lg, knee, out=slot.d_out)
        else:
            slot.d_out.copy_(curve_uint8(uint8_to_nchw(slot.d_in), slot.d_lg, knee))

    def _capture(self, ring: _Ring, knee: float) -> None:
        """Capture the network phase (and the eager curve) of every slot as CUDA graphs;
        on any failure run eagerly."""
        if not self.use_graphs or ring.graphs_ok is not None:
            return
        try:
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):  # warm up (cudnn autotuning, allocator, Triton JIT) off the capture
                for _ in range(2):
                    self._phase_net(ring.slots[0], ring.down)
                    self._phase_curve(ring.slots[0], knee)
            torch.cuda.current_stream(self.device).wait_stream(side)
            torch.cuda.synchronize(self.device)
            for slot in ring.slots:  # each graph keeps its own private memory pool
                if self.capture_net:
                    g1 = torch.cuda.CUDAGraph()
                    with torch.cuda.graph(g1):
                        self._phase_net(slot, ring.down)
                    slot.graph_net = g1
                if not self.fused:  # the fused curve is one launch already
                    g2 = torch.cuda.CUDAGraph()
                    with torch.cuda.graph(g2):
                        self._phase_curve(slot, knee)
                    slot.graph_curve = g2
            ring.knee = knee
            ring.graphs_ok = True
        except Exception as e:  # noqa: BLE001 - capture is an optimisation: any failure of it runs eagerly, never fails the run
            log.warning("cuda: CUDA graph capture failed (%s: %s); running eagerly", type(e).__name__, e)
            for slot in ring.slots:
                slot.graph_net = slot.graph_curve = None
            ring.graphs_ok = False
            torch.cuda.synchronize(self.device)

    def _compute(self, slot: _Slot, ring: _Ring, cnt: int, post, knee: float) -> None:
        """On the compute stream: network, gamma post-processing, curve (d_in -> d_out)."""
        if slot.graph_net is not None:
            slot.graph_net.replay()
        else:
            self._phase_net(slot, ring.down)
        slot.d_lg[:cnt].copy_(post(slot.d_gamma[:cnt], slot.d_small[:cnt]))  # strength, smoothing, scene cuts on the device
        if slot.graph_curve is not None:
            slot.graph_curve.replay()
        else:
            self._phase_curve(slot, knee)

    @torch.inference_mode()
    def enhance_uint8(
        self,
        frames,
        small_size: tuple[int, int],
        post: GammaHook,
        knee: float = 0.95,
        out=None,
    ):
        """(N, H, W, 3) uint8 RGB -> (N, H, W, 3) uint8 RGB, frames in order.

        ``frames`` is a numpy array (result: numpy, written to ``out`` when given) or a
        uint8 tensor on this backend's device (result: a tensor there; no host copies).
        ``post`` (a GammaHook) gets (gamma, small) as device tensors and returns log gamma.
        """
        on_device = torch.is_tensor(frames)
        _, h, w, _ = frames.shape
        sh, sw = small_size
        b = self._batch_for(h, w)
        ring = self._get_ring(b, h, w, sh, sw, host=not on_device)
        if ring.graphs_ok and not self.fused and ring.knee != knee:
            self._free_ring()  # the knee is baked into the captured curve
            ring = self._get_ring(b, h, w, sh, sw, host=not on_device)
        self._capture(ring, knee)
        if on_device:
            return self._enhance_device(frames, ring, b, post, knee, out)
        return self._host_loop(frames, out, ring, b, lambda slot, cnt: self._compute(slot, ring, cnt, post, knee))

    @torch.inference_mode()
    def enhance_yuv420p(self, frames: np.ndarray, small_size, post: GammaHook, knee: float, colorspace: int | None, full_range: bool, out=None):
        """(N, H*3/2, W) uint8 yuv420p -> the same, enhanced. Only yuv420p crosses the bus
        (1.5 bytes per pixel each way instead of 3); the colour conversion both ways runs on
        the GPU with the matrix of ``colorspace`` / ``full_range`` (``colour.py``)."""
        from psenet_stream import colour

        _, hh, w = frames.shape
        h = hh * 2 // 3
        sh, sw = small_size
        b = self._batch_for(h, w)
        ring = self._get_ring(b, h, w, sh, sw, host=True, yuv=True)
        if ring.graphs_ok and not self.fused and ring.knee != knee:
            self._free_ring()
            ring = self._get_ring(b, h, w, sh, sw, host=True, yuv=True)
        self._capture(ring, knee)
        key = (int(colorspace or 2), bool(full_range))
        if key not in self._colour:
            self._colour[key] = colour.matrices(*key, self.device)
        m, back = self._colour[key]

        def compute(slot: _Slot, cnt: int) -> None:
            colour.yuv420p_to_rgb(slot.d_yuv_in, back, out=slot.d_in)
            self._compute(slot, ring, cnt, post, knee)
            colour.rgb_to_yuv420p(slot.d_out, m, out=slot.d_yuv_out)

        return self._host_loop(frames, out, ring, b, compute, yuv=True)

    def _host_loop(self, frames: np.ndarray, out: np.ndarray, ring: _Ring, b: int, compute, yuv: bool = False) -> np.ndarray:
        """Frames in host memory through the ring: host copies, uploads, ``compute(slot, count)``
        on the compute stream, downloads; two batches in flight while the host fills a third."""
        n = frames.shape[0]
        if out is None:
            out = np.empty_like(frames)
        us, ds, ks = self.up_stream, self.down_stream, self.compute_stream
        pending: deque = deque()  # (slot, start, count): queued on the GPU, not yet harvested

        for k, start in enumerate(range(0, n, b)):
            cnt = min(b, n - start)
            slot = ring.slots[k % RING]  # used RING batches ago, and harvested since
            d_in, d_out = (slot.d_yuv_in, slot.d_yuv_out) if yuv else (slot.d_in, slot.d_out)
            copies = [(slot.n_in[:cnt], frames[start : start + cnt])]
            if len(pending) == RING - 1:  # harvest the oldest while filling this slot
                old, ost, oc = pending.popleft()
                old.ev_out.synchronize()
                copies.append((out[ost : ost + oc], old.n_out[:oc]))
            self._copy.many(copies)
            with self._on(us):
                d_in[:cnt].copy_(slot.h_in[:cnt], non_blocking=True)
                slot.ev_in.record(us)
            ks.wait_event(slot.ev_in)
            with self._on(ks):
                compute(slot, cnt)
                slot.ev_curve.record(ks)
            ds.wait_event(slot.ev_curve)
            with self._on(ds):
                slot.h_out[:cnt].copy_(d_out[:cnt], non_blocking=True)
                slot.ev_out.record(ds)
            pending.append((slot, start, cnt))
        while pending:
            old, ost, oc = pending.popleft()
            old.ev_out.synchronize()
            self._copy(out[ost : ost + oc], old.n_out[:oc])
        return out

    def _enhance_device(self, frames: torch.Tensor, ring: _Ring, b: int, post, knee: float, out):
        if frames.dtype != torch.uint8 or frames.device != self.device:
            raise BackendError(f"expected a uint8 tensor on {self.device}, got {frames.dtype} on {frames.device}", "move it with .to(device) or pass a numpy array")
        n = frames.shape[0]
        out = torch.empty_like(frames) if out is None else out
        ks = self.compute_stream
        if not self.emulated:
            ks.wait_stream(torch.cuda.current_stream(self.device))
        with self._on(ks):
            for k, start in enumerate(range(0, n, b)):
                cnt = min(b, n - start)
                slot = ring.slots[k % RING]
                slot.d_in[:cnt].copy_(frames[start : start + cnt])
                self._compute(slot, ring, cnt, post, knee)
                out[start : start + cnt].copy_(slot.d_out[:cnt])
        if not self.emulated:
            torch.cuda.current_stream(self.device).wait_stream(ks)
            frames.record_stream(ks)
            out.record_stream(ks)
        return out

    def close(self) -> None:
        self._free_ring()
        self._copy.close()
