"""Run-time settings read from the environment: FAST mode and the torch thread count.

``MODE_INTERP_FAST=1`` (set by CI and by ``make test``) makes chapters pick their reduced sizes.
``MODE_INTERP_THREADS=N`` sets torch's intra-op threads; give each parallel worker one thread, since two
torch threads collapse when another process shares the 2 cores (measured on the project's 2-core machines).
"""

from __future__ import annotations

import os

import torch


def fast_mode() -> bool:
    """True when the environment asks for the reduced (CI) scale: MODE_INTERP_FAST=1."""
    value = os.environ.get("MODE_INTERP_FAST", "0")
    if value not in ("0", "1", ""):
        raise ValueError(f"MODE_INTERP_FAST must be '0' or '1', got {value!r}")
    return value == "1"


def configure_threads() -> int:
    """Apply MODE_INTERP_THREADS (if set) to torch and return the thread count in use."""
    value = os.environ.get("MODE_INTERP_THREADS")
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"MODE_INTERP_THREADS must be a positive integer, got {value!r}")
        torch.set_num_threads(int(value))
    return torch.get_num_threads()
