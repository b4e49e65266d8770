"""Open any input spec as a Source (an iterable of ``Frame`` with ``info`` and ``dropped``).

    open_source("clip.mp4")                 -> VideoFileSource (io/video.py)
    open_source("photo.jpg") / ("folder/")  -> ImageSource
    open_source("-", size="640x480", pix_fmt="rgb24") -> RawSource on stdin
    open_source("rtsp://...") / "/dev/video0" / "lavfi:testsrc2" -> psenet_stream.io.live

Live specs are imported lazily so file work never loads the live machinery.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from psenet_stream.colour import i420_to_rgb, rgb_to_i420
from psenet_stream.errors import InputError, UsageError
from psenet_stream.io.frames import Frame, StreamInfo
from psenet_stream.io.specs import IMAGE_EXTENSIONS, is_image_path, is_live_spec, list_images, parse_size

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


class ImageSource:
    """One image, or every image under a folder; Frame.name is the path relative to the root."""

    def __init__(self, path: str | Path, *, exclude: str | Path | None = None):
        p = Path(path)
        if not p.exists():
            raise InputError(f"input not found: {p}", "check the path")
        if p.is_dir():
            self.root = p
            self.paths = list_images(p, Path(exclude) if exclude is not None else None)
            if not self.paths:
                raise InputError(
                    f"no images in folder {p}", f"put {', '.join(e[1:] for e in IMAGE_EXTENSIONS)} files there, or pass a video file"
                )
        else:
            if p.stat().st_size == 0:
                raise InputError(f"input is an empty file (0 bytes): {p}", "the image was not written completely; copy or export it again")
            self.root = p.parent
            self.paths = [p]
        self.single = not p.is_dir()
        self.dropped = 0
        self.skipped: list[Path] = []
        self.info = StreamInfo(width=0, height=0, frames=len(self.paths), description=str(p))

    @staticmethod
    def read(path: Path) -> np.ndarray | None:
        import cv2

        try:
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        except cv2.error:
            bgr = None
        return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def __iter__(self) -> Iterator[Frame]:
        for i, path in enumerate(self.paths):
            rgb = self.read(path)
            if rgb is None:
                if self.single:
                    raise InputError(f"cannot read image {path}", "the file is damaged or not an image in a supported format")
                log.warning("warning: skipping unreadable image %s", path)
                self.skipped.append(path)
                continue
            yield Frame(rgb=rgb, index=i, name=str(path.relative_to(self.root)))

    def close(self) -> None:
        pass


class RawSource:
    """Raw frames of a fixed size and pixel format from a binary stream (stdin by default).

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
        from fractions import Fraction

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


def open_source(spec: str | Path, **opts):
    """Open an input spec (see the module docstring). Options go to the matching source."""
    s = str(spec)
    if s == "-":
        return RawSource(opts.get("stream"), size=opts.get("size"), pix_fmt=opts.get("pix_fmt") or "rgb24", fps=opts.get("fps"))
    if is_live_spec(s):
        from psenet_stream.io.live import open_live_source

        return open_live_source(s, **opts)
    p = Path(s)
    if p.is_dir() or is_image_path(p):
        return ImageSource(p)
    from psenet_stream.io.video import VideoFileSource

    return VideoFileSource(p, **{k: v for k, v in opts.items() if k in ("thread_type", "timeout_s")})
