"""Fixtures shared by the test modules."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def net():
    """The ``small`` network with random weights (seed 0), in eval mode: one per test module."""
    import torch

    from vsugsp.model import ModelConfig, UGSPNet

    torch.manual_seed(0)
    return UGSPNet(ModelConfig(width="small")).eval()
