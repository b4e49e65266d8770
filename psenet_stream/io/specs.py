"""What an input or output spec is, from its text alone: one table of file extensions,
the live schemes, and the small parsers the sources and sinks share. No I/O beyond
``Path.is_dir`` / ``os.walk``, no av.

    spec                                  input kind        output kind
    "-"                                   raw (stdin)       raw (stdout)
    "/dev/video0", "lavfi:GRAPH"          live              -
    "rtsp://…", "rtmp://…", "srt://…"     live              live (publish)
    "preview:window", "preview:http"      -                 preview
    "photo.jpg" (EXTENSIONS kind image)   image             image
    "frame_%04d.png" (image sequence)     video             image sequence (numbered from 1)
    "folder/"                             folder            folder (of images)
    anything else                         video             video (a container by extension)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from psenet_stream.errors import UsageError


@dataclass(frozen=True)
class Extension:
    """What a file extension means: an image or a video container; for a video, whether a
    default output keeps the input's extension, and the encoder that container needs."""

    kind: Literal["image", "video"]
    keep_for_output: bool = True
    codec: str | None = None  # None: the default encoder (libx264)


#: The one extension table (lower case, with the dot).
EXTENSIONS: dict[str, Extension] = {
    # .gif and .webp may be animated: every frame is enhanced and written back with its timing (io/images.py)
    **{e: Extension("image") for e in (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")},
    # a .gif input is an image (an animation: io/images.py keeps its timing and loop); a video
    # written to .gif uses the gif encoder
    ".gif": Extension("image", codec="gif"),
    **{e: Extension("video") for e in (".mp4", ".mkv", ".mov", ".m4v", ".avi", ".ts", ".flv", ".mpg", ".mpeg", ".3gp")},
    ".webm": Extension("video", codec="libvpx-vp9"),
    ".ogv": Extension("video", codec="libtheora"),
    # readable, but a default output of these is written as .mp4
    **{e: Extension("video", keep_for_output=False) for e in (".mts", ".m2ts", ".wmv")},
}
IMAGE_EXTENSIONS = tuple(e for e, x in EXTENSIONS.items() if x.kind == "image")
VIDEO_EXTENSIONS = tuple(e for e, x in EXTENSIONS.items() if x.kind == "video")

LIVE_INPUT_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "tcp", "udp", "srt", "http", "https", "rtp")
LIVE_OUTPUT_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "srt", "udp", "tcp")
PREVIEW_PREFIX = "preview:"
PREVIEW_KINDS = ("window", "http")


def _scheme(spec: str) -> str:
    return spec.split("://", 1)[0].lower() if "://" in spec else ""


def is_live_spec(spec: str | Path) -> bool:
    """Devices, lavfi graphs and network URLs: inputs handled by io/live.py."""
    s = str(spec)
    return s.startswith(("lavfi:", "/dev/video")) or _scheme(s) in LIVE_INPUT_SCHEMES


def is_live_output(spec: str | Path) -> bool:
    """A URL to publish to (io/rtsp_out.py)."""
    return _scheme(str(spec)) in LIVE_OUTPUT_SCHEMES


def is_preview_spec(spec: str | Path) -> bool:
    """``preview:window`` or ``preview:http``: a live view rather than a file."""
    return str(spec).startswith(PREVIEW_PREFIX)


def extension(path: str | Path) -> Extension | None:
    return EXTENSIONS.get(Path(path).suffix.lower())


def is_image_path(path: str | Path) -> bool:
    x = extension(path)
    return x is not None and x.kind == "image"


def is_video_path(path: str | Path) -> bool:
    x = extension(path)
    return x is not None and x.kind == "video"


def is_sequence_pattern(spec: str | Path) -> bool:
    """``frame_%04d.png``: an image sequence (a printf-style number in the name, as ffmpeg's
    image2 muxer and demuxer take it), read or written in order, numbered from 1."""
    import re

    return bool(re.search(r"%0?\d*d", Path(str(spec)).name))


def input_kind(spec: str) -> Literal["raw", "live", "folder", "image", "video"]:
    """The kind of an input spec (see the module table)."""
    if spec == "-":
        return "raw"
    if is_live_spec(spec):
        return "live"
    p = Path(spec)
    if p.is_dir():
        return "folder"
    if is_image_path(p) and not is_sequence_pattern(p):
        return "image"
    return "video"


def list_images(folder: Path, exclude: Path | None = None) -> list[Path]:
    """Images under ``folder``, recursively, sorted per directory; hidden files and folders
    and ``exclude`` (an output folder inside the input folder) are skipped."""
    out = []
    skip = exclude.resolve() if exclude is not None else None
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (skip is None or (Path(root) / d).resolve() != skip))
        for f in sorted(files):
            if not f.startswith(".") and is_image_path(f):
                out.append(Path(root) / f)
    return out


def parse_size(size: str | tuple[int, int] | list[int]) -> tuple[int, int]:
    """'640x480' or (640, 480) -> (640, 480) as (width, height); both positive."""
    try:
        w, h = (int(v) for v in (size if isinstance(size, (tuple, list)) else str(size).lower().split("x")))
        if w <= 0 or h <= 0:
            raise ValueError
    except (ValueError, TypeError):
        raise UsageError(f"bad frame size {size!r}", "use --size WIDTHxHEIGHT, e.g. --size 640x480") from None
    return w, h
