"""A Fréchet distance for handwritten digits, on the features of a small digit classifier trained here.

    FD(a, b) = ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2})        (Heusel et al., 2017)

with mu, S the mean and covariance of the penultimate-layer features (128-d) of :class:`DigitClassifier`.
This is **not** Inception-FID: the feature network is a two-layer CNN trained on the shipped 10,000 MNIST
digits (no pretrained weights can be downloaded here), so its values are comparable only with each other.
Tr (S_a S_b)^{1/2} is computed as sum_i sqrt(lambda_i) with lambda_i the eigenvalues of the symmetric
PSD matrix S_a^{1/2} S_b S_a^{1/2} (same spectrum as S_a S_b), in float64.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from . import cache
from ._validate import check_array, check_bool, check_float, check_int
from .digits import load_digits
from .stats import frechet_distance


class DigitClassifier(nn.Module):
    """conv(1->16) ReLU maxpool -> conv(16->32) ReLU maxpool -> fc(1568->128) ReLU [features] -> fc(128->10)."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                  nn.Linear(32 * 7 * 7, 128), nn.ReLU())
        self.head = nn.Linear(128, 10)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(images))


def to_unit(images) -> torch.Tensor:
    """Integer grey levels 0..255 (uint8 or any integer type, range-checked) or finite floats in [0, 1]
    (decoded samples that overshoot slightly are clipped), of shape (n, 28, 28) or (n, 784), as a float32
    (n, 1, 28, 28) tensor in [0, 1]."""
    raw = check_array("images", images, ndim=(2, 3), dtype=None)
    if raw.dtype.kind in "iu":
        if raw.size and (raw.min() < 0 or raw.max() > 255):
            raise ValueError(f"images: integer grey levels must lie in 0..255, got {raw.min()}..{raw.max()}")
        x = torch.as_tensor(raw.astype(np.float32)) / 255
    elif raw.dtype.kind == "f":
        x = torch.as_tensor(raw.astype(np.float32)).clamp(0, 1)
    else:
        raise ValueError(f"images must hold integer grey levels or floats, got dtype {raw.dtype}")
    if x.ndim == 2 and x.shape[1] == 784:
        x = x.reshape(-1, 28, 28)
    if x.ndim != 3 or x.shape[1:] != (28, 28) or not len(x):
        raise ValueError(f"images must be (n, 28, 28) or (n, 784) with n >= 1, got shape {tuple(x.shape)}")
    return x[:, None]


@dataclass(frozen=True)
class ClassifierConfig:
    n_test: int = 2000            # the last n_test shipped digits (after a seeded shuffle) are held out
    steps: int = 1500
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0

    def __post_init__(self):
        check_int("n_test", self.n_test, 1, 9999)
        check_int("steps", self.steps, 1, None)
        check_int("batch_size", self.batch_size, 1, None)
        check_float("lr", self.lr, 0.0, 1.0, lo_open=True)
        check_int("seed", self.seed, 0, None)

    def split(self) -> tuple:
        """(train_images, train_labels, test_images, test_labels) of the shipped digits, split by a seeded shuffle."""
        images, labels = load_digits()
        order = np.random.default_rng(self.seed).permutation(len(images))
        train, test = order[:-self.n_test], order[-self.n_test:]
        return images[train], labels[train], images[test], labels[test]


@dataclass
class FeatureNet:
    model: DigitClassifier
    config: ClassifierConfig
    test_accuracy: float
    seconds: float

    @torch.inference_mode()
    def features(self, images, batch: int = 1000) -> torch.Tensor:
        x = to_unit(images)
        return torch.cat([self.model.features(x[s:s + batch]) for s in range(0, len(x), batch)]).double()

    @torch.inference_mode()
    def predict(self, images, batch: int = 1000) -> torch.Tensor:
        x = to_unit(images)
        return torch.cat([self.model(x[s:s + batch]).argmax(1) for s in range(0, len(x), batch)])

    @torch.inference_mode()
    def probabilities(self, images, batch: int = 1000) -> torch.Tensor:
        """Softmax class probabilities (n, 10)."""
        x = to_unit(images)
        return torch.cat([self.model(x[s:s + batch]).softmax(1) for s in range(0, len(x), batch)])

    def fid(self, images_a, images_b) -> float:
        return frechet_distance(self.features(images_a), self.features(images_b))


def _train(config: ClassifierConfig, progress: bool) -> dict:
    x_train, y_train, x_test, y_test = config.split()
    x, y = to_unit(x_train), torch.as_tensor(y_train)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = DigitClassifier()
    g = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    start = time.perf_counter()
    for _ in tqdm(range(config.steps), disable=not progress, desc="digit classifier", unit="step"):
        rows = torch.randint(0, len(x), (config.batch_size,), generator=g)
        loss = nn.functional.cross_entropy(model(x[rows]), y[rows])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval()
    with torch.inference_mode():
        accuracy = float((model(to_unit(x_test)).argmax(1) == torch.as_tensor(y_test)).double().mean())
    return {"state_dict": model.state_dict(), "test_accuracy": accuracy, "seconds": time.perf_counter() - start}


def load_or_train_classifier(config: ClassifierConfig = ClassifierConfig(), progress: bool = True,
                             directory=None, shipped: bool = True) -> FeatureNet:
    """The digit classifier for ``config`` from the cache folder, else (``shipped``) from the checkpoints
    shipped with the package (``python -m mode_interp.fid`` made the default one), else trained (about a
    minute on a CPU) and cached."""
    check_bool("shipped", shipped)

    def build(stored: dict) -> FeatureNet:
        return FeatureNet(cache.restore(DigitClassifier(), stored), config, float(stored["test_accuracy"]),
                          float(stored["seconds"]))

    stored, _, _ = cache.load_or_create(asdict(config), lambda: _train(config, progress), name="digit-classifier",
                                        directory=directory, read_only=(cache.SHIPPED_DIR,) if shipped else (),
                                        check=build)
    return build(stored)


def _cli(argv=None) -> None:
    """``python -m mode_interp.fid [--field value ...] [--out DIR]``: train the digit classifier of one
    ClassifierConfig (the defaults: chapter 5's), write it into ``--out`` (default: the shipped checkpoints
    folder) and record the command, config and training time in ``MANIFEST.json`` there."""
    from .cli import parse_config

    def cpu_only(config, options, device):
        if device != "cpu":
            raise ValueError(f"--device must be 'cpu' for the digit classifier, got {device!r}")

    config, out, _, _ = parse_config(ClassifierConfig, argv, "python -m mode_interp.fid", _cli.__doc__,
                                     cache.SHIPPED_DIR, check=cpu_only)
    cache.check_writable(out, "--out")                 # before training, naming the flag
    stored, path, _ = cache.load_or_create(asdict(config), lambda: _train(config, progress=True),
                                           name="digit-classifier", directory=out, refresh=True)
    cache.record_manifest(out, path.name, argv, asdict(config), stored["seconds"], "cpu", None,
                          module="mode_interp.fid")
    print(f"wrote {path} ({stored['seconds']:.0f} s, test accuracy {stored['test_accuracy']:.4f})")


if __name__ == "__main__":
    _cli()
