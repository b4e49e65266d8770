"""Shared fixtures of the GPU tests."""

from __future__ import annotations

import pytest
import torch

from psenet_stream.model import PSENet
from psenet_stream.weights_io import load_model, save_weights


@pytest.fixture(scope="module")
def model_meta(tmp_path_factory):
    """A random network with a bias that makes gamma differ from 1, as a weight file."""
    torch.manual_seed(3)
    m = PSENet()
    with torch.no_grad():
        m.last_conv.conv[-1].bias.add_(0.3)
    path = tmp_path_factory.mktemp("w") / "w.pt"
    save_weights(path, m.state_dict(), {"source": "test"})
    return load_model(path)
