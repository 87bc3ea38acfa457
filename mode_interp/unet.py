"""A small DDPM U-Net for SIMPLE SHAPES, sized for a 2-core CPU (the paper's SIMPLE SHAPES experiment: "a DDPM with a U-Net").

    eps_theta(x_t, t): conv_in -> [ResBlock(c_i) -> Downsample] per level -> ResBlock (middle)
                       -> [concat skip -> ResBlock(c_i) -> Upsample] per level -> GN -> SiLU -> conv_out
    ResBlock(h, c) = skip(h) + conv(SiLU(GN(conv(SiLU(GN(h))) + W c + b)))     c: time code

One residual block per level, no attention, GroupNorm(8), SiLU, sinusoidal time embedding -> MLP (the
ddpm-torch layout, trimmed). Default channels (16, 32, 64): 0.62 M parameters, resolution-agnostic
(32 x 32 or 64 x 64). :meth:`UNet.eps_flat` adapts it to the flat ``(n, r*r)`` interface of
:mod:`mode_interp.diffusion`, so training and sampling reuse the toy engine.

``precision="bfloat16"`` (:mod:`mode_interp.precision`) runs the inner convolutions and the blocks' time
projections under bfloat16 autocast; the first and last convolutions (on x_t and producing eps_hat), the
time MLP and every GroupNorm run in float32. Weights and activations are kept channels-last (NHWC), the
layout oneDNN's CPU convolutions prefer; the values are those of the default layout to float rounding.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ._validate import FLOAT_DTYPES, check_int, check_ints
from .models import _check_timesteps, engine_eps, timestep_embedding
from .precision import Compiled, autocast, check_compile, check_precision, resolve


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, c_time: int, groups: int = 8):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(groups, c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.time = nn.Linear(c_time, c_out)
        self.norm2, self.conv2 = nn.GroupNorm(groups, c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, h: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.silu(self.norm1(h.float()))) + self.time(code)[:, :, None, None]
        return self.skip(h) + self.conv2(F.silu(self.norm2(out.float())))


class UNet(nn.Module):
    """eps-prediction U-Net for single-channel images; ``channels`` per resolution level."""

    def __init__(self, channels: tuple = (16, 32, 64), in_channels: int = 1):
        super().__init__()
        channels = check_ints("channels", channels, 8, None)
        in_channels = check_int("in_channels", in_channels, 1, 64)
        if not 2 <= len(channels) <= 4 or any(c % 8 for c in channels):
            raise ValueError(f"channels must be 2-4 multiples of 8, got {channels}")
        self.channels, self.in_channels = channels, in_channels
        c_time = 4 * channels[0]
        self.time_mlp = nn.Sequential(nn.Linear(channels[0], c_time), nn.SiLU(), nn.Linear(c_time, c_time))
        self.conv_in = nn.Conv2d(in_channels, channels[0], 3, padding=1)
        self.down = nn.ModuleList()
        c_prev = channels[0]
        for c in channels:
            self.down.append(ResBlock(c_prev, c, c_time))
            c_prev = c
        self.downsample = nn.ModuleList(nn.Conv2d(c, c, 3, stride=2, padding=1) for c in channels[:-1])
        self.middle = ResBlock(c_prev, c_prev, c_time)
        self.up = nn.ModuleList()
        for c in reversed(channels):
            self.up.append(ResBlock(c_prev + c, c, c_time))
            c_prev = c
        self.upsample = nn.ModuleList(nn.Conv2d(c, c, 3, padding=1) for c in list(reversed(channels))[:-1])
        self.norm_out = nn.GroupNorm(8, channels[0])
        self.conv_out = nn.Conv2d(channels[0], in_channels, 3, padding=1)
        self.to(memory_format=torch.channels_last)    # NHWC: oneDNN's convolutions run about 1.2-1.4x faster

    def _encode(self, x: torch.Tensor, t):
        """(bottleneck h, skip activations, time code): the down path and the middle block."""
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != self.in_channels \
                or x.shape[-1] % 2 ** (len(self.channels) - 1) or x.shape[-1] != x.shape[-2]:
            raise ValueError(f"x must be a tensor (n, {self.in_channels}, r, r) with r divisible by "
                             f"{2 ** (len(self.channels) - 1)}, got "
                             + (str(tuple(x.shape)) if isinstance(x, torch.Tensor) else type(x).__name__))
        if x.dtype not in FLOAT_DTYPES:
            raise ValueError(f"x must be a float32 or float64 tensor, got dtype {x.dtype}")
        if isinstance(t, torch.Tensor):
            t = _check_timesteps(t, x.shape[0])
        else:
            t = torch.full((x.shape[0],), check_int("t", t, 0, None), device=x.device)
        with torch.autocast(x.device.type, enabled=False):      # float32 even under bfloat16 autocast
            code = self.time_mlp(timestep_embedding(t, self.channels[0]).to(x.dtype))
            h, skips = self.conv_in(x.float().contiguous(memory_format=torch.channels_last)), []
        for i, block in enumerate(self.down):
            h = block(h, code)
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
        return self.middle(h, code), skips, code

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        h, skips, code = self._encode(x, t)
        for i, block in enumerate(self.up):
            h = block(torch.cat([h, skips.pop()], dim=1), code)
            if i < len(self.upsample):
                h = self.upsample[i](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        with torch.autocast(h.device.type, enabled=False):
            return self.conv_out(F.silu(self.norm_out(h.float())))

    @torch.no_grad()
    def bottleneck_features(self, x: torch.Tensor, t: int = 0) -> torch.Tensor:
        """The middle block's output at timestep ``t``, flattened: (n, channels[-1] * (r / 2^(L-1))^2).
        The paper's appendix embeds these (t-SNE) to show "two squares" between the one-square clusters."""
        return self._encode(x, t)[0].flatten(1)

    def eps_flat(self, x_flat: torch.Tensor, t, precision: str = "float32") -> torch.Tensor:
        """The same network on flattened images (n, r*r): the eps-function interface of diffusion.py.
        ``precision``: "float32" or "bfloat16" (the convolutions; the output is float32)."""
        r = int(round(x_flat.shape[1] ** 0.5))
        with autocast(check_precision(precision), x_flat.device.type):
            out = self(x_flat.reshape(-1, self.in_channels, r, r), t)
        return out.float().reshape(x_flat.shape)

    def eps_for_sampling(self, timesteps=None, precision: str = "float32", compile: bool = False):
        """eps function ``(x_flat, i) -> eps_hat`` for :func:`mode_interp.sample`: the chain's step i runs the
        network at timestep ``timesteps[i]`` (a respaced chain) or at i itself (``timesteps=None``).
        ``precision`` and ``compile``: see :mod:`mode_interp.precision` (``.precision``, ``.compiled``)."""
        precision = resolve(precision, next(self.parameters()).device)
        forward = Compiled(self.eps_flat) if check_compile(compile) else self.eps_flat

        def eps_fn(x_flat: torch.Tensor, i: int) -> torch.Tensor:
            t = int(timesteps[i]) if timesteps is not None else i        # a tensor: one compiled graph for all t
            return forward(x_flat, torch.full((len(x_flat),), t, device=x_flat.device), precision)

        return engine_eps(eps_fn, precision, forward)
