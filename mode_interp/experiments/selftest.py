"""``selftest``: a seconds-long experiment for checking a sweep's machinery (scheduling, caching,
failures, killed workers) without training anything.

Its result is a deterministic function of the spec: ``n`` draws of a standard normal from a generator
seeded with ``seed``, summed. ``fail=True`` raises inside the task; ``die_once`` (a file path) kills the
worker process the first time the task runs (it creates the file first), as a crashed or pre-empted
machine would; ``sleep`` seconds of waiting make a task long enough to interrupt.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import torch

from .._validate import check_float, check_int
from .records import Experiment, check_fields, register, spec_dict


@dataclass(frozen=True)
class SelfTest:
    seed: int = 0
    n: int = 1_000
    sleep: float = 0.0
    fail: bool = False
    die_once: str = ""

    def __post_init__(self):
        check_int("seed", self.seed, 0, None)
        check_int("n", self.n, 1, 10_000_000)
        check_float("sleep", self.sleep, 0.0, 3600.0)
        if not isinstance(self.fail, bool):
            raise TypeError(f"fail must be a bool, got {type(self.fail).__name__}")
        if not isinstance(self.die_once, str):
            raise TypeError(f"die_once must be a path string, got {type(self.die_once).__name__}")

    def to_dict(self) -> dict:
        return spec_dict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SelfTest":
        return cls(**check_fields(cls, dict(d), "selftest spec"))


def run(spec: SelfTest) -> tuple:
    if spec.die_once and not os.path.exists(spec.die_once):
        open(spec.die_once, "w").close()
        os._exit(17)                                  # the worker process dies mid-task
    time.sleep(spec.sleep)
    if spec.fail:
        raise RuntimeError(f"selftest task asked to fail (seed {spec.seed})")
    total = float(torch.randn(spec.n, generator=torch.Generator().manual_seed(spec.seed), dtype=torch.float64).sum())
    return {"sum": total, "n": spec.n}, {"computed_seconds": spec.sleep}


register(Experiment("selftest", SelfTest, run, doc="seconds-long checks of the sweep machinery"))
