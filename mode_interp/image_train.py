"""Training the SIMPLE SHAPES U-Net: seeded, CPU-first, resumable, with load-or-train caching.

Same conventions as :mod:`mode_interp.train` (eps-MSE with t uniform, Adam, a tqdm bar, ``cpu``/``cuda``,
models keyed by their full config), plus what a multi-sitting run needs: every ``checkpoint_every``
steps the whole run state (weights, EMA weights, Adam moments, the random generator, losses) is written
atomically to a *run file* keyed by the config without ``steps``; a later call with the same config and
more steps resumes from it. Batches are drawn with replacement from one generator, so a resumed run is
the same computation as an uninterrupted one. Samples come from the EMA weights (decay ``ema_decay``
with the usual warm-up min(decay, (1 + s) / (10 + s))), as in ddpm-torch. Image schedule: linear beta
1e-4 -> 0.02, T = 1000 (the DDPM image setting; the toy chapters use 1e-3 -> 0.2).
"""

from __future__ import annotations

import copy
import time
import warnings
from pathlib import Path
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import numpy as np
import torch
from tqdm.auto import tqdm

from . import cache
from .cache import cached_draw
from ._validate import check_bool, check_device, check_float, check_instance, check_int, check_ints
from .cli import parse_config
from .diffusion import SampleResult, check_no_observer, eps_mse_loss, sample
from .precision import DEFAULT_SAMPLING, check_precision, require_native, resolve
from .schedule import Schedule, linear_schedule, respace
from .shapes import RESOLUTIONS, ShapesData, simple_shapes, to_model_space
from .train import SHIPPED_DIR, _NotNative, source_of
from .unet import UNet


@dataclass(frozen=True)
class ShapesConfig:
    """Everything that determines a trained SIMPLE SHAPES model (and so its cache key)."""

    resolution: int = 32
    n_images: int = 5000
    data_seed: int = 0
    channels: tuple = (16, 32, 64)
    steps: int = 3000
    batch_size: int = 64
    lr: float = 5e-4                       # the shipped model's rate (ddpm-torch uses 2e-4 for long runs)
    ema_decay: float = 0.999
    seed: int = 0
    T: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    precision: str = "float32"             # of the convolutions in training (mode_interp.precision)

    def __post_init__(self):
        if isinstance(self.resolution, bool) or not isinstance(self.resolution, int) or self.resolution not in RESOLUTIONS:
            raise ValueError(f"resolution must be one of {RESOLUTIONS}, got {self.resolution!r}")
        object.__setattr__(self, "channels", check_ints("channels", self.channels, 8, None, min_len=2))
        for name, lo in [("n_images", 1), ("data_seed", 0), ("steps", 1), ("batch_size", 1), ("seed", 0),
                         ("T", 2)]:
            check_int(name, getattr(self, name), lo, None)
        check_float("lr", self.lr, 0.0, 1.0, lo_open=True)
        check_float("ema_decay", self.ema_decay, 0.0, 1.0, hi_open=True)
        linear_schedule(self.T, self.beta_start, self.beta_end)     # checks T, beta_start, beta_end
        if check_precision(self.precision) == "auto":
            raise ValueError("precision must be 'float32' or 'bfloat16' for training (it is part of the "
                             "model's cache key), got 'auto'")

    def data(self) -> ShapesData:
        return _shapes(self.n_images, self.data_seed)

    def training_data(self) -> torch.Tensor:
        """The training images in model space, flattened: (n_images, resolution**2) in [-1, 1]."""
        return to_model_space(self.data().images, self.resolution).flatten(1)

    def schedule(self) -> Schedule:
        return linear_schedule(self.T, self.beta_start, self.beta_end)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        if d["precision"] == "float32":        # float32 models keep the keys they had before the option
            del d["precision"]
        return d

    def run_dict(self) -> dict:
        """The config without ``steps``: runs that differ only in length share one resumable run file."""
        d = self.to_dict()
        del d["steps"]
        return d


@lru_cache(maxsize=4)
def _shapes(n: int, seed: int) -> ShapesData:
    return simple_shapes(n, np.random.default_rng(seed))


@dataclass
class TrainedUNet:
    model: UNet                                    # EMA weights, eval mode
    config: ShapesConfig
    losses: list = field(default_factory=list)     # mean loss over each block of 50 steps
    seconds: float = 0.0                           # wall time of training, summed over sittings
    from_cache: bool = False
    path: str = ""
    precision: str = "float32"                     # the precision training actually ran in

    @property
    def source(self) -> str:
        return source_of(self.from_cache, self.path)

    def sample(self, n: int, seed: int, steps: int | None = None, window: int = 0, chunk_size: int = 250,
               variance: str = "fixed_small", progress: bool = False, observer=None,
               precision: str = DEFAULT_SAMPLING, compile: bool = False, keep_x_t: bool = False,
               cache: bool = False) -> SampleResult:
        """n ancestral samples from a generator seeded with ``seed``, x0_hat clipped to [-1, 1] (DDPM's image
        sampler): all T steps, or ``steps`` evenly respaced ones (:func:`mode_interp.schedule.respace`).
        ``variance``: "fixed_small" (sigma^2 = beta_tilde, the default: on a respaced chain "fixed_large"
        adds noise at the last steps that the network never saw in training and leaves grey speckle) or
        "fixed_large". ``x0`` is (n, r*r). ``observer``: see :func:`mode_interp.diffusion.sample` (its t is the
        chain's step index i, not the original timestep). ``precision``, ``compile``: see
        :mod:`mode_interp.precision` (the result's ``.precision`` / ``.compiled`` say what ran). ``keep_x_t``:
        x_t over the window too. ``cache=True``: the draw is kept in the cache folder and read back by any
        later call with the same weights and arguments (:func:`mode_interp.cache.cached_draw`)."""
        schedule = self.config.schedule()
        tau = np.arange(schedule.T)
        if steps is not None and steps != schedule.T:
            schedule, tau = respace(schedule, steps)
        seed = check_int("seed", seed, 0, None)

        def draw() -> SampleResult:
            eps = self.model.eps_for_sampling(torch.as_tensor(tau), precision, compile)   # step i -> timestep tau[i]
            return sample(eps, n, self.config.resolution ** 2, schedule, torch.Generator().manual_seed(seed),
                          window=window, chunk_size=chunk_size, variance=variance, progress=progress, clip_x0=1.0,
                          observer=observer, keep_x_t=keep_x_t)

        if not check_bool("cache", cache):
            return draw()
        check_no_observer(observer)
        return cached_draw(self.model, {"shapes": self.config.to_dict(), "n": check_int("n", n, 1, None), "seed": seed,
                                        "steps": schedule.T, "window": window, "keep_x_t": keep_x_t,
                                        "variance": variance, "precision": resolve(precision), "compile": compile},
                           draw)


def _new_model(config: ShapesConfig) -> UNet:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return UNet(config.channels)


def train_shapes(config: ShapesConfig, device: str = "cpu", progress: bool = True, checkpoint_every: int = 100,
                 directory=None, resume: bool = True) -> TrainedUNet:
    """Train (or resume) the U-Net to ``config.steps`` steps; the run file lives in ``directory``.

    The run file (saved every ``checkpoint_every`` steps) holds weights, EMA, Adam state, the generator,
    the loss history and its running sum, so a resumed run is bit-identical to an uninterrupted one, loss
    history included. ``resume=False`` starts from scratch. A run file holding a *longer* run than asked
    for is never rewound or overwritten: the shorter run trains from scratch beside it (with a warning).
    """
    check_instance("config", config, ShapesConfig)
    device = check_device(device)
    check_bool("progress", progress)
    check_bool("resume", resume)
    checkpoint_every = check_int("checkpoint_every", checkpoint_every, 1, None)
    run_path = (cache.cache_dir() if directory is None else Path(directory)) / cache.file_name(config.run_dict(), "shapes-run")
    model = _new_model(config).to(device)
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    g = torch.Generator(device=device).manual_seed(config.seed)
    precision = resolve(config.precision, device)       # float32 (with a warning) where bf16 is not native
    write = precision == config.precision        # a fallback run neither reads nor writes the run file
    state = cache.load_verified(run_path, config.run_dict()) if write else None
    step, losses, seconds, running = 0, [], 0.0, 0.0
    if state is not None and state["step"] > config.steps:     # never rewind (or overwrite) a longer run
        warnings.warn(f"{run_path} holds a longer run ({state['step']} steps) than the {config.steps} asked "
                      "for: training this one from scratch, leaving that file as it is", RuntimeWarning,
                      stacklevel=2)
        state, write = None, False
    if state is not None and not resume:
        state = None                              # retrain: from scratch, over a run no longer than this one
    if state is not None:
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        g.set_state(state["generator"])
        step, losses, seconds = state["step"], list(state["losses"]), float(state["seconds"])
        running = float(state.get("running", 0.0))     # run files from before it was kept: 0
    data = config.training_data().to(device)
    schedule = config.schedule()
    batch = min(config.batch_size, config.n_images)
    start = time.perf_counter()
    if write and step < config.steps:
        cache.check_writable(run_path.parent, "MODE_INTERP_CACHE" if directory is None else "directory")

    def save():
        cache.save_atomic({"step": step, "model": model.state_dict(), "ema": ema.state_dict(),
                           "opt": opt.state_dict(), "generator": g.get_state(), "losses": losses,
                           "running": running, "seconds": seconds + time.perf_counter() - start},
                          run_path, config.run_dict())

    with tqdm(total=config.steps, initial=step, disable=not progress, desc="training", unit="step") as bar:
        while step < config.steps:
            rows = torch.randint(0, config.n_images, (batch,), generator=g, device=device)
            loss = eps_mse_loss(lambda x_t, t: model.eps_flat(x_t, t, precision), data[rows], schedule, g)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            decay = min(config.ema_decay, (1 + step) / (10 + step))
            with torch.no_grad():
                for p_ema, p in zip(ema.parameters(), model.parameters()):
                    p_ema.lerp_(p, 1 - decay)
            running += loss.item()
            bar.update(1)
            if step % 50 == 0:
                losses.append(running / 50)
                bar.set_postfix(loss=f"{losses[-1]:.4f}")
                running = 0.0
            if write and (step % checkpoint_every == 0 or step == config.steps):
                save()
    seconds += time.perf_counter() - start
    return TrainedUNet(ema.cpu().eval(), config, losses, seconds, precision=precision)


def load_or_train_shapes(config: ShapesConfig, device: str = "cpu", progress: bool = True, directory=None,
                         shipped: bool = True, retrain: bool = False) -> TrainedUNet:
    """The stored model for ``config`` (cache folder, then shipped checkpoints), else train it (resuming
    its run file unless ``retrain``) and cache it. Stores EMA weights, losses and training seconds. As
    :func:`mode_interp.train.load_or_train`, a bfloat16 config trained where bfloat16 is not native trains
    in float32 (with a warning) and is not cached."""
    check_instance("config", config, ShapesConfig)
    device = check_device(device)
    for name, value in (("progress", progress), ("shipped", shipped), ("retrain", retrain)):
        check_bool(name, value)

    def create():
        if resolve(config.precision, device) != config.precision:
            raise _NotNative
        trained = train_shapes(config, device, progress, directory=directory, resume=not retrain)
        return {"state_dict": trained.model.state_dict(), "losses": trained.losses, "seconds": trained.seconds,
                "precision": trained.precision}

    try:
        stored, path, hit = cache.load_or_create(config.to_dict(), create, name="shapes-unet", directory=directory,
                                                 refresh=retrain, read_only=(SHIPPED_DIR,) if shipped else (),
                                                 check=lambda s: _from_stored(config, s, True, ""))
    except _NotNative:
        warnings.warn(f"precision={config.precision!r} is not native here: trained in float32 instead, and not "
                      "cached under the config's key", RuntimeWarning, stacklevel=2)
        return train_shapes(config, device, progress, directory=directory, resume=False)
    return _from_stored(config, stored, hit, path)


def _from_stored(config: ShapesConfig, stored: dict, hit: bool, path) -> TrainedUNet:
    return TrainedUNet(cache.restore(UNet(config.channels), stored), config, list(stored["losses"]), float(stored["seconds"]), hit, str(path),
                       stored.get("precision", "float32"))       # files from before the option: float32


def _cli(argv=None) -> None:
    """``python -m mode_interp.image_train [--field value ...] [--out DIR]``: train (resuming its run file
    in the cache folder, if any) one ShapesConfig, write the model into ``--out`` (default: the shipped
    checkpoints folder) and record the command, config and training time in ``MANIFEST.json`` there."""
    config, out, device, _ = parse_config(ShapesConfig, argv, "python -m mode_interp.image_train", _cli.__doc__,
                                          SHIPPED_DIR, check=lambda c, _, device: require_native(c.precision, device))
    cache.check_writable(out, "--out")
    trained = train_shapes(config, device)
    path = out / cache.file_name(config.to_dict(), "shapes-unet")
    cache.save_atomic({"state_dict": trained.model.state_dict(), "losses": trained.losses,
                       "seconds": trained.seconds, "precision": trained.precision}, path, config.to_dict())
    cache.record_manifest(out, path.name, argv, config.to_dict(), trained.seconds, device,
                          trained.losses[-1] if trained.losses else None, module="mode_interp.image_train",
                          precision=trained.precision)
    print(f"wrote {path} ({trained.seconds:.0f} s)")


if __name__ == "__main__":
    _cli()
