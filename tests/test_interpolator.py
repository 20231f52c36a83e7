"""build_interpolator: the one factory from settings to a runnable network."""
import re
from pathlib import Path

import pytest
import torch

from vsugsp.interpolator import Interpolator, build_interpolator
from vsugsp.preset import load_preset

ROOT = Path(__file__).resolve().parents[1]


def _pair(h=48, w=64):
    g = torch.Generator().manual_seed(1)
    return torch.rand(1, 3, h, w, generator=g), torch.rand(1, 3, h, w, generator=g)


def test_settings_become_the_objects_a_pass_needs(net):
    it = build_interpolator(load_preset("fast", device="cpu", precision="fp32"), net)
    assert isinstance(it, Interpolator) and it.device.type == "cpu" and it.precision == "fp32"
    assert it.backend.name == "tiles" and it.max_density == [0.5, 0.4, 0.3]
    assert it.flow_prior in ("dis-fast", "none")  # none only where OpenCV is missing
    assert it.scale_for(576) == 1.0 and it.scale_for(577) == 0.5
    assert it.net is not net  # the caller's module is copied, never moved or cast


def test_modes_ensemble_and_caps_reach_the_network(net):
    a, b = _pair()
    base = dict(device="cpu", precision="fp32", flow_prior="none", refine=["flow", "fusion", "rgb"])
    dense = build_interpolator(load_preset("balanced", mode="dense", **base), net)
    img, macs, dense_macs = dense(a, b, 0.5)
    assert img.shape == (1, 3, 48, 64) and macs == dense_macs
    two = build_interpolator(load_preset("balanced", mode="dense", ensemble=2, **base), net)
    img2, macs2, _ = two(a, b, 0.5)
    assert macs2 == 2 * macs and not torch.equal(img, img2)
    capped = build_interpolator(load_preset("balanced", max_density=0.1, threshold=0.0, **base), net)
    _, m_capped, d_capped = capped(a, b, 0.5)
    assert d_capped == dense_macs and m_capped < dense_macs


def test_the_engine_serves_exactly_what_the_interpolator_computes(net):
    from fractions import Fraction

    from vsugsp.engine import Engine

    a, b = _pair()
    it = build_interpolator(load_preset("balanced", device="cpu", precision="fp32", flow_prior="none"), net)
    frame = Engine(it).interpolate(0, Fraction(1, 2), a[0].numpy(), b[0].numpy(), (Fraction(1, 2),))
    direct, _, _ = it(a, b, torch.tensor([0.5]))
    assert torch.equal(torch.from_numpy(frame), direct[0].float())


def test_errors_name_the_setting(net, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="device 'cuda' was requested but CUDA is not available"):
        build_interpolator(load_preset("balanced", device="cuda"), net)
    with pytest.raises(ValueError, match="backend='cuda' needs device='cuda'"):
        build_interpolator(load_preset("balanced", device="cpu", backend="cuda"), net)
    with pytest.raises(ValueError, match="weights name, a .pt path or a UGSPNet"):
        build_interpolator(load_preset("balanced", device="cpu"), model=42)


def test_the_readme_example_runs():
    text = (ROOT / "README.md").read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S) if "build_interpolator" in b]
    assert len(blocks) == 1
    scope: dict = {}
    exec(blocks[0].replace("360, 640", "36, 64"), scope)  # a smaller frame, the same calls
    image, macs, dense = scope["image"], scope["macs"], scope["dense_macs"]
    assert image.shape == (1, 3, 36, 64) and 0 < macs <= dense
