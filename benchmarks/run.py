"""Speed and memory benchmarks: the package's engine against the plain implementation, side by side.

    python benchmarks/run.py [--steps 40] [--quick]

Every ratio is measured in one process, alternating the two implementations, so machine noise hits
both. Sampling throughput is measured over ``--steps`` reverse steps and reported as samples/s for the
paper's full 1000-step chain (the cost of a step does not depend on t). Peak memory of collecting the
last-10-step x0_hat window for 500k samples runs in a fresh subprocess (VmHWM).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

import mode_interp as mi
from mode_interp.models import ToyMLP
from mode_interp.plain import plain_eps, plain_sample

FULL_T = 1000


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def sampling(batch: int, steps: int, repeats: int, chunk: int) -> dict:
    model = ToyMLP(2)
    schedule = mi.linear_schedule(T=steps)
    fast = lambda: mi.sample(model.eps_for_sampling(), batch, 2, schedule,  # noqa: E731
                             torch.Generator().manual_seed(0),
                             window=min(10, steps), chunk_size=chunk)
    plain = lambda: plain_sample(model, batch, schedule, torch.Generator().manual_seed(0))  # noqa: E731
    t_fast, t_plain = best_of(fast, repeats), best_of(plain, repeats)
    per_sample = lambda t: batch / (t * FULL_T / steps)  # noqa: E731  samples/s for a 1000-step chain
    return {"batch": batch, "steps_timed": steps, "chunk": chunk,
            "fast_samples_per_s": per_sample(t_fast), "plain_samples_per_s": per_sample(t_plain),
            "ratio": t_plain / t_fast}


def training(batch: int, steps: int, repeats: int) -> dict:
    schedule = mi.linear_schedule()
    x0 = mi.grid_25().sample(batch, torch.Generator().manual_seed(0))

    def run(use_fast: bool):
        model = ToyMLP(2)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        g = torch.Generator().manual_seed(0)
        eps_fn = model if use_fast else (lambda x, t: plain_eps(model, x, t))
        for _ in range(steps):
            loss = mi.eps_mse_loss(eps_fn, x0, schedule, g)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    run(True), run(False)                                    # warm-up
    t_fast, t_plain = best_of(lambda: run(True), repeats), best_of(lambda: run(False), repeats)
    return {"batch": batch, "fast_s_per_step": t_fast / steps, "plain_s_per_step": t_plain / steps,
            "ratio": t_plain / t_fast}


def window_memory(n: int, T: int) -> dict:
    child = Path(__file__).with_name("window_child.py")
    out = subprocess.run([sys.executable, str(child), str(n), str(T)], capture_output=True,
                         text=True, check=True).stdout.split()
    base_kib, peak_kib = int(out[0]), int(out[1])
    return {"n": n, "T": T, "peak_rss_mib": peak_kib / 1024, "rss_before_sampling_mib": base_kib / 1024,
            "plain_trajectory_mib_at_T1000": n * FULL_T * 2 * 4 / 2 ** 20}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40, help="reverse steps timed per sampling run")
    parser.add_argument("--chunk", type=int, default=2048, help="chunk size of the fast sampler")
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    mi.configure_threads()
    q = args.quick
    results = {"torch_threads": torch.get_num_threads(), "sampling": [], "training": None, "window": None}
    for batch in ((2_000,) if q else (10_000, 100_000)):
        r = sampling(batch, 5 if q else args.steps, 1 if q else 2, args.chunk)
        results["sampling"].append(r)
        print(f"sampling 2D, batch {batch:>7,}: fast {r['fast_samples_per_s']:8.0f} samples/s | plain "
              f"{r['plain_samples_per_s']:8.0f} samples/s | ratio {r['ratio']:.2f}x  "
              f"(timed over {r['steps_timed']} steps, scaled to {FULL_T})", flush=True)
    r = training(2_000 if q else 10_000, 3 if q else 20, 1 if q else 3)
    results["training"] = r
    print(f"training step, batch {r['batch']:,}: fast {r['fast_s_per_step'] * 1e3:.1f} ms | plain "
          f"{r['plain_s_per_step'] * 1e3:.1f} ms | ratio {r['ratio']:.2f}x", flush=True)
    r = window_memory(20_000 if q else 500_000, 12 if q else 50)
    results["window"] = r
    print(f"x0_hat window (last 10 steps), {r['n']:,} samples: peak RSS {r['peak_rss_mib']:.0f} MiB "
          f"(process before sampling: {r['rss_before_sampling_mib']:.0f} MiB; keeping the whole 1000-step "
          f"trajectory would need {r['plain_trajectory_mib_at_T1000']:.0f} MiB for x0_hat alone)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
