"""psenet-stream: real-time exposure correction for video with PSENet (WACV 2023).

    >>> import psenet_stream as ps
    >>> enh = ps.Enhancer.from_pretrained()                    # (H, W, 3) uint8 RGB in, same out
    >>> with ps.open_source("clip.mp4") as src:                # a Source of Frames
    ...     sink = ps.open_sink("clip_enhanced.mp4", src.info, inputs=["clip.mp4"])
    ...     stats, _ = ps.run_to_sinks(src, enh, [sink])        # threads, queues, commit at the end

Everything is imported on first use, so ``import psenet_stream`` stays cheap and GPU-free.
The layout is described in docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import importlib
import os

__version__ = "0.1.0"

# The largest image any command decodes, in pixels (OpenCV reads this when it loads, so it is
# set before anything imports cv2). 100 megapixels is about 300 MB as 8-bit RGB and a few GB
# in flight through the enhancer; a larger image fails with a clear error instead of
# exhausting memory. Set PSENET_STREAM_MAX_IMAGE_PIXELS (or OpenCV's own variable) to change it.
MAX_IMAGE_PIXELS = int(os.environ.get("PSENET_STREAM_MAX_IMAGE_PIXELS", "100000000"))
if "PSENET_STREAM_MAX_IMAGE_PIXELS" in os.environ:  # ours, when given, wins over OpenCV's own
    os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] = str(MAX_IMAGE_PIXELS)
else:
    os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_IMAGE_PIXELS))

_LAZY = {
    "Enhancer": "psenet_stream.enhancer",
    "PSENet": "psenet_stream.model",
    "Frame": "psenet_stream.io.frames",
    "open_source": "psenet_stream.io.sources",
    "open_sink": "psenet_stream.io.sinks",
    "run": "psenet_stream.pipeline",
    "run_to_sinks": "psenet_stream.pipeline",
    "finish": "psenet_stream.pipeline",
    "PsenetError": "psenet_stream.errors",
    "InputError": "psenet_stream.errors",
    "OutputError": "psenet_stream.errors",
    "BackendError": "psenet_stream.errors",
}

__all__ = [
    "BackendError",
    "Enhancer",
    "Frame",
    "InputError",
    "OutputError",
    "PSENet",
    "PsenetError",
    "__version__",
    "finish",
    "open_sink",
    "open_source",
    "run",
    "run_to_sinks",
]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'psenet_stream' has no attribute {name!r}")
