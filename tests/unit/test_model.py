"""The network is the official one: size, checkpoint loading, and an independent forward."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from psenet_stream.model import PSENet, count_parameters
from psenet_stream.ops import apply_gamma
from psenet_stream.weights_io import load_model, read_official_checkpoint


def test_parameter_count_is_the_papers():
    assert count_parameters(PSENet()) == 15_251


@pytest.mark.parametrize("hw", [(1, 1), (2, 2), (5, 7), (321, 241), (64, 64)])
def test_any_input_size(hw):
    m = PSENet().eval()
    h, w = hw
    if min(h, w) < 5:  # reflect padding needs a side of at least 2 at quarter resolution
        with pytest.raises(RuntimeError):
            m(torch.rand(1, 3, h, w))
        return
    y, g = m(torch.rand(2, 3, h, w))
    assert y.shape == g.shape == (2, 3, h, w)


@pytest.mark.shared
def test_official_checkpoints_load_strictly(official_checkpoints, tmp_path):
    from psenet_stream.weights_io import import_official

    for name, path in official_checkpoints.items():
        sd, _ = read_official_checkpoint(path)
        assert len(sd) == 62 and sum(v.numel() for v in sd.values()) == 15_251
        PSENet().load_state_dict(sd, strict=True)
        out = tmp_path / f"{name}.pt"
        import_official(path, out)
        model, meta = load_model(out)  # weights_only=True inside
        assert meta["imported_from"] == f"{name}.pth"
        for k, v in model.state_dict().items():
            assert torch.equal(v, sd[k])


# --- an independent re-statement of the official forward pass (the paper, Sec. 3, and the official code) ----


def _block(x, sd, name, stride, se, residual):
    p = lambda k: sd[f"{name}.conv.{k}"]  # noqa: E731
    y = F.leaky_relu(F.conv2d(x, p("0.weight"), p("0.bias")), 0.01)
    y = F.conv2d(F.pad(y, (1, 1, 1, 1), mode="reflect"), p("2.weight"), p("2.bias"), stride=stride, groups=y.shape[1])
    if se:
        s = F.adaptive_avg_pool2d(y, 1)
        s = F.conv2d(F.relu(F.conv2d(s, p("3.fc.0.weight"), p("3.fc.0.bias"))), p("3.fc.2.weight"), p("3.fc.2.bias"))
        y = y * s
    y = F.conv2d(F.leaky_relu(y, 0.01), p("5.weight"), p("5.bias"))
    return x + y if residual else y


def _reference_forward(x, sd):
    x1 = _block(x, sd, "first_conv", 1, True, True)
    d = _block(_block(x1, sd, "conv1", 2, False, False), sd, "conv2", 1, False, True)
    r = _block(_block(_block(d, sd, "conv3", 2, False, False), sd, "conv5", 1, False, True), sd, "conv6", 1, False, False)
    r = F.interpolate(r, size=d.shape[-2:], mode="bilinear", align_corners=True)
    r = _block(_block(torch.cat([d, r], 1), sd, "conv7", 1, False, False), sd, "conv8", 1, False, False)
    r = F.interpolate(r, size=x.shape[-2:], mode="bilinear", align_corners=True)
    g = (_block(torch.cat([x1, r], 1), sd, "last_conv", 1, True, False) + 1).abs()
    return 1 - (1 - x) ** g, g


@pytest.mark.shared
def test_forward_matches_independent_restatement_on_a_real_photo(sice_weights):
    skd = pytest.importorskip("skimage.data")
    img = skd.astronaut()[::2, ::2][:255, :191]  # a real photo, odd size
    x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float() / 255
    model, _ = load_model(sice_weights)
    with torch.no_grad():
        y, g = model(x)
        y_ref, g_ref = _reference_forward(x, model.state_dict())
    assert (g - g_ref).abs().max().item() <= 1e-5
    assert (y - y_ref).abs().max().item() <= 1e-5
    assert 0.2 < g.min().item() and g.max().item() < 10  # the sice model's plausible range


# --- properties of the gamma mapping ----------------------------------------------------

unit = st.floats(0.0, 1.0, allow_nan=False)
gam = st.floats(0.05, 20.0, allow_nan=False)


@given(x=unit)
def test_gamma_one_is_identity(x):
    assert apply_gamma(torch.tensor([x], dtype=torch.float64), torch.tensor([1.0], dtype=torch.float64)).item() == pytest.approx(x, abs=1e-12)


@given(x=unit, g1=gam, g2=gam)
def test_monotone_in_gamma(x, g1, g2):
    lo, hi = sorted([g1, g2])
    t = lambda v: torch.tensor([v], dtype=torch.float64)  # noqa: E731
    assert apply_gamma(t(x), t(lo)).item() <= apply_gamma(t(x), t(hi)).item() + 1e-12


@given(x1=unit, x2=unit, g=gam)
def test_monotone_in_input_and_in_range(x1, x2, g):
    lo, hi = sorted([x1, x2])
    t = lambda v: torch.tensor([v], dtype=torch.float64)  # noqa: E731
    a, b = apply_gamma(t(lo), t(g)).item(), apply_gamma(t(hi), t(g)).item()
    assert 0.0 <= a <= b + 1e-12 <= 1.0 + 1e-12


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_network_output_stays_in_unit_range(seed):
    torch.manual_seed(seed)
    m = PSENet().eval()
    with torch.no_grad():
        y, g = m(torch.rand(1, 3, 24, 40))
    assert (g >= 0).all() and (y >= 0).all() and (y <= 1).all()


def test_exposure_head_is_small_starts_as_a_no_op_and_round_trips(tmp_path):
    from psenet_stream.weights_io import load_model, save_weights

    base, with_head = PSENet().eval(), PSENet(head=True).eval()
    assert count_parameters(with_head) - count_parameters(base) == 259
    assert count_parameters(with_head) <= 1.05 * 15_251
    missing, unexpected = with_head.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("head.") for k in missing)
    x = torch.rand(2, 3, 40, 56)
    with torch.no_grad():
        assert torch.equal(with_head.gamma(x), base.gamma(x))  # the zero-initialised last layer
        with_head.head.fc2.bias.fill_(-0.5)  # a trained head: a global darkening offset
        assert torch.allclose(with_head.gamma(x), base.gamma(x) * torch.exp(torch.tensor(-0.5)))
    save_weights(tmp_path / "h.pt", with_head.state_dict(), {})
    loaded, _ = load_model(tmp_path / "h.pt")
    assert loaded.head is not None
    with torch.no_grad():
        assert torch.equal(loaded.gamma(x), with_head.gamma(x))


def test_exposure_head_features_see_highlights():
    from psenet_stream.model import ExposureHead

    h = ExposureHead()
    bright, dark = torch.full((1, 3, 8, 8), 0.995), torch.full((1, 3, 8, 8), 0.02)
    fb, fd = h.features(bright), h.features(dark)
    assert fb.shape == (1, ExposureHead.FEATURES)
    assert float(fb[0, 4:9].min()) == 1.0 and float(fd[0, 4:9].max()) == 0.0  # shares above 0.5 .. 0.99
    assert float(fd[0, 9:].min()) == 1.0 and float(fb[0, 9:].max()) == 0.0  # shares below 0.05 .. 0.3
