"""Raw frames on a byte stream: ``-`` as input (stdin) and output (stdout), for ffmpeg pipes.

Frames have a fixed size and one of ``RAW_PIX_FMTS``: rgb24 / bgr24 (H * W * 3 bytes) or
yuv420p (I420, H * W * 3 / 2 bytes, BT.601 limited range, H and W even).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from fractions import Fraction
from typing import BinaryIO

import numpy as np

from psenet_stream.colour import i420_to_rgb, rgb_to_i420
from psenet_stream.errors import UsageError
from psenet_stream.io.frames import Frame, StreamInfo
from psenet_stream.io.specs import parse_size

log = logging.getLogger("psenet_stream")

RAW_PIX_FMTS = ("rgb24", "bgr24", "yuv420p")


def raw_frame_bytes(w: int, h: int, pix_fmt: str) -> int:
    if pix_fmt == "yuv420p":
        if w % 2 or h % 2:
            raise UsageError(f"yuv420p needs an even frame size, got {w}x{h}", "use rgb24 or bgr24 for odd sizes")
        return w * h * 3 // 2
    return w * h * 3


def raw_to_rgb(buf: np.ndarray, w: int, h: int, pix_fmt: str) -> np.ndarray:
    if pix_fmt == "rgb24":
        return buf.reshape(h, w, 3)
    if pix_fmt == "bgr24":
        return np.ascontiguousarray(buf.reshape(h, w, 3)[..., ::-1])
    return i420_to_rgb(buf, w, h)


def rgb_to_raw(rgb: np.ndarray, pix_fmt: str) -> np.ndarray:
    if pix_fmt == "rgb24":
        return rgb
    if pix_fmt == "bgr24":
        return np.ascontiguousarray(rgb[..., ::-1])
    return rgb_to_i420(rgb)


class RawSource:
    """Raw frames of a fixed size and pixel format from a binary stream (stdin by default).

    ``size`` 'WxH' (or (W, H)), ``pix_fmt`` one of RAW_PIX_FMTS; yields ``Frame.rgb``
    (H, W, 3) uint8 RGB in [0, 255] whatever the input format, without pts.

    Each read is bounded (exactly one frame); a short read at the end is reported and
    ignored.
    """

    def __init__(
        self, stream: BinaryIO | None = None, *, size: str | tuple[int, int] | None, pix_fmt: str = "rgb24", fps: float | None = None
    ):
        if size is None:
            raise UsageError("reading raw frames from '-' needs their size", "pass --size WIDTHxHEIGHT (and --pix-fmt rgb24|bgr24|yuv420p)")
        if pix_fmt not in RAW_PIX_FMTS:
            raise UsageError(f"unsupported raw pixel format {pix_fmt!r}", f"use one of {', '.join(RAW_PIX_FMTS)}")
        self.width, self.height = size if isinstance(size, tuple) else parse_size(size)
        self.pix_fmt = pix_fmt
        self.frame_bytes = raw_frame_bytes(self.width, self.height, pix_fmt)
        self.stream = stream if stream is not None else sys.stdin.buffer
        self.dropped = 0
        self.info = StreamInfo(
            width=self.width,
            height=self.height,
            fps=Fraction(fps).limit_denominator(1001) if fps else None,
            pix_fmt=pix_fmt,
            description="stdin",
        )

    def __iter__(self) -> Iterator[Frame]:
        i = 0
        n = self.frame_bytes
        while True:
            buf = bytearray(n)
            view = memoryview(buf)
            got = 0
            while got < n:
                k = self.stream.readinto(view[got:])
                if not k:
                    break
                got += k
            if got == 0:
                return
            if got < n:
                log.warning(
                    "warning: ignoring %d trailing bytes on stdin (less than one %dx%d %s frame)",
                    got,
                    self.width,
                    self.height,
                    self.pix_fmt,
                )
                return
            arr = np.frombuffer(buf, dtype=np.uint8)
            yield Frame(rgb=raw_to_rgb(arr, self.width, self.height, self.pix_fmt), index=i, t_capture=time.perf_counter())
            i += 1

    def close(self) -> None:
        pass


class RawSink:
    """Raw frames to a binary stream (stdout by default) in rgb24, bgr24 or yuv420p.

    ``write`` takes (H, W, 3) uint8 RGB and writes H * W * 3 bytes (rgb24, bgr24) or
    H * W * 3 / 2 bytes (yuv420p, H and W even), nothing else: no header, no timestamps."""

    def __init__(self, stream: BinaryIO | None = None, *, pix_fmt: str = "rgb24"):
        self.stream = stream if stream is not None else sys.stdout.buffer
        self.pix_fmt = pix_fmt

    def write(self, frame: Frame, enhanced: np.ndarray) -> None:
        self.stream.write(memoryview(np.ascontiguousarray(rgb_to_raw(enhanced, self.pix_fmt))).cast("B"))

    def close(self) -> None:
        try:
            self.stream.flush()
        except (BrokenPipeError, ValueError):
            pass
