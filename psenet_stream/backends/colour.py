"""yuv420p <-> RGB in torch, on whatever device the frames are on (the cuda backend's GPU).

The same maths as the CPU path, so a file gives the same colours on every backend:

* ``rgb_to_yuv420p``: ``io.video.rgb_to_yuv420p`` to within one level (the matrix of
  ``io.video._yuv_matrix``, values rounded half to even like cv2, chroma the 2x2 mean of the
  rounded values with cv2's integer rounding; a few % of values differ by one level).
* ``yuv420p_to_rgb``: the exact inverse matrix, chroma repeated 2x2. swscale's conversion
  (``VideoFrame.to_ndarray('rgb24')``, which the RGB path uses) follows the frame's
  colourspace tag the same way but comes out about one level darker on limited-range video
  (measured mean -1.2 levels, at most 3), so the two paths differ by that much.

Frames are (N, H * 3 / 2, W) uint8 tensors in yuv420p layout (Y rows, then the U plane and
the V plane packed flat, as PyAV's ``to_ndarray()`` / ``from_ndarray(format='yuv420p')``);
H and W even.
"""

from __future__ import annotations

import numpy as np
import torch


def matrices(colorspace: int | None, full_range: bool, device, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """(3, 4) RGB -> YUV matrix with offsets, and its (3, 4) inverse, as tensors on ``device``."""
    from psenet_stream.io.video import _yuv_matrix

    m = _yuv_matrix(colorspace, full_range).astype(np.float64)
    inv = np.linalg.inv(m[:, :3])
    back = np.hstack([inv, (-inv @ m[:, 3])[:, None]])
    return torch.from_numpy(m).to(device=device, dtype=dtype), torch.from_numpy(back).to(device=device, dtype=dtype)


def _planes(yuv: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    n = yuv.shape[0]
    flat = yuv.reshape(n, -1)
    q = (h // 2) * (w // 2)
    y = flat[:, : h * w].reshape(n, h, w)
    u = flat[:, h * w : h * w + q].reshape(n, h // 2, w // 2)
    v = flat[:, h * w + q :].reshape(n, h // 2, w // 2)
    return y, u, v


def yuv420p_to_rgb(yuv: torch.Tensor, back: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """(N, H*3/2, W) uint8 yuv420p -> (N, H, W, 3) uint8 RGB with the (3, 4) inverse matrix ``back``."""
    _, hh, w = yuv.shape
    h = hh * 2 // 3
    y, u, v = _planes(yuv, h, w)
    u = u.repeat_interleave(2, dim=1).repeat_interleave(2, dim=2)
    v = v.repeat_interleave(2, dim=1).repeat_interleave(2, dim=2)
    x = torch.stack([y, u, v], dim=-1).to(back.dtype)  # (N, H, W, 3)
    rgb = torch.matmul(x, back[:, :3].T) + back[:, 3]
    rgb = rgb.round_().clamp_(0, 255).to(torch.uint8)
    if out is None:
        return rgb
    out.copy_(rgb)
    return out


def rgb_to_yuv420p(rgb: torch.Tensor, m: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """(N, H, W, 3) uint8 RGB -> (N, H*3/2, W) uint8 yuv420p with the (3, 4) matrix ``m``."""
    n, h, w, _ = rgb.shape
    yuv = (torch.matmul(rgb.to(m.dtype), m[:, :3].T) + m[:, 3]).round_().clamp_(0, 255)  # (N, H, W, 3), whole levels
    if out is None:
        out = torch.empty((n, h * 3 // 2, w), dtype=torch.uint8, device=rgb.device)
    y, u, v = _planes(out, h, w)
    y.copy_(yuv[..., 0])
    # cv2 INTER_AREA at exactly 1/2 on uint8: (a + b + c + d + 2) >> 2
    c = yuv[..., 1:].to(torch.int32).reshape(n, h // 2, 2, w // 2, 2, 2).sum(dim=(2, 4))
    c = torch.div(c + 2, 4, rounding_mode="floor")
    u.copy_(c[..., 0])
    v.copy_(c[..., 1])
    return out
