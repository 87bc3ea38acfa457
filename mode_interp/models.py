"""The paper's toy network: a time-conditioned residual MLP that predicts eps (the paper's toy setup and its official code).

    h_0 = W_in x_t                                       (no bias)
    c   = LeakyReLU(W_t e(t) + b_t),   e(t) sinusoidal   (time code, 128-d)
    h_{i+1} = h_i + W_2 phi(LN(W_1 phi(LN(h_i)) + W_c c + b_c))     (a "temporal block", i = 1..3)
    eps_theta(x_t, t) = W_out LN(h_3) + b_out,           phi = LeakyReLU(0.02)

The official code builds the three blocks as *one module repeated*, so their weights are shared:
``share_blocks=True`` (the default) keeps that; ``False`` gives three independent blocks.

Everything that depends only on t (e(t), the time code c and each block's W_c c + b_c) is computed once
per distinct timestep and broadcast: once per step when sampling (``t`` an int), once per distinct value
of the batch when training (``t`` a tensor). :mod:`mode_interp.plain` computes the same function row by
row, as the official code does, for tests and benchmarks.

``precision="bfloat16"`` (:mod:`mode_interp.precision`) runs the blocks' six width x width products in
bfloat16; W_in (whose input is x_t itself: in bfloat16, x_t near 3 would be rounded to steps of 1/64,
a third of the paper's sigma = 0.05), W_out, every LayerNorm and the residual stream h stay in float32.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ._validate import check_bool, check_int, check_points
from .precision import Compiled, autocast, check_compile, resolve

NEGATIVE_SLOPE = 0.02


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """e(t) = [sin(t f_0), ..., sin(t f_{h-1}), cos(t f_0), ..., cos(t f_{h-1})], f_i = 10000^(-i/(h-1)),
    h = dim / 2 (the DDPM / ddpm-torch embedding). ``t``: an integer tensor of shape (n,), t >= 0;
    returns (n, dim) float32."""
    t = _check_timesteps(t)
    dim = check_int("dim", dim, 4, None)
    if dim % 2:
        raise ValueError(f"dim must be even, got {dim}")
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) / (half - 1) * torch.arange(half, dtype=torch.float32,
                                                                      device=t.device))
    args = t.to(torch.float32)[:, None] * freqs[None]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


def _check_timesteps(t, n: int | None = None) -> torch.Tensor:
    """t: a 1-D integer tensor of non-negative timesteps (of length ``n``, if given)."""
    if not isinstance(t, torch.Tensor) or t.ndim != 1 or t.is_floating_point() or t.is_complex() \
            or t.dtype == torch.bool:
        raise ValueError("t must be a 1-D integer tensor of timesteps, got "
                         + (f"dtype {t.dtype}, shape {tuple(t.shape)}" if isinstance(t, torch.Tensor) else type(t).__name__))
    if n is not None and t.shape[0] != n:
        raise ValueError(f"t must have one entry per row of x_t ({n}), got {t.shape[0]}")
    if t.numel() and int(t.min()) < 0:
        raise ValueError(f"t must be >= 0, got {int(t.min())}")
    return t


class TemporalBlock(nn.Module):
    """h + W_2 phi(LN_2(W_1 phi(LN_1(h)) + code)) with code = W_c c + b_c (see module docstring)."""

    def __init__(self, width: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, width, bias=False)
        self.norm2 = nn.LayerNorm(width)
        self.fc2 = nn.Linear(width, width, bias=False)
        self.enc = nn.Linear(width, width)

    def forward(self, h: torch.Tensor, code: torch.Tensor, low: bool = False) -> torch.Tensor:
        # addmm fuses "+ code" and the residual "+ h" into the matrix products; the in-place LeakyReLU
        # acts on LayerNorm's output, which LayerNorm's backward does not need. ``low``: the products run
        # under bfloat16 autocast; LayerNorm then gets float32 input and the residual "+ h" is a float32
        # addition (an addmm would round h to bfloat16).
        a = F.leaky_relu(self.norm1(h), NEGATIVE_SLOPE, inplace=True)
        out = torch.addmm(code, a, self.fc1.weight.t())
        b = F.leaky_relu(self.norm2(out.float() if low else out), NEGATIVE_SLOPE, inplace=True)
        return h + torch.mm(b, self.fc2.weight.t()) if low else torch.addmm(h, b, self.fc2.weight.t())


class ToyMLP(nn.Module):
    """eps_theta(x_t, t) for d-dimensional toy data; about 67k parameters at width 128, shared blocks.

    ``input_bias``: give the input layer a bias (the paper's has none). Without one, the first block's
    LayerNorm sees LN(W_in x_t), which does not change when x_t is scaled by any a > 0: the first block
    reads only the *direction* of x_t, which is undefined at x_t = 0, and the network cannot be smooth
    there (chapter 2, section 2.6: a mode at the origin is not held)."""

    def __init__(self, dim: int = 1, width: int = 128, n_blocks: int = 3, share_blocks: bool = True,
                 input_bias: bool = False):
        super().__init__()
        self.dim = check_int("dim", dim, 1, 64)
        self.width = check_int("width", width, 4, 4096)
        self.n_blocks = check_int("n_blocks", n_blocks, 1, 64)
        if width % 2:
            raise ValueError(f"width must be even (sinusoidal embedding), got {width}")
        self.share_blocks = check_bool("share_blocks", share_blocks)
        self.in_fc = nn.Linear(dim, width, bias=check_bool("input_bias", input_bias))
        self.t_proj = nn.Linear(width, width)
        n_distinct = 1 if share_blocks else n_blocks
        self.blocks = nn.ModuleList(TemporalBlock(width) for _ in range(n_distinct))
        self.out_norm = nn.LayerNorm(width)
        self.out_fc = nn.Linear(width, dim)
        for m in self.modules():                       # the official init: Xavier-uniform, zero bias
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def block_sequence(self):
        """The blocks in the order they are applied (the same module n_blocks times when shared)."""
        return [self.blocks[0]] * self.n_blocks if self.share_blocks else list(self.blocks)

    def time_codes(self, t: torch.Tensor) -> list:
        """W_c c(t) + b_c for each distinct block, for the timesteps ``t`` (shape (m,))."""
        c = F.leaky_relu(self.t_proj(timestep_embedding(t, self.width)), NEGATIVE_SLOPE)
        return [blk.enc(c) for blk in self.blocks]

    def forward(self, x_t: torch.Tensor, t, precision: str = "float32") -> torch.Tensor:
        """eps_theta(x_t, t); ``precision`` of the block products: "float32" or "bfloat16" (as asked:
        :func:`mode_interp.precision.resolve` decides about fallbacks)."""
        x_t = check_points("x_t", x_t, self.dim).to(self.in_fc.weight.dtype)
        if isinstance(t, torch.Tensor) and t.ndim == 1:
            t = _check_timesteps(t, x_t.shape[0])
            values, index = torch.unique(t, return_inverse=True)       # once per distinct t, then gather
            codes = [F.embedding(index, code) for code in self.time_codes(values.to(x_t.device))]
        else:
            t = check_int("t", int(t) if isinstance(t, torch.Tensor) and t.numel() == 1 else t, 0, None)
            codes = self.time_codes(torch.tensor([t], device=x_t.device))   # (1, width), broadcast
        return self._forward_with_codes(x_t, codes, precision)

    def _forward_with_codes(self, x_t: torch.Tensor, codes: list, precision: str = "float32") -> torch.Tensor:
        h = self.in_fc(x_t)
        low = precision != "float32"
        with autocast(precision, x_t.device.type):
            for i, blk in enumerate(self.block_sequence()):
                h = blk(h, codes[0 if self.share_blocks else i], low)
        return self.out_fc(self.out_norm(h))

    def eps_for_sampling(self, precision: str = "float32", compile: bool = False):
        """An eps function for :func:`mode_interp.sample` that computes the time codes once per step.

        The sampler evaluates every chunk of the batch at the same t in a row; the codes of the last t
        are kept and reused. Use it for inference only (it does not see later weight updates).
        ``precision`` ("float32" | "bfloat16") and ``compile`` (torch.compile of the per-chunk forward):
        see :mod:`mode_interp.precision`; the function's ``.precision`` and ``.compiled`` say what ran.
        """
        device = next(self.parameters()).device
        precision = resolve(precision, device)
        forward = Compiled(self._forward_with_codes) if check_compile(compile) else self._forward_with_codes
        last = {"t": None, "codes": None}

        def eps_fn(x_t: torch.Tensor, t: int) -> torch.Tensor:
            if t != last["t"]:
                last["t"] = t
                last["codes"] = self.time_codes(torch.tensor([check_int("t", t, 0, None)], device=x_t.device))
            if x_t.ndim != 2 or x_t.shape[1] != self.dim:
                raise ValueError(f"x_t must have shape (n, {self.dim}), got {tuple(x_t.shape)}")
            return forward(x_t, last["codes"], precision)

        return engine_eps(eps_fn, precision, forward)


def engine_eps(eps_fn, precision: str, forward):
    """Tag an eps function with the precision it runs in and whether its forward is compiled, so that the
    sampler can record both (``.compiled`` is read after the run: a failed compile falls back to eager)."""
    eps_fn.precision = precision
    eps_fn.compiled = lambda: isinstance(forward, Compiled) and forward.active
    return eps_fn
