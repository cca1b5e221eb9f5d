"""Shared fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture
def one_torch_thread():
    """Tiny networks: one thread avoids OpenMP spin-waits when other jobs share the 2 cores (~7x faster here)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
