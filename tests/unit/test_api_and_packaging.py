"""The Python API's surface and the packaging/documentation promises (issue 11, "Python API",
"Packaging and docs"): CPU uint8 tensors, type hints and docstrings, py.typed, LICENSE and
pyproject, every environment variable in --help and README, shell completion."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from psenet_stream import Enhancer
from psenet_stream.backends.cpu import CpuBackend
from psenet_stream.errors import UsageError
from psenet_stream.model import PSENet

ROOT = Path(__file__).resolve().parents[2]
tomllib = pytest.importorskip("tomllib")  # Python 3.11+


@pytest.fixture(scope="module")
def enh():
    torch.manual_seed(0)
    return Enhancer(CpuBackend(PSENet(), {"path": "random-init"}), infer_size=32)


def _frames(n=3, h=40, w=56):
    return np.random.default_rng(0).integers(0, 120, (n, h, w, 3), dtype=np.uint8)


def test_cpu_uint8_tensors_are_accepted(enh):
    frames = _frames()
    enh.reset()
    want = enh(frames)
    enh.reset()
    got = enh(torch.from_numpy(frames))
    assert torch.is_tensor(got) and got.dtype == torch.uint8 and tuple(got.shape) == frames.shape
    assert np.array_equal(got.numpy(), want)
    enh.reset()
    one = enh(torch.from_numpy(frames[0]))  # (H, W, 3) too
    assert tuple(one.shape) == frames.shape[1:] and np.array_equal(one.numpy(), want[0])
    # a non-contiguous view (e.g. a channel flip) works as well
    enh.reset()
    assert enh(torch.from_numpy(frames).flip(-1)).shape == frames.shape


def test_a_wrong_tensor_names_the_shapes_accepted(enh):
    with pytest.raises(UsageError) as e:
        enh(torch.zeros((2, 40, 56, 4), dtype=torch.uint8))
    assert "(N, 3, H, W)" in str(e.value)
    with pytest.raises(UsageError) as e:
        enh.enhance_frames(torch.zeros((2, 40, 56), dtype=torch.uint8))
    assert "(N, H, W, 3)" in str(e.value)


def test_public_surface_is_typed_and_documented():
    call = Enhancer.__call__
    doc = inspect.getdoc(call) or ""
    assert "(N, H, W, 3)" in doc and "uint8" in doc and "CPU" in doc
    hints = inspect.signature(call)
    assert hints.return_annotation is not inspect.Signature.empty
    assert all(p.annotation is not inspect.Parameter.empty for n, p in hints.parameters.items() if n != "self")
    for name in ("from_pretrained", "enhance_frames", "enhance_tensor", "enhance_yuv420p", "predict", "apply"):
        f = getattr(Enhancer, name)
        assert inspect.getdoc(f), name
        assert inspect.signature(f).return_annotation is not inspect.Signature.empty, name
    import psenet_stream as ps

    for f in (ps.open_source, ps.open_sink, ps.run_to_sinks, ps.run, ps.finish):
        sig = inspect.signature(f)
        assert sig.return_annotation is not inspect.Signature.empty, f.__name__
        assert inspect.getdoc(f), f.__name__
    assert (ROOT / "psenet_stream" / "py.typed").is_file()
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "py.typed" in data["tool"]["setuptools"]["package-data"]["psenet_stream"]


def test_license_matches_pyproject():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert data["license"] == {"text": "MIT"}
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    classifiers = data["classifiers"]
    assert "License :: OSI Approved :: MIT License" in classifiers and "Typing :: Typed" in classifiers
    assert any(c.startswith("Topic :: Multimedia :: Video") for c in classifiers)


def test_project_urls_are_in_the_installed_metadata():
    """The paper and the official PSENet code (the addresses the paper and its repository
    give: arXiv 2210.00712, github.com/VinAIResearch/PSENet-Image-Enhancement)."""
    from importlib.metadata import metadata

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]
    assert declared == {"Paper": "https://arxiv.org/abs/2210.00712", "PSENet official code": "https://github.com/VinAIResearch/PSENet-Image-Enhancement"}
    installed = dict(u.split(", ", 1) for u in metadata("psenet-stream").get_all("Project-URL") or [])
    assert installed == declared, "reinstall (make install) after changing pyproject.toml"


def _env_vars() -> set[str]:
    names: set[str] = set()
    for p in (ROOT / "psenet_stream").rglob("*.py"):
        names.update(re.findall(r"\bPSENET_[A-Z_]*[A-Z]\b", p.read_text()))
    return names


def test_every_environment_variable_is_documented():
    from psenet_stream.cli import cli

    names = _env_vars()
    assert {"PSENET_STREAM_WEIGHTS", "PSENET_STREAM_CACHE", "PSENET_DEBUG"} <= names
    help_text = CliRunner().invoke(cli, ["--help"]).output
    readme = (ROOT / "README.md").read_text()
    for n in names:
        assert n in readme, n
        if n != "PSENET_PREVIEW_KEYS":  # a test hook: README only
            assert n in help_text, n


def test_shell_completion_works_and_is_documented():
    assert "_PSENET_STREAM_COMPLETE=bash_source" in (ROOT / "README.md").read_text()
    env = dict(os.environ, _PSENET_STREAM_COMPLETE="bash_source", PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-c", "from psenet_stream.cli import main; main()"], env=env, capture_output=True, timeout=60, check=False)
    assert b"_psenet_stream_completion" in r.stdout, r.stderr.decode()
    env = dict(os.environ, _PSENET_STREAM_COMPLETE="bash_complete", COMP_WORDS="psenet-stream doc", COMP_CWORD="1", PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-c", "from psenet_stream.cli import main; main()"], env=env, capture_output=True, timeout=60, check=False)
    assert b"doctor" in r.stdout, r.stderr.decode()
