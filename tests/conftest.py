"""Shared pytest setup: seeded generators and small helpers used across the test tree."""
import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
