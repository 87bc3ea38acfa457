import os

import pytest
import torch

import mode_interp as mi

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs pytest-xdist processes side by side: one torch thread each (two threads per process
    # collapse when another process shares the cores), and the chapters nbmake runs inherit the setting.
    os.environ.setdefault("MODE_INTERP_THREADS", "1")
    torch.set_num_threads(int(os.environ["MODE_INTERP_THREADS"]))


@pytest.fixture(scope="session")
def schedule():
    return mi.linear_schedule()


@pytest.fixture(scope="session")
def mixture():
    return mi.mixture_1d()


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)
