"""Run-time settings read from the environment: FAST mode and the torch thread count.

``MODE_INTERP_FAST=1`` (set by CI and by ``make test``) makes chapters pick their reduced sizes.
``MODE_INTERP_THREADS=N`` sets torch's intra-op threads; give each parallel worker one thread, since two
torch threads collapse when another process shares the 2 cores (measured on the project's 2-core machines).

:func:`restore_malloc` undoes what Dask's nanny does to its workers' allocator (``MALLOC_TRIM_THRESHOLD_``,
which fixes glibc's mmap threshold at 128 KiB, so that every large torch temporary is a fresh ``mmap`` whose
pages the kernel zeroes on first touch): the 2-D toy training step at batch 10,000 ran 2.4x slower with it
(100 vs 242 ms on one core here), almost all of it in the kernel.
"""

from __future__ import annotations

import ctypes
import os
import sys

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


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3       # glibc's mallopt() parameters (malloc.h)
_MMAP_THRESHOLD_MAX = 32 * 2 ** 20                  # glibc's largest mmap threshold on 64-bit Linux


def restore_malloc() -> bool:
    """Where ``MALLOC_TRIM_THRESHOLD_`` is set (Dask's nanny sets it to 64 KiB in every worker it spawns),
    raise glibc's mmap and trim thresholds back to 32 / 64 MiB, so that torch's large temporaries are
    reused from the heap instead of being mapped, zeroed and unmapped at every step (module docstring).
    Returns whether anything was changed: False without the variable, off Linux, or without glibc."""
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)
                    and libc.mallopt(_M_TRIM_THRESHOLD, 2 * _MMAP_THRESHOLD_MAX))
    except (OSError, AttributeError):       # not glibc (musl, ...): nothing to undo
        return False
