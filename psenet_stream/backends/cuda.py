"""The CUDA backend: the whole frame on the GPU, torch fp16 network, fp32 curve.

Per batch of B frames (B from ``batch``; 1-2 for live input, 8+ for files):

    host uint8 RGB --(pinned ring slot, copy stream)--> GPU uint8 (N, H, W, 3)
    compute stream: uint8 -> float, downscale exactly like the CPU path (cv2 INTER_AREA,
                    rounded to 8 bits), network in fp16 channels_last -> gamma
    copy stream:    gamma + small frames -> pinned host      (small: ~0.4 MB per frame)
    host:           gamma_hook (the Enhancer's strength / temporal smoothing, numpy)
    copy stream:    processed log gamma -> GPU
    compute stream: log gamma upsampled, the curve with highlight protection
                    (enhancer.apply_exact itself, in fp32) -> uint8
    copy stream:    uint8 -> pinned host -> the caller's array

Copy and compute run on separate CUDA streams ordered by events, and the host pipelines
three batches: while it runs the hook for batch k, the GPU already runs the network for
batch k+1, and batch k-1's result is being copied back. Pinned buffers are allocated once
per (B, H, W) and reused; the two GPU phases are captured as CUDA graphs per ring slot
(fixed shapes; a partial last batch runs the full graph on padded slots and only its
first n frames are used) and fall back to eager execution if capture fails.

The device-independent pieces (``area_matrix``, ``downscale_like_cv2``, ``curve_uint8``)
run on the CPU too and are tested there against the CPU reference path.
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

from psenet_stream.backends.base import Backend
from psenet_stream.errors import BackendError

log = logging.getLogger("psenet_stream")

RING = 3  # pipelined batches in flight: upload/network, hook, download
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

    def __init__(self, h: int, w: int, sh: int, sw: int, device: torch.device | str = "cpu"):
        self.size = (sh, sw)
        self.identity = (sh, sw) == (h, w)
        self.pool = None
        area = sh < h  # the Enhancer's rule: INTER_AREA to shrink, INTER_LINEAR to enlarge tiny frames
        if not self.identity and area and h % sh == 0 and w % sw == 0:
            self.pool = (h // sh, w // sw)
        if not self.identity and self.pool is None:
            self.ah = torch.from_numpy(area_matrix(h, sh, area)).float().to(device)
            self.awt = torch.from_numpy(area_matrix(w, sw, area).T.copy()).float().to(device)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.identity:
            return x
        if self.pool is not None:
            y = F.avg_pool2d(x, self.pool, stride=self.pool)
        else:
            y = torch.matmul(self.ah, torch.matmul(x, self.awt))
        return y.round_().clamp_(0.0, 255.0)


def curve_uint8(x255: torch.Tensor, log_gamma_small: torch.Tensor, knee: float) -> torch.Tensor:
    """The curve at full resolution: (N, 3, H, W) fp32 0..255, small log gamma -> (N, H, W, 3) uint8.

    Exactly ``enhancer.apply_exact`` (bilinear log-gamma upsample, highlight protection,
    Y = 1 - (1 - I) ** gamma) in fp32, rounded like the CPU table (round(Y * 255)).
    """
    from psenet_stream.enhancer import apply_exact

    y = apply_exact(x255 / 255.0, log_gamma_small.float(), knee)
    return (y * 255.0).round_().clamp_(0.0, 255.0).to(torch.uint8).permute(0, 2, 3, 1)


def uint8_to_nchw(frames: torch.Tensor) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) fp32 0..255 in channels_last memory (no transpose copy)."""
    return frames.permute(0, 3, 1, 2).float()


# --- host copies --------------------------------------------------------------------------------


class _Copier:
    """Copies big uint8 batches host-to-host with a few threads (numpy releases the GIL).

    One thread moves ~10 GB/s; a batch of eight 1080p frames is 50 MB each way, so at
    thousands of fps the host copies into and out of the pinned ring would otherwise be
    the bottleneck. Rows are split between threads; the result equals ``dst[...] = src``.
    """

    MIN_BYTES = 4 << 20  # below this one thread is faster than the hand-off

    def __init__(self, threads: int):
        self.threads = max(1, threads)
        self.pool = None
        if self.threads > 1:
            from concurrent.futures import ThreadPoolExecutor

            self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="psenet-copy")

    def __call__(self, dst: np.ndarray, src: np.ndarray) -> None:
        rows = dst.shape[1] if dst.ndim > 1 else 0
        if self.pool is None or dst.nbytes < self.MIN_BYTES or rows < 2 * self.threads:
            np.copyto(dst, src)
            return
        cuts = np.linspace(0, rows, self.threads + 1).astype(int)
        futures = [self.pool.submit(np.copyto, dst[:, a:b], src[:, a:b]) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]
        for f in futures:
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
    """One ring slot: pinned host buffers, device buffers, events, and captured graphs."""

    def __init__(self, b: int, h: int, w: int, sh: int, sw: int, device: torch.device):
        cuda = device.type == "cuda"
        pin = dict(pin_memory=cuda)  # pin_memory raises without a CUDA device
        self.h_in = torch.empty((b, h, w, 3), dtype=torch.uint8, **pin)
        self.h_out = torch.empty((b, h, w, 3), dtype=torch.uint8, **pin)
        self.h_gamma = torch.empty((b, 3, sh, sw), dtype=torch.float32, **pin)
        self.h_small = torch.empty((b, 3, sh, sw), dtype=torch.float32, **pin)
        self.h_lg = torch.zeros((b, 3, sh, sw), dtype=torch.float32, **pin)
        self.d_in = torch.zeros((b, h, w, 3), dtype=torch.uint8, device=device)
        self.d_out = torch.empty((b, h, w, 3), dtype=torch.uint8, device=device)
        self.d_gamma = torch.ones((b, 3, sh, sw), dtype=torch.float32, device=device)
        self.d_small = torch.zeros((b, 3, sh, sw), dtype=torch.float32, device=device)
        self.d_lg = torch.zeros((b, 3, sh, sw), dtype=torch.float32, device=device)
        # blocking: the host waits on some of them, so sleep rather than spin
        event = (lambda: torch.cuda.Event(blocking=True)) if cuda else _NoEvent
        self.ev_in = event()  # H2D of the frames done (copy stream)
        self.ev_net = event()  # network done (compute stream)
        self.ev_gamma = event()  # gamma + small on the host (copy stream)
        self.ev_lg = event()  # log gamma on the device (copy stream)
        self.ev_curve = event()  # curve done (compute stream)
        self.ev_out = event()  # output on the host (copy stream)
        self.graph_net: torch.cuda.CUDAGraph | None = None
        self.graph_curve: torch.cuda.CUDAGraph | None = None
        # numpy views of the pinned buffers (no copies)
        self.n_in, self.n_out = self.h_in.numpy(), self.h_out.numpy()
        self.n_gamma, self.n_small, self.n_lg = self.h_gamma.numpy(), self.h_small.numpy(), self.h_lg.numpy()


class _Ring:
    def __init__(self, b, h, w, sh, sw, device):
        self.key = (b, h, w, sh, sw)
        self.slots = [_Slot(b, h, w, sh, sw, device) for _ in range(RING)]
        self.down = Downscaler(h, w, sh, sw, device)
        self.graphs_ok: bool | None = None  # None: not tried yet
        self.knee: float | None = None  # the knee baked into the captured curve graphs


class CudaBackend(Backend):
    name = "cuda"
    full_frame = True
    capture_net = True  # capture the network phase as a CUDA graph (the tensorrt subclass does not)

    def __init__(
        self,
        model,
        meta,
        batch: int | None = None,
        device: str | torch.device | None = None,
        graphs: bool = True,
        copy_threads: int | None = None,
        _emulate: bool = False,
    ):
        """``_emulate`` runs the same batching/ring/hook logic on the CPU with no streams,
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
        self.net = self._make_net(model)
        self.copy_stream = _NoStream() if _emulate else torch.cuda.Stream(self.device)
        self.compute_stream = _NoStream() if _emulate else torch.cuda.Stream(self.device)
        self._ring: _Ring | None = None
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
        return f"{self.name} ({where}, fp16, batch {self.batch})"

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

    def _get_ring(self, b, h, w, sh, sw) -> _Ring:
        key = (b, h, w, sh, sw)
        if self._ring is None or self._ring.key != key:
            self._free_ring()
            self._ring = _Ring(b, h, w, sh, sw, self.device)
            self._sync()  # the zero-fills ran on the default stream
        return self._ring

    def _free_ring(self) -> None:
        if self._ring is not None:
            self._sync()
            self._ring = None

    def _phase_net(self, slot: _Slot, down: Downscaler) -> None:
        """compute stream: d_in -> d_small (0..1) and d_gamma (fp32)."""
        x = uint8_to_nchw(slot.d_in)
        small = down(x).mul_(1.0 / 255.0)
        slot.d_small.copy_(small)
        slot.d_gamma.copy_(self._gamma_fp16(slot.d_small))

    def _phase_curve(self, slot: _Slot, knee: float) -> None:
        """compute stream: d_in, d_lg -> d_out (uint8 NHWC)."""
        slot.d_out.copy_(curve_uint8(uint8_to_nchw(slot.d_in), slot.d_lg, knee))

    def _capture(self, ring: _Ring, knee: float) -> None:
        """Capture both phases of every slot as CUDA graphs; on any failure run eagerly."""
        if not self.use_graphs or ring.graphs_ok is not None:
            return
        try:
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):  # warm up (cudnn autotuning, allocator) off the capture
                for _ in range(2):
                    self._phase_net(ring.slots[0], ring.down)
                    self._phase_curve(ring.slots[0], knee)
            torch.cuda.current_stream(self.device).wait_stream(side)
            torch.cuda.synchronize(self.device)
            for slot in ring.slots:  # each graph keeps its own private memory pool
                g1, g2 = torch.cuda.CUDAGraph(), torch.cuda.CUDAGraph()
                if self.capture_net:
                    with torch.cuda.graph(g1):
                        self._phase_net(slot, ring.down)
                    slot.graph_net = g1
                with torch.cuda.graph(g2):
                    self._phase_curve(slot, knee)
                slot.graph_curve = g2
            ring.knee = knee
            ring.graphs_ok = True
        except Exception as e:  # capture is an optimisation: never fail the run for it
            log.warning("cuda: CUDA graph capture failed (%s: %s); running eagerly", type(e).__name__, e)
            for slot in ring.slots:
                slot.graph_net = slot.graph_curve = None
            ring.graphs_ok = False
            torch.cuda.synchronize(self.device)

    @torch.inference_mode()
    def enhance_uint8(
        self,
        frames: np.ndarray,
        small_size: tuple[int, int],
        gamma_hook: Callable[[np.ndarray, np.ndarray], np.ndarray],
        knee: float = 0.95,
    ) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB -> (N, H, W, 3) uint8 RGB, frames in order."""
        n, h, w, _ = frames.shape
        sh, sw = small_size
        b = self._batch_for(h, w)
        ring = self._get_ring(b, h, w, sh, sw)
        if ring.graphs_ok and ring.knee != knee:
            self._free_ring()  # the knee is baked into the captured curve
            ring = self._get_ring(b, h, w, sh, sw)
        self._capture(ring, knee)
        out = np.empty_like(frames)
        cs, ks = self.copy_stream, self.compute_stream
        hooked: deque = deque()  # (slot, start, count): network queued, hook pending
        curved: deque = deque()  # (slot, start, count): curve queued, output pending

        def launch_net(slot: _Slot, start: int, cnt: int) -> None:
            self._copy(slot.n_in[:cnt], frames[start : start + cnt])
            with self._on(cs):
                slot.d_in[:cnt].copy_(slot.h_in[:cnt], non_blocking=True)
                slot.ev_in.record(cs)
            ks.wait_event(slot.ev_in)
            with self._on(ks):
                if slot.graph_net is not None:
                    slot.graph_net.replay()
                else:
                    self._phase_net(slot, ring.down)
                slot.ev_net.record(ks)
            cs.wait_event(slot.ev_net)
            with self._on(cs):
                slot.h_gamma.copy_(slot.d_gamma, non_blocking=True)
                slot.h_small.copy_(slot.d_small, non_blocking=True)
                slot.ev_gamma.record(cs)

        def run_hook_and_curve(slot: _Slot, cnt: int) -> None:
            slot.ev_gamma.synchronize()
            # copies: the hook keeps references (the previous small frame) across batches
            lg = gamma_hook(slot.n_gamma[:cnt].copy(), slot.n_small[:cnt].copy())
            np.copyto(slot.n_lg[:cnt], lg)
            with self._on(cs):
                slot.d_lg.copy_(slot.h_lg, non_blocking=True)
                slot.ev_lg.record(cs)
            ks.wait_event(slot.ev_lg)
            with self._on(ks):
                if slot.graph_curve is not None:
                    slot.graph_curve.replay()
                else:
                    self._phase_curve(slot, knee)
                slot.ev_curve.record(ks)
            cs.wait_event(slot.ev_curve)
            with self._on(cs):
                slot.h_out[:cnt].copy_(slot.d_out[:cnt], non_blocking=True)
                slot.ev_out.record(cs)

        def harvest(slot: _Slot, start: int, cnt: int) -> None:
            slot.ev_out.synchronize()
            self._copy(out[start : start + cnt], slot.n_out[:cnt])

        for k, start in enumerate(range(0, n, b)):
            cnt = min(b, n - start)
            slot = ring.slots[k % RING]
            # slot reuse is safe: the batch that used it RING batches ago was harvested
            launch_net(slot, start, cnt)
            hooked.append((slot, start, cnt))
            if len(hooked) > 1:
                s, st, c = hooked.popleft()
                run_hook_and_curve(s, c)
                curved.append((s, st, c))
            if len(curved) > 1:
                harvest(*curved.popleft())
        while hooked:
            s, st, c = hooked.popleft()
            run_hook_and_curve(s, c)
            curved.append((s, st, c))
        while curved:
            harvest(*curved.popleft())
        return out

    def close(self) -> None:
        self._free_ring()
        self._copy.close()
