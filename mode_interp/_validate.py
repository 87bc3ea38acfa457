"""Input checks shared by the public functions.

Every public function of the package validates its arguments with these helpers, so that bad input
fails early with a ``ValueError`` that names the parameter and the allowed range, instead of a
shape error deep inside torch or, worse, a silently wrong number.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch


def check_int(name: str, value, lo: int | None = None, hi: int | None = None) -> int:
    """Return ``value`` as an int after checking ``lo <= value <= hi`` (bounds inclusive)."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {value}")
    return value


def check_float(name: str, value, lo: float | None = None, hi: float | None = None,
                lo_open: bool = False, hi_open: bool = False) -> float:
    """Return ``value`` as a finite float inside the given (optionally open) interval."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    bad_lo = lo is not None and (value <= lo if lo_open else value < lo)
    bad_hi = hi is not None and (value >= hi if hi_open else value > hi)
    if bad_lo or bad_hi:
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        raise ValueError(f"{name} must be in {left}{lo}, {hi}{right}, got {value}")
    return value


def check_choice(name: str, value, choices) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")
    return value


FLOAT_DTYPES = (torch.float32, torch.float64)


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return type(value).__name__


def check_points(name: str, x, dim: int | None = None, min_rows: int = 1) -> torch.Tensor:
    """Check a batch of points: a float32 / float64 tensor of shape (n, d), n >= ``min_rows``, finite."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape (n, d), got {_describe(x)}")
    if x.ndim != 2:
        raise ValueError(f"{name} must have shape (n, d), got shape {tuple(x.shape)}")
    if x.dtype not in FLOAT_DTYPES:
        raise ValueError(f"{name} must be a float32 or float64 tensor, got dtype {x.dtype}")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"{name} must have {dim} column(s) (the data dimension), got {x.shape[1]}")
    if x.shape[0] < min_rows:
        raise ValueError(f"{name} must hold at least {min_rows} point(s), got {x.shape[0]}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def check_tensor(name: str, x, shape: tuple | None = None, ndim: int | None = None, finite: bool = True,
                 min_size: int = 1) -> torch.Tensor:
    """Check a float32 / float64 tensor of a given ``shape`` (or number of dimensions), with at least
    ``min_size`` entries, finite unless ``finite=False``."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {_describe(x)}")
    if x.dtype not in FLOAT_DTYPES:
        raise ValueError(f"{name} must be a float32 or float64 tensor, got dtype {x.dtype}")
    if shape is not None and tuple(x.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(x.shape)}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {tuple(x.shape)}")
    if x.numel() < min_size:
        raise ValueError(f"{name} must hold at least {min_size} value(s), got shape {tuple(x.shape)}")
    if finite and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def check_array(name: str, value, ndim=1, min_len: int = 1, finite: bool = True, dtype=np.float64) -> np.ndarray:
    """``value`` (a sequence, numpy array or tensor of real numbers) as a numpy array of ``dtype`` after
    checking its number of dimensions (an int or a tuple of allowed ones), that its first axis holds at
    least ``min_len`` entries and (unless ``finite=False``) that every entry is finite. Strings, None,
    complex, object and ragged inputs are refused, never coerced."""
    if value is None or isinstance(value, (str, bytes, dict, set)):
        raise ValueError(f"{name} must be an array of real numbers, got {_describe(value)}")
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        value = value.float() if value.dtype == torch.bfloat16 else value
        value = value.numpy()
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{name} must be an array of real numbers ({e})") from e
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if dtype is not None:
        arr = arr.astype(dtype)
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if ndim is not None and arr.ndim not in allowed:
        raise ValueError(f"{name} must be {' or '.join(f'{d}-D' for d in allowed)}, got shape {arr.shape}")
    if (arr.shape[0] if arr.ndim else 1) < min_len:
        raise ValueError(f"{name} must hold at least {min_len} entr{'y' if min_len == 1 else 'ies'}, got shape {arr.shape}")
    if finite and arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def check_bool(name: str, value) -> bool:
    """``value`` as a bool; only True / False (or numpy's) are accepted, never a truthy stand-in."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_optional_float(name: str, value, lo: float | None = None, hi: float | None = None,
                         lo_open: bool = False, hi_open: bool = False) -> float | None:
    """None, or :func:`check_float`."""
    return None if value is None else check_float(name, value, lo, hi, lo_open, hi_open)


def check_callable(name: str, value):
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {_describe(value)}")
    return value


def check_instance(name: str, value, cls, hint: str = ""):
    """``value`` if it is a ``cls`` (a type or a tuple of types), else a TypeError naming ``name``."""
    if not isinstance(value, cls):
        wanted = " or ".join(c.__name__ for c in cls) if isinstance(cls, tuple) else cls.__name__
        raise TypeError(f"{name} must be a {wanted}{hint}, got {_describe(value)}")
    return value


def check_ints(name: str, values, lo: int | None = None, hi: int | None = None, min_len: int = 0) -> tuple:
    """A sequence of integers (each :func:`check_int`), as a tuple; a string is not a sequence here."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ValueError(f"{name} must be a sequence of integers, got {values!r}")
    out = tuple(check_int(name, v, lo, hi) for v in values)
    if len(out) < min_len:
        raise ValueError(f"{name} must hold at least {min_len} integer(s), got {list(out)}")
    return out


def check_generator(name: str, generator) -> torch.Generator:
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"{name} must be a torch.Generator (seeds are passed, not global), "
                         f"got {type(generator).__name__}")
    return generator


def check_device(device, name: str = "device") -> str:
    """``device`` as a string: "cpu", or "cuda" / "cuda:N" where CUDA is available (a torch.device is
    accepted too); anything else is a ValueError naming the parameter."""
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str) or not (device in ("cpu", "cuda") or
                                           (device.startswith("cuda:") and device[5:].isdigit())):
        raise ValueError(f"{name} must be 'cpu' or 'cuda' (or 'cuda:N'), got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"{name}={device!r} was asked for but torch.cuda.is_available() is False")
    return device


def check_records(name: str, records, experiment: str) -> list:
    """``records`` as a list of result records of ``experiment`` (dicts whose ``"experiment"`` names it);
    a TypeError for a single record, a path or a non-iterable, a ValueError naming the first stray entry."""
    if isinstance(records, (str, bytes, dict)) or not hasattr(records, "__iter__"):
        raise TypeError(f"{name} must be a list of {experiment} records, got {type(records).__name__}")
    records = list(records)
    for i, rec in enumerate(records):
        if not isinstance(rec, dict) or rec.get("experiment") != experiment:
            raise ValueError(f"{name}[{i}] is not a {experiment} record")
    return records
