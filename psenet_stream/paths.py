"""Where psenet-stream keeps things on disk, and the environment variables that move them.

    PSENET_STREAM_CACHE     the cache root (default: $XDG_CACHE_HOME/psenet-stream, or
                            ~/.cache/psenet-stream): exported ONNX models, engines of an
                            installed package, and the fetched data (<cache>/data)
    PSENET_STREAM_ENGINES   where TensorRT engines are written and looked up (default:
                            engines/ of a source checkout when writable, else <cache>/engines)
    PSENET_STREAM_WEIGHTS   the weight file used when none is given (default: the shipped one)

Nothing here creates a directory; callers create what they write into.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_CACHE = "PSENET_STREAM_CACHE"
ENV_ENGINES = "PSENET_STREAM_ENGINES"
ENV_WEIGHTS = "PSENET_STREAM_WEIGHTS"

PACKAGE_DIR = Path(__file__).resolve().parent
CHECKOUT_DIR = PACKAGE_DIR.parent  # the repository root when running from a source checkout
DEFAULT_WEIGHTS = PACKAGE_DIR / "weights" / "default.pt"


def cache_dir() -> Path:
    """$PSENET_STREAM_CACHE, else $XDG_CACHE_HOME/psenet-stream, else ~/.cache/psenet-stream."""
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(xdg) / "psenet-stream"


def data_dir() -> Path:
    """Where ``psenet-stream data`` builds the photo and clip folders: <cache>/data."""
    return cache_dir() / "data"


def clips_dir() -> Path:
    """The fetched real video clips (``bench`` and the demo read them): <cache>/data/clips."""
    return data_dir() / "clips"


def engine_dir() -> Path:
    """$PSENET_STREAM_ENGINES, else engines/ of a source checkout (when writable), else <cache>/engines."""
    env = os.environ.get(ENV_ENGINES)
    if env:
        return Path(env).expanduser()
    repo = CHECKOUT_DIR / "engines"
    if repo.is_dir() and os.access(repo, os.W_OK):
        return repo
    return cache_dir() / "engines"


def default_weights_path() -> Path:
    """$PSENET_STREAM_WEIGHTS, else the weights shipped in the package."""
    return Path(os.environ.get(ENV_WEIGHTS) or DEFAULT_WEIGHTS)


def trainer_dir() -> Path | None:
    """The trainer's folder (train/) of a source checkout, or None in an installed package.

    The trainer is not part of the wheel: it is training code with its own dependencies,
    kept next to the package in the repository and imported from there by the ``train``
    and ``data`` commands (see ``commands/train.py``).
    """
    d = CHECKOUT_DIR / "train"
    return d if (d / "__init__.py").is_file() else None
