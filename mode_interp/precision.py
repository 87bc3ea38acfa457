"""Numerical precision and compilation of the networks' matrix products, with safe fallbacks.

``precision="bfloat16"`` runs the networks' large matrix products (the toy MLP's block layers, the U-Net's
convolutions) under ``torch.autocast`` in bfloat16, 8 bits of mantissa, on hardware that computes them
natively (AVX-512 BF16 / AMX CPUs, CUDA GPUs of compute capability >= 8). Everything else stays in float32
or float64: the inputs x_t and the first and last layers (whose inputs are the data and whose outputs
are eps_hat; they are < 1% of the FLOPs), LayerNorm / GroupNorm, the residual stream, the time embedding,
and everything the sampler does with eps_hat (x0_hat, the posterior step, Hal) and the schedule.
``precision="float32"`` is the reference.

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
    """Whether ``device_type`` ("cpu" or "cuda") computes bfloat16 matrix products natively."""
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    probe = getattr(torch.backends.mkldnn, "is_available", lambda: False)() and getattr(
        torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    if probe is None:                  # a torch without the oneDNN probe: look at the CPU flags
        try:
            with open("/proc/cpuinfo") as f:
                flags = f.read()
            return "avx512_bf16" in flags or "amx_bf16" in flags
        except OSError:
            return False
    return bool(probe())


def resolve(precision, device="cpu") -> str:
    """The precision that will actually run: "float32" or "bfloat16". "auto" is bfloat16 where it is
    native on ``device`` and float32 elsewhere; "bfloat16" where it is not native falls back to float32
    with one warning."""
    precision = check_precision(precision)
    device_type = torch.device(device).type
    if precision == "auto":
        return "bfloat16" if bf16_native(device_type) else "float32"
    if precision == "bfloat16" and not (bf16_native(device_type) or _EMULATE[0]):
        warn_once(f"bf16-{device_type}", f"precision='bfloat16' asked for, but this {device_type} has no "
                  "native bfloat16 matrix products (emulation would be slower than float32): using float32")
        return "float32"
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
            except ValueError:         # the function's own input checks: not a compiler failure
                raise
            except Exception as e:     # compilation happens at the first call of each shape
                self._fail(e)
        return self.fn(*args, **kwargs)


def describe(sampling: str = DEFAULT_SAMPLING, device="cpu") -> str:
    """One sentence for a chapter: the precision its network samples ran in here, and why."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ran = resolve(sampling, device)
    native = bf16_native(torch.device(device).type)
    why = ("this machine computes bfloat16 matrix products natively" if native else
           "this machine has no native bfloat16 matrix products")
    return (f"network samples here ran in {ran} matrix products ({why}; "
            f"precision='{sampling}'), and every model was trained in float32")
