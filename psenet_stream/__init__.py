"""psenet-stream: real-time exposure correction for video with PSENet (WACV 2023)."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["Enhancer", "PSENet", "__version__"]


def __getattr__(name):  # lazy: `import psenet_stream` stays cheap and GPU-free
    if name == "Enhancer":
        from psenet_stream.enhancer import Enhancer

        return Enhancer
    if name == "PSENet":
        from psenet_stream.model import PSENet

        return PSENet
    raise AttributeError(name)
