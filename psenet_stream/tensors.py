"""``is_tensor`` without importing torch.

The host path (numpy frames, the ONNX backend) runs without torch; code shared with the
torch path asks whether a value is a tensor through this function, which never imports
torch: before torch is imported, nothing can be a tensor.
"""

from __future__ import annotations

import sys


def is_tensor(x: object) -> bool:
    """``torch.is_tensor(x)``, False without importing torch when torch is not loaded."""
    torch = sys.modules.get("torch")
    return torch is not None and torch.is_tensor(x)
