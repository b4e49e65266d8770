"""yuv <-> RGB: the matrices and every conversion, in numpy (cv2) and torch. No av.

The matrix of a frame follows its tags as swscale does: ``colorspace`` is the AVColorSpace
value (1 BT.709, 4 FCC, 7 SMPTE 240M, 9/10 BT.2020; anything else, 2 = unspecified
included, BT.601) and ``full_range`` says JPEG (0..255) rather than limited (16..235 luma,
16..240 chroma) range. With Kr, Kb of the colourspace:

    Y = Kr R + (1 - Kr - Kb) G + Kb B,   U = (B - Y) / (2 (1 - Kb)) + 128,   V = (R - Y) / (2 (1 - Kr)) + 128

scaled by 219/255 (Y, plus 16) and 224/255 (U, V) for limited range. ``yuv_matrix`` is
that (3, 4) matrix with the offsets in its last column; every conversion below uses it.

Layouts: RGB frames are (H, W, 3) or (N, H, W, 3) uint8 in [0, 255]. yuv420p frames are
(H * 3 / 2, W) or (N, H * 3 / 2, W) uint8 (Y rows, then the U plane and the V plane packed
flat, as PyAV's ``to_ndarray()`` / ``from_ndarray(format='yuv420p')``), H and W even.

- ``rgb_to_yuv420p_np``: one frame with cv2 (the CPU encoder path), chroma the 2x2 mean.
- ``rgb_to_yuv420p`` / ``yuv420p_to_rgb``: batches of torch tensors on any device (the cuda
  backend's GPU path). The forward conversion matches ``rgb_to_yuv420p_np`` to within one
  level (values rounded half to even like cv2, chroma the 2x2 mean of the rounded values
  with cv2's integer rounding); the inverse is the exact inverse matrix, chroma repeated
  2x2. swscale's own conversion (``VideoFrame.to_ndarray('rgb24')``, the RGB path) follows
  the same tags but comes out about one level darker on limited-range video (measured mean
  -1.2 levels, at most 3).
- ``yuv420p_to_rgb_np`` / ``rgb_to_yuv420p_batch_np``: the torch maths on the CPU, for numpy
  batches (the fallback when a backend cannot take yuv420p itself).
- ``i420_to_rgb`` / ``rgb_to_i420``: cv2's fixed BT.601 limited-range conversion, for raw
  yuv420p frames on stdin / stdout, which carry no tags.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

# (Kr, Kb) by AVColorSpace value; anything else uses BT.601, as swscale does.
_KR_KB = {1: (0.2126, 0.0722), 4: (0.30, 0.11), 7: (0.212, 0.087), 9: (0.2627, 0.0593), 10: (0.2627, 0.0593)}
_BT601 = (0.299, 0.114)
_MATRICES: dict[tuple[int, bool], np.ndarray] = {}


def yuv_matrix(colorspace: int | None, full_range: bool) -> np.ndarray:
    """The (3, 4) float32 RGB -> YUV matrix (offsets in the last column) of these tags."""
    key = (int(colorspace or 2), bool(full_range))
    m = _MATRICES.get(key)
    if m is None:
        kr, kb = _KR_KB.get(key[0], _BT601)
        y = np.array([kr, 1.0 - kr - kb, kb])
        u = (np.array([0.0, 0.0, 1.0]) - y) / (2 * (1 - kb))
        v = (np.array([1.0, 0.0, 0.0]) - y) / (2 * (1 - kr))
        rows = np.stack([y, u, v]) if full_range else np.stack([y * 219 / 255, u * 224 / 255, v * 224 / 255])
        off = np.array([0.0 if full_range else 16.0, 128.0, 128.0])
        m = _MATRICES[key] = np.hstack([rows, off[:, None]]).astype(np.float32)
    return m


# --- numpy / cv2 ------------------------------------------------------------------------------


def rgb_to_yuv420p_np(rgb: np.ndarray, colorspace: int | None = None, full_range: bool = False) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H * 3 / 2, W) uint8 planar yuv420p (H and W even).

    The matrix and range swscale would use for ``colorspace`` (within 2 levels; chroma is
    the 2x2 mean), at a third to a quarter of the cost of ``VideoFrame.reformat`` at 720p
    (cv2.transform + one half-size resize: 2.5-4 ms vs 6-12 ms per frame on a 2-core box).
    """
    import cv2

    h, w = rgb.shape[:2]
    yuv = cv2.transform(rgb, yuv_matrix(colorspace, full_range))
    out = np.empty((h * 3 // 2, w), np.uint8)
    out[:h] = cv2.extractChannel(yuv, 0)
    half = cv2.resize(yuv, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    # U then V, each (h/2 x w/2), packed flat after Y (the layout VideoFrame.from_ndarray reads):
    # not whole rows of w when h/2 is odd (e.g. 160x118, 2x2), so write the flat view
    flat, n, q = out.reshape(-1), h * w, (h // 2) * (w // 2)
    flat[n : n + q] = cv2.extractChannel(half, 1).reshape(-1)
    flat[n + q :] = cv2.extractChannel(half, 2).reshape(-1)
    return out


def i420_to_rgb(buf: np.ndarray, width: int, height: int) -> np.ndarray:
    """Raw I420 bytes (H * W * 3 / 2 uint8) -> (H, W, 3) uint8 RGB, cv2's BT.601 limited range."""
    import cv2

    return cv2.cvtColor(buf.reshape(height * 3 // 2, width), cv2.COLOR_YUV2RGB_I420)


def rgb_to_i420(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H * 3 / 2, W) uint8 I420, cv2's BT.601 limited range."""
    import cv2

    return cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)


# --- torch ------------------------------------------------------------------------------------


def matrices(colorspace: int | None, full_range: bool, device, dtype=None) -> tuple["torch.Tensor", "torch.Tensor"]:
    """(3, 4) RGB -> YUV matrix with offsets, and its (3, 4) inverse, as tensors on ``device``
    (float32 unless ``dtype`` says otherwise)."""
    import torch

    m = yuv_matrix(colorspace, full_range).astype(np.float64)
    inv = np.linalg.inv(m[:, :3])
    back = np.hstack([inv, (-inv @ m[:, 3])[:, None]])
    dtype = dtype or torch.float32
    return torch.from_numpy(m).to(device=device, dtype=dtype), torch.from_numpy(back).to(device=device, dtype=dtype)


def _planes(yuv: "torch.Tensor", h: int, w: int) -> tuple["torch.Tensor", "torch.Tensor", "torch.Tensor"]:
    n = yuv.shape[0]
    flat = yuv.reshape(n, -1)
    q = (h // 2) * (w // 2)
    y = flat[:, : h * w].reshape(n, h, w)
    u = flat[:, h * w : h * w + q].reshape(n, h // 2, w // 2)
    v = flat[:, h * w + q :].reshape(n, h // 2, w // 2)
    return y, u, v


def yuv420p_to_rgb(yuv: "torch.Tensor", back: "torch.Tensor", out: "torch.Tensor | None" = None) -> "torch.Tensor":
    """(N, H*3/2, W) uint8 yuv420p -> (N, H, W, 3) uint8 RGB with the (3, 4) inverse matrix ``back``."""
    import torch

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


def rgb_to_yuv420p(rgb: "torch.Tensor", m: "torch.Tensor", out: "torch.Tensor | None" = None) -> "torch.Tensor":
    """(N, H, W, 3) uint8 RGB -> (N, H*3/2, W) uint8 yuv420p with the (3, 4) matrix ``m``."""
    import torch

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


def yuv420p_to_rgb_np(yuv: np.ndarray, colorspace: int | None = None, full_range: bool = False) -> np.ndarray:
    """(N, H*3/2, W) uint8 yuv420p -> (N, H, W, 3) uint8 RGB on the CPU (``yuv420p_to_rgb``'s maths)."""
    import torch

    _, back = matrices(colorspace, full_range, "cpu")
    return yuv420p_to_rgb(torch.from_numpy(np.ascontiguousarray(yuv)), back).numpy()


def rgb_to_yuv420p_batch_np(rgb: np.ndarray, colorspace: int | None = None, full_range: bool = False) -> np.ndarray:
    """(N, H, W, 3) uint8 RGB -> (N, H*3/2, W) uint8 yuv420p on the CPU (``rgb_to_yuv420p``'s maths)."""
    import torch

    m, _ = matrices(colorspace, full_range, "cpu")
    return rgb_to_yuv420p(torch.from_numpy(np.ascontiguousarray(rgb)), m).numpy()
