"""Open any input spec as a Source (an iterable of ``Frame`` with ``info`` and ``dropped``).

    open_source("clip.mp4")                 -> VideoFileSource (io/video.py)
    open_source("photo.jpg") / ("folder/")  -> ImageSource
    open_source("-", size="640x480", pix_fmt="rgb24") -> RawSource on stdin (io/raw.py)
    open_source("rtsp://...") / "/dev/video0" / "lavfi:testsrc2" -> psenet_stream.io.live

Live specs are imported lazily so file work never loads the live machinery.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from psenet_stream.errors import InputError
from psenet_stream.io.frames import Frame, Source, StreamInfo
from psenet_stream.io.raw import RawSource
from psenet_stream.io.specs import IMAGE_EXTENSIONS, is_image_path, is_live_spec, list_images

log = logging.getLogger("psenet_stream")

class ImageSource:
    """One image, or every image under a folder (sorted, hidden files skipped).

    Yields ``Frame.rgb`` (H, W, 3) RGB, uint8 (uint16 for 16-bit PNG / TIFF), alpha set
    aside and grey expanded, with ``Frame.image`` carrying what the sink writes back (EXIF,
    ICC, XMP, alpha, grey; io/images.py): one frame per readable image, every frame of an
    animated GIF / WebP; ``Frame.name`` is the path relative to the root. Unreadable
    images in a folder are skipped and listed in ``skipped``; a single unreadable image
    raises InputError. ``info.frames`` is the number of images; sizes may differ per frame."""

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
        """(H, W, 3) uint8 RGB (display orientation), or None. Path-safe: the bytes are read by
        Python (any file name, non-UTF-8 too) and only from a regular file (a FIFO, device or
        socket is never opened: it could block forever), then decoded from memory
        (io/images.py: a truncated file is refused); images over the pixel budget
        (psenet_stream.MAX_IMAGE_PIXELS) are refused by the decoder."""
        return ImageSource.read_reason(path)[0]

    @staticmethod
    def read_reason(path: Path) -> tuple[np.ndarray | None, str]:
        """``read``, and why it returned None."""
        decoded, why = ImageSource.read_decoded(path)
        if decoded is None:
            return None, why
        from psenet_stream.io.images import _to8

        return _to8(decoded.frames[0]), ""

    @staticmethod
    def read_decoded(path: Path):
        """(io.images.Decoded, "") -- every frame at its own bit depth, with the metadata --
        or (None, why)."""
        from psenet_stream.guard import NotRegularFile, read_regular
        from psenet_stream.io.images import ImageDecodeError, decode

        try:
            data = read_regular(path)  # never blocks on a FIFO, device or socket
        except NotRegularFile:
            return None, "not a regular file (a pipe, device or socket)"
        except OSError as e:
            return None, f"cannot be opened ({e.strerror})"
        try:
            return decode(data), ""
        except ImageDecodeError as e:
            return None, str(e)

    def __iter__(self) -> Iterator[Frame]:
        n = 0
        for path in self.paths:
            decoded, why = self.read_decoded(path)
            if decoded is None:
                if self.single:
                    raise InputError(
                        f"cannot read image {path}: {why}",
                        "pass a regular image file (jpg/png/bmp/tiff/webp); for a larger image raise PSENET_STREAM_MAX_IMAGE_PIXELS"
                        if "megapixels" in why
                        else "pass a complete, regular image file (jpg/png/bmp/tiff/webp); re-export or copy it again if it was cut short",
                    )
                log.warning("warning: skipping image %s: %s", path, why)
                self.skipped.append(path)
                continue
            name = str(path.relative_to(self.root))
            for k, rgb in enumerate(decoded.frames):  # an animation: every frame
                yield Frame(rgb=rgb, index=n, name=name, image=(decoded.meta, k))
                n += 1

    def close(self) -> None:
        pass


def open_source(spec: str | Path, **opts: Any) -> Source:
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

    return VideoFileSource(p, **{k: v for k, v in opts.items() if k in ("thread_type", "timeout_s", "maps", "high_bit_depth")})
