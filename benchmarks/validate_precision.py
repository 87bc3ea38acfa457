"""bfloat16 against float32 on the shipped models: does the fast engine change the science?

    python benchmarks/validate_precision.py [--only 1d grid shapes training] [--n-toy 20000] [--n-shapes 400]
        [--allow-emulated] [--json benchmarks/precision_validation.json]

Sampling (same seed, same noise, :func:`mode_interp.engine_check.compare_toy` / ``compare_shapes``): the
shipped 1-D {1,2,3} model (chapter 2's main model), the shipped 2-D grid (10k + 4k steps) and chapter 3's
SIMPLE SHAPES U-Net. Training (:func:`mode_interp.engine_check.compare_training`): chapter 5's small 1-D
recipe (with its step decay) trained in float32 and in bfloat16 for ``--train-seeds`` seeds, sampled in
float32.

On a CPU without native bfloat16 the engine falls back to float32, and the comparison would compare float32
with itself. ``--allow-emulated`` forces bfloat16 there (oneDNN's emulation: the same bfloat16 rounding of
the products' inputs and outputs with float32 accumulation, several times slower): a valid check of the
numerics, not of speed. Results merge into the JSON file (one key per study), with command, torch, CPU
capability and wall seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import sys
import time
from pathlib import Path

import torch

import mode_interp as mi
from mode_interp import engine_check, precision
from mode_interp.image_train import ShapesConfig, load_or_train_shapes
from mode_interp.train import ToyConfig, load_or_train

MAIN_1D = ToyConfig(n_train=20_000, steps=3_000).continued(1_000, 1e-4)          # chapter 2's main model
GRID = ToyConfig(data="grid_25", n_train=100_000, steps=10_000).continued(4_000, 1e-4)
TRAIN_RECIPE = dict(width=64, n_train=10_000, batch_size=2_000, lr=2e-3, steps=4_000, late_from=3_000,
                    late_lr=1e-4)                          # chapter 5's 1-D recipe (3,000 steps + 1,000 at 1e-4)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", default=["1d", "grid", "shapes", "training"],
                        choices=["1d", "grid", "shapes", "training"])
    parser.add_argument("--n-toy", type=int, default=20_000)
    parser.add_argument("--n-shapes", type=int, default=400)
    parser.add_argument("--shapes-steps", type=int, default=100)
    parser.add_argument("--train-seeds", type=int, default=3)
    parser.add_argument("--allow-emulated", action="store_true")
    parser.add_argument("--json", default=str(Path(__file__).with_name("precision_validation.json")))
    args = parser.parse_args()
    mi.configure_threads()
    native = precision.bf16_native("cpu")
    path = Path(args.json)
    results = json.loads(path.read_text()) if path.exists() else {}
    meta = {"command": "python benchmarks/validate_precision.py " + " ".join(sys.argv[1:]),
            "torch": torch.__version__, "threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "bf16_native": native,
            "emulated": (not native) and args.allow_emulated, "machine": platform.processor() or platform.machine(),
            "date": time.strftime("%Y-%m-%d")}
    studies = {
        "1d": lambda: engine_check.compare_toy(load_or_train(MAIN_1D), args.n_toy, seed=7),
        "grid": lambda: engine_check.compare_toy(load_or_train(GRID), args.n_toy, seed=7),
        "shapes": lambda: engine_check.compare_shapes(load_or_train_shapes(ShapesConfig()), args.n_shapes,
                                                      seed=7, steps=args.shapes_steps),
        "training": lambda: [engine_check.compare_training(ToyConfig(seed=seed, data_seed=seed, **TRAIN_RECIPE),
                                                           args.n_toy, sample_seed=7)
                             for seed in range(args.train_seeds)],
    }
    for name in args.only:
        start = time.perf_counter()
        with precision.allow_emulated() if args.allow_emulated else contextlib.nullcontext():
            out = studies[name]()
        results[name] = {"result": out, **meta, "wall_seconds": time.perf_counter() - start}
        path.write_text(json.dumps(results, indent=1, default=float) + "\n")
        print(name, json.dumps(out, default=float)[:2000], flush=True)


if __name__ == "__main__":
    main()
