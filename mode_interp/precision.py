"""Numerical precision and compilation of the networks' matrix products, with safe fallbacks.

``precision="bfloat16"`` runs the networks' large matrix products under ``torch.autocast`` in bfloat16
(8 bits of mantissa, float32 accumulation), on hardware that computes them natively (AVX512-BF16 / AMX
CPUs, CUDA GPUs of compute capability >= 8). In the toy MLP these are the blocks' width x width products;
its input layer (whose input is x_t), its output layer (eps_hat), every LayerNorm, the residual stream and
the time embedding stay float32. In the U-Net the inner convolutions and the blocks' time projections run
in bfloat16 (and so do their residual sums, as under any autocast); its first and last convolutions, its
time MLP and every GroupNorm stay float32. Everything the sampler does with eps_hat (x0_hat, the
posterior step, Hal) and the schedule stays float32 / float64. ``precision="float32"`` is the reference.

``compile=True`` wraps a network's per-chunk forward in :func:`torch.compile` (inductor, fused kernels).

Neither option can crash a run: where bfloat16 is not native (it would be emulated, slower than float32)
or ``torch.compile`` fails (no C++ compiler, an unsupported platform), the call falls back to float32 /
eager with one clear warning, and the result records what actually ran.
"""

from __future__ import annotations

import contextlib
import functools
import warnings

import torch

from ._validate import check_device

PRECISIONS = ("float32", "bfloat16", "auto")
_EMULATE = [False]             # allow_emulated(): bfloat16 runs even where it is not native
DEFAULT_SAMPLING = "auto"      # bfloat16 where it is native, float32 elsewhere (no warning)
_WARNED: set = set()


def warn_once(key: str, message: str) -> None:
    """A ``RuntimeWarning`` the first time ``key`` is seen in this process."""
    if key not in _WARNED:
        _WARNED.add(key)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def check_precision(precision) -> str:
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
    return precision


def check_compile(compile) -> bool:
    if not isinstance(compile, bool):
        raise ValueError(f"compile must be True or False, got {compile!r}")
    return compile


@functools.lru_cache(maxsize=None)
def bf16_native(device_type: str = "cpu") -> bool:
    """Whether ``device_type`` computes bfloat16 matrix products natively: a CPU with AVX512-BF16 or AMX
    (an AVX-512 CPU without them only emulates bfloat16, several times slower), a CUDA GPU with native
    bfloat16 (compute capability >= 8). Any other device type: False."""
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if device_type != "cpu":
        return False
    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    probes = [p for p in probes if callable(p)]
    if probes:
        return any(bool(p()) for p in probes)
    try:                               # a torch without the probes: look at the CPU flags
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve(precision, device="cpu") -> str:
    """The precision that will actually run: "float32" or "bfloat16". "auto" is bfloat16 where it is
    native on ``device`` and float32 elsewhere; "bfloat16" where it is not native falls back to float32
    with one warning."""
    precision = check_precision(precision)
    device_type = torch.device(check_device(device)).type
    if precision == "auto":
        return "bfloat16" if bf16_native(device_type) else "float32"
    if precision == "bfloat16" and not (bf16_native(device_type) or _EMULATE[0]):
        warn_once(f"bf16-{device_type}", f"precision='bfloat16' asked for, but this {device_type} has no "
                  "native bfloat16 matrix products (emulation would be slower than float32): using float32")
        return "float32"
    return precision


def require_native(precision: str, device="cpu") -> str:
    """``precision`` itself, or a ValueError where it would fall back: for results stored under a key that
    names their precision (a training command, a loop's records), which must never hold another one."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ran = resolve(precision, device)
    if ran != precision:
        raise ValueError(f"precision={precision!r} is not native on this {torch.device(device).type} (it would run "
                         f"{ran}, and the result is stored under a key that says {precision}): use 'float32' here")
    return precision


@contextlib.contextmanager
def allow_emulated():
    """Inside this block an explicit precision="bfloat16" runs in bfloat16 even where it is not native
    (oneDNN then emulates it: the same rounding of the products' inputs and outputs, float32 accumulation,
    several times slower than float32). For checking the numerics on any machine, never for speed; "auto"
    still picks float32 there."""
    old, _EMULATE[0] = _EMULATE[0], True
    try:
        yield
    finally:
        _EMULATE[0] = old


def autocast(precision: str, device_type: str = "cpu"):
    """The context in which the matrix products run: bfloat16 autocast, or nothing for float32 (a
    resolved precision: see :func:`resolve`)."""
    if check_precision(precision) == "auto":
        raise ValueError("autocast takes a resolved precision ('float32' or 'bfloat16'): call resolve() first")
    if precision == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=torch.bfloat16)


class Compiled:
    """``fn`` compiled with :func:`torch.compile` on first use, falling back to ``fn`` itself (eager, with
    one warning) if compilation or a compiled call fails; the eager call then raises any real error.

    ``.active`` tells whether the compiled version is in use. ``dynamic=False``: one graph per chunk shape
    (the sampler's chunks share a shape, the last one aside).
    """

    def __init__(self, fn, dynamic: bool = False):
        self.fn = fn
        self.active = True
        try:
            self.compiled = torch.compile(fn, dynamic=dynamic)
        except Exception as e:         # e.g. torch.compile unsupported on this Python
            self._fail(e)

    def _fail(self, e: Exception) -> None:
        self.active = False
        warn_once("compile", f"torch.compile failed ({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}); "
                  "running eager")

    def __call__(self, *args, **kwargs):
        if self.active:
            try:
                return self.compiled(*args, **kwargs)
            except (ValueError, MemoryError, torch.OutOfMemoryError, KeyboardInterrupt):
                raise                  # the function's own input checks, or out of memory: not the compiler
            except Exception as e:     # compilation happens at the first call of each shape
                self._fail(e)
        return self.fn(*args, **kwargs)


def describe(sampling: str = DEFAULT_SAMPLING, device="cpu", trained: str = "float32") -> str:
    """One sentence for a chapter: the precision its network samples ran in on ``device``, and why, and
    the precision its models were trained in (``trained``: the chapters' shipped models are float32)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ran = resolve(sampling, device)
    native = bf16_native(torch.device(device).type)
    why = ("this machine computes bfloat16 matrix products natively" if native else
           "this machine has no native bfloat16 matrix products")
    return (f"network samples here ran in {ran} matrix products ({why}; "
            f"precision='{sampling}'), and every model was trained in {trained}")
