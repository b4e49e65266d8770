"""Shared fixtures. Tests that need ../shared (official checkpoints) skip when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
def _find_shared() -> Path:
    """../shared next to the checkout; a clone elsewhere (fresh-check, CI) also finds /work/shared."""
    if os.environ.get("PSENET_SHARED"):
        return Path(os.environ["PSENET_SHARED"])
    for cand in (ROOT.parent / "shared", Path("/work/shared")):
        if (cand / "peers" / "psenet").is_dir():
            return cand
    return ROOT.parent / "shared"


SHARED = _find_shared()
os.environ.setdefault("PSENET_SHARED", str(SHARED))  # the product's own lookup (eval --compare) too
PEERS = SHARED / "peers" / "psenet"


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One torch/OpenCV thread in the test process: on a shared 2-core machine torch with two
    threads was measured 10-25x slower than with one (docs/EVALUATION.md)."""
    import cv2
    import torch

    n, m = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    yield
    torch.set_num_threads(n)
    cv2.setNumThreads(m)


@pytest.fixture(scope="session")
def official_checkpoints() -> dict[str, Path]:
    found = {n: PEERS / f"{n}.pth" for n in ("sice", "afifi") if (PEERS / f"{n}.pth").is_file()}
    if len(found) < 2:
        pytest.skip(f"official checkpoints not found under {PEERS}")
    return found


@pytest.fixture(scope="session")
def sice_weights(official_checkpoints, tmp_path_factory) -> Path:
    """The official sice checkpoint imported into the project's format (never committed)."""
    from psenet_stream.weights_io import import_official

    out = tmp_path_factory.mktemp("weights") / "sice.pt"
    import_official(official_checkpoints["sice"], out)
    return out
