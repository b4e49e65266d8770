"""Fused GPU kernels of the cuda backend, in Triton (shipped with CUDA builds of torch).

``curve``: the whole full-resolution step 3 of the Enhancer in one pass over the frame.
Per output pixel and channel it reads the uint8 input, samples the small log-gamma map
bilinearly (torch's ``align_corners=False`` rule), applies highlight protection and
Y = 1 - (1 - I) ** gamma in fp32, and writes uint8. It moves 6 bytes per pixel; the
eager torch version of the same maths makes about twenty passes over fp32 tensors.

When Triton is missing (CPU-only torch) ``HAVE_TRITON`` is False and callers use their
torch fallbacks. ``TRITON_INTERPRET=1`` runs the kernels on CPU tensors (the unit tests).
"""

from __future__ import annotations

import torch

from psenet_stream.curve import LOG_GAMMA_RANGE

try:
    import triton
    import triton.language as tl

    HAVE_TRITON = True
except Exception:  # noqa: BLE001  # pragma: no cover - CPU-only installs, or a broken Triton that raises anything on import: fall back
    HAVE_TRITON = False

BLOCK = 1024

if HAVE_TRITON:

    @triton.jit
    def _curve_kernel(
        x_ptr, lg_ptr, out_ptr, H, W, SH, SW, scale_h, scale_w, knee, inv_span,
        LO: tl.constexpr, HI: tl.constexpr, PROTECT: tl.constexpr, BLOCK: tl.constexpr,
    ):
        n = tl.program_id(1)
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < H * W
        y = offs // W
        x = offs - y * W
        sy = tl.maximum((y.to(tl.float32) + 0.5) * scale_h - 0.5, 0.0)
        sx = tl.maximum((x.to(tl.float32) + 0.5) * scale_w - 0.5, 0.0)
        y0 = tl.minimum(sy.to(tl.int32), SH - 1)
        x0 = tl.minimum(sx.to(tl.int32), SW - 1)
        wy = sy - y0.to(tl.float32)
        wx = sx - x0.to(tl.float32)
        y1 = tl.minimum(y0 + 1, SH - 1)
        x1 = tl.minimum(x0 + 1, SW - 1)
        pix = n.to(tl.int64) * H * W * 3 + offs.to(tl.int64) * 3
        for c in tl.static_range(3):
            plane = lg_ptr + (n * 3 + c) * SH * SW
            l00 = tl.load(plane + y0 * SW + x0, mask=mask, other=0.0)
            l01 = tl.load(plane + y0 * SW + x1, mask=mask, other=0.0)
            l10 = tl.load(plane + y1 * SW + x0, mask=mask, other=0.0)
            l11 = tl.load(plane + y1 * SW + x1, mask=mask, other=0.0)
            top = l00 + (l01 - l00) * wx
            bot = l10 + (l11 - l10) * wx
            lg = tl.minimum(tl.maximum(top + (bot - top) * wy, LO), HI)
            g = tl.exp(lg)
            v = tl.load(x_ptr + pix + c, mask=mask, other=0).to(tl.float32) * (1.0 / 255.0)
            if PROTECT:
                t = tl.minimum(tl.maximum((v - knee) * inv_span, 0.0), 1.0)
                g = tl.where(g < 1.0, g + (1.0 - g) * (t * t * (3.0 - 2.0 * t)), g)
            # (1 - v) ** g. The base is clamped: on the GPU 255 * (1 / 255) can round to just
            # above 1, and log2 of a negative number is NaN (white
            # pixels would come out black). At v = 1, log2(0) = -inf and exp2(-inf) = 0, so Y = 1.
            out = 1.0 - tl.exp2(g * tl.log2(tl.maximum(1.0 - v, 0.0)))
            q = tl.minimum(tl.maximum(out * 255.0 + 0.5, 0.0), 255.0)
            tl.store(out_ptr + pix + c, q.to(tl.uint8), mask=mask)


def curve(frames: torch.Tensor, log_gamma_small: torch.Tensor, knee: float, out: torch.Tensor | None = None) -> torch.Tensor:
    """(N, H, W, 3) uint8 + (N, 3, h, w) fp32 log gamma -> (N, H, W, 3) uint8, one kernel.

    Equals ``curve.apply_exact`` rounded to 8 bits, to within one level (fp32 exp2/log2
    instead of pow, and ties rounded up instead of to even).
    """
    n, h, w, _ = frames.shape
    sh, sw = log_gamma_small.shape[2:]
    lg = log_gamma_small.float().contiguous()
    out = torch.empty_like(frames) if out is None else out
    grid = (triton.cdiv(h * w, BLOCK), n)
    protect = knee < 1.0
    _curve_kernel[grid](
        frames, lg, out, h, w, sh, sw, sh / h, sw / w, float(knee), 1.0 / (1.0 - knee) if protect else 0.0,
        LO=LOG_GAMMA_RANGE[0], HI=LOG_GAMMA_RANGE[1], PROTECT=protect, BLOCK=BLOCK,
    )
    return out
