"""The contract between sources, the pipeline and sinks.

A source yields ``Frame`` objects in display order; a sink consumes them. Stages are
passive: the pipeline (psenet_stream/pipeline.py) is the one place that adds threads and
bounded queues.

Optional abilities are declared, not probed: a source that can hand out decoded yuv420p
instead of RGB implements ``FormatSelectable``; a sink that can encode yuv420p frames as
they are sets ``accepts_yuv = True`` (``YuvSink``); a sink with a temporary output that
must be committed or aborted implements ``Committable`` (``io.sinks.AtomicFileSink``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal, Protocol, runtime_checkable

import numpy as np


@dataclass
class Frame:
    rgb: np.ndarray | None  # (H, W, 3) uint8 RGB (uint16 for 10/12-bit and HDR video), coded orientation (not rotated); None when ``yuv`` is set
    index: int  # 0-based position in the source (after drops, the original index)
    pts: int | None = None  # in time_base units, from the decoder; None for images / raw input
    time_base: Fraction | None = None
    t_capture: float = field(default_factory=time.perf_counter)  # when the source produced it
    rotation: int = 0  # display rotation, degrees counter-clockwise (phone clips)
    name: str | None = None  # for images: the source file name
    # yuv mode (a file source feeding a GPU backend and a video file sink): the decoded
    # picture as (H * 3 / 2, W) uint8 yuv420p, with its colour matrix tags, and rgb None
    yuv: np.ndarray | None = None
    colorspace: int = 2  # AVColorSpace (2 = unspecified: BT.601, as swscale)
    full_range: bool = False
    # images: (io.images.ImageMeta, the frame's number in the file) -- EXIF, ICC, XMP, alpha,
    # grey, bit depth and animation, for the image sink to write back
    image: tuple | None = None

    @property
    def hw(self) -> tuple[int, int]:
        """(height, width) of the picture, in either mode."""
        if self.yuv is not None:
            return self.yuv.shape[0] * 2 // 3, self.yuv.shape[1]
        return self.rgb.shape[0], self.rgb.shape[1]


@dataclass
class StreamInfo:
    width: int
    height: int
    fps: Fraction | None = None  # average rate, if known
    time_base: Fraction | None = None
    frames: int | None = None  # estimate, for progress bars; None when unknown / live
    live: bool = False  # live sources drop the oldest frame instead of blocking
    rotation: int = 0
    codec: str | None = None
    pix_fmt: str | None = None
    color: dict = field(default_factory=dict)  # color_range / colorspace / primaries / trc tags
    hdr: dict = field(default_factory=dict)  # mastering display / content light level (io/hdr.read_side_data)
    description: str = ""  # safe to print: credentials masked


FrameFormat = Literal["rgb24", "yuv420p"]


@runtime_checkable
class Source(Protocol):
    """Frames in display order: ``Frame.rgb`` (H, W, 3) uint8 RGB in [0, 255], or ``Frame.yuv``
    (H * 3 / 2, W) uint8 yuv420p when the source was asked for that format."""

    info: StreamInfo
    dropped: int  # frames dropped to keep latency bounded (live sources)

    def __iter__(self) -> Iterator[Frame]: ...

    def close(self) -> None: ...


@runtime_checkable
class FormatSelectable(Protocol):
    """A source that can yield another frame format than RGB (a video file: decoded yuv420p)."""

    def set_frame_format(self, fmt: FrameFormat) -> None:
        """Frames decoded from now on come in ``fmt`` where the stream allows (others stay RGB)."""
        ...


@runtime_checkable
class Sink(Protocol):
    def write(self, frame: Frame, enhanced: np.ndarray) -> None:
        """``enhanced``: (H, W, 3) uint8 RGB, or (H * 3 / 2, W) uint8 yuv420p for a ``YuvSink``."""
        ...

    def close(self) -> None: ...  # finish; the output is complete only after close()


@runtime_checkable
class YuvSink(Protocol):
    """A sink that says whether ``write`` also takes yuv420p frames (in the frame's matrix)."""

    accepts_yuv: bool


@runtime_checkable
class Committable(Protocol):
    """A sink writing a temporary output: ``close()`` commits it under its final name,
    ``abort(keep_partial)`` finalizes what was written as ``.partial`` or deletes it;
    ``kept`` is the path that exists afterwards (None: nothing)."""

    kept: object

    def close(self) -> None: ...

    def abort(self, keep_partial: bool = False) -> None: ...
