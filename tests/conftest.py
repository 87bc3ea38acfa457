import pytest
import torch

import mode_interp as mi


@pytest.fixture(scope="session")
def schedule():
    return mi.linear_schedule()


@pytest.fixture(scope="session")
def mixture():
    return mi.mixture_1d()


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)
