"""Child process of run.py: sample n points keeping the last-10-step x0_hat window; print VmHWM (KiB)
before and after, read from /proc/self/status (a fresh process, so the peak is this run's own)."""
import re
import sys

import torch

import mode_interp as mi
from mode_interp.models import ToyMLP


def vm_hwm_kib() -> int:
    return int(re.search(r"VmHWM:\s+(\d+)", open("/proc/self/status").read()).group(1))


n, T = int(sys.argv[1]), int(sys.argv[2])
before = vm_hwm_kib()
r = mi.sample(ToyMLP(2).eps_for_sampling(), n, 2, mi.linear_schedule(T=T), torch.Generator().manual_seed(0),
              window=10)
assert r.x0_hat.shape == (10, n, 2)
print(before, vm_hwm_kib())
