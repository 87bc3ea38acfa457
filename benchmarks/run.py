"""Speed and memory benchmarks: every engine variant against the plain implementation, side by side.

    python benchmarks/run.py [--steps 40] [--quick] [--json benchmarks/results.json]

Variants (:mod:`mode_interp.precision`): ``plain`` (:mod:`mode_interp.plain`: per-row time embeddings,
whole batch at once, full trajectory kept, as the official code), ``float32`` (the engine, eager),
``float32+compile``, ``bfloat16`` and ``bfloat16+compile``. Every ratio is measured in one process,
alternating the variants (best of ``repeats``), so machine noise hits all of them. Sampling throughput is
timed over ``--steps`` reverse steps of the 2-D toy MLP and reported as samples/s of the paper's
1000-step chain (a step's cost does not depend on t); a compiled variant's compile time (its first call)
is reported apart, with the number of samples at which it pays for itself. A variant asked for bfloat16
on a CPU without native bfloat16 runs float32 (the engine's fallback): its row says so (``ran_as``).
The chunk rows time eager float32 sampling of the 1-D and 2-D MLPs at several chunk sizes against the
sampler's default on this thread count (:func:`mode_interp.diffusion.default_chunk_size`). Peak memory of the last-10-step x0_hat window for 500k samples runs in a fresh subprocess (VmHWM).

Output: a table on stdout, and with ``--json`` a list of rows with ``kind`` ("sampling" | "chunk" |
"training" | "memory"), ``batch``, ``variant``, ``ran_as``, ``per_second`` (samples/s) or ``s_per_step``,
``ratio_vs_plain``, each with the machine's description (torch, threads, CPU capability, native bfloat16).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch

import mode_interp as mi
from mode_interp import precision as P
from mode_interp.diffusion import default_chunk_size
from mode_interp.models import ToyMLP
from mode_interp.plain import plain_eps, plain_sample
from mode_interp.report import benchmark_table as table, markdown_table

FULL_T = 1000
VARIANTS = {"float32": ("float32", False), "float32+compile": ("float32", True),
            "bfloat16": ("bfloat16", False), "bfloat16+compile": ("bfloat16", True)}


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def ran_as(precision: str, compile: bool, compiled: bool = None) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = P.resolve(precision)
    return p + ("+compile" if (compile if compiled is None else compiled) else "")


def sampling(batch: int, steps: int, repeats: int, chunk: int | None) -> list:
    model = ToyMLP(2)
    schedule = mi.linear_schedule(T=steps)
    per_sample = lambda t: batch / (t * FULL_T / steps)  # noqa: E731  samples/s of a 1000-step chain
    fns, compile_s, compiled, first_compile = {}, {}, {}, {}
    for name, (precision, compile) in VARIANTS.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            eps = model.eps_for_sampling(precision, compile)
        run = lambda eps=eps: mi.sample(eps, batch, 2, schedule, torch.Generator().manual_seed(0),  # noqa: E731
                                        window=min(10, steps), chunk_size=chunk)
        start = time.perf_counter()
        result = run()                                     # warm-up; for a compiled variant, the compile
        first = time.perf_counter() - start
        fns[name], compiled[name] = run, result.compiled
        # a variant that runs the same graph as an earlier one (bfloat16+compile on a CPU without native
        # bfloat16 is float32+compile) finds it compiled: it is charged the earlier variant's compile
        key = ran_as(precision, compile, result.compiled)
        compile_s[name] = first_compile.setdefault(key, first) if compile else None
    fns["plain"] = lambda: plain_sample(model, batch, schedule, torch.Generator().manual_seed(0))
    times = {name: [] for name in fns}
    for _ in range(repeats):                               # alternate the variants
        for name, fn in fns.items():
            times[name].append(best_of(fn, 1))
    t = {name: min(v) for name, v in times.items()}
    rows = [{"kind": "sampling", "batch": batch, "variant": "plain", "ran_as": "plain",
             "per_second": per_sample(t["plain"]), "ratio_vs_plain": 1.0, "steps_timed": steps}]
    for name, (precision, compile) in VARIANTS.items():
        row = {"kind": "sampling", "batch": batch, "variant": name, "ran_as": ran_as(precision, compile, compiled[name]),
               "per_second": per_sample(t[name]), "ratio_vs_plain": t["plain"] / t[name], "steps_timed": steps,
               "chunk": chunk}
        if compile:
            eager = t[name.replace("+compile", "")]
            # the first call = compile + one timed run; the samples at which the compile time is paid back
            row["compile_seconds"] = max(compile_s[name] - t[name], 0.0)
            gain = 1 / per_sample(eager) - 1 / per_sample(t[name])      # seconds saved per sample
            row["break_even_samples"] = row["compile_seconds"] / gain if gain > 0 else None
        rows.append(row)
    return rows


def chunks(batch: int, steps: int, repeats: int, sizes=(256, 512, 2_048, 8_192)) -> list:
    """Eager float32 sampling of the 1-D and 2-D toy MLPs with the batch cut into chunks of each size
    (alternated, best of ``repeats``): the sampler's default chunk against the others on this CPU's caches."""
    schedule = mi.linear_schedule(T=steps)
    rows, default = [], default_chunk_size()
    sizes = sorted(set(sizes) | {default})
    for dim in (1, 2):
        eps = ToyMLP(dim).eps_for_sampling("float32")
        times = {c: [] for c in sizes}
        for _ in range(repeats):
            for c in sizes:
                times[c].append(best_of(lambda: mi.sample(eps, batch, dim, schedule, torch.Generator().manual_seed(0),
                                                          chunk_size=c), 1))
        t = {c: min(v) for c, v in times.items()}
        rows += [{"kind": "chunk", "batch": batch, "dim": dim, "chunk": c, "default": c == default,
                  "threads": torch.get_num_threads(), "per_second": batch / (t[c] * FULL_T / steps),
                  "ratio_vs_default": t[default] / t[c]}
                 for c in sizes]
    return rows


def training(batch: int, steps: int, repeats: int) -> list:
    schedule = mi.linear_schedule()
    x0 = mi.grid_25().sample(batch, torch.Generator().manual_seed(0))

    def run(variant: str):
        model = ToyMLP(2)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        g = torch.Generator().manual_seed(0)
        if variant == "plain":
            eps_fn = lambda x, t: plain_eps(model, x, t)  # noqa: E731
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                p = P.resolve(variant)
            eps_fn = lambda x, t: model(x, t, p)  # noqa: E731
        for _ in range(steps):
            loss = mi.eps_mse_loss(eps_fn, x0, schedule, g)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    variants = ("plain", "float32", "bfloat16")
    for v in variants:
        run(v)                                             # warm-up
    times = {v: [] for v in variants}
    for _ in range(repeats):
        for v in variants:
            times[v].append(best_of(lambda: run(v), 1) / steps)
    t = {v: min(x) for v, x in times.items()}
    return [{"kind": "training", "batch": batch, "variant": v, "ran_as": "plain" if v == "plain" else ran_as(v, False),
             "s_per_step": t[v], "ratio_vs_plain": t["plain"] / t[v]} for v in variants]


def window_memory(n: int, T: int) -> dict:
    child = Path(__file__).with_name("window_child.py")
    out = subprocess.run([sys.executable, str(child), str(n), str(T)], capture_output=True,
                         text=True, check=True).stdout.split()
    base_kib, peak_kib = int(out[0]), int(out[1])
    return {"kind": "memory", "batch": n, "variant": "float32", "ran_as": "float32", "T": T,
            "peak_rss_mib": peak_kib / 1024, "rss_before_sampling_mib": base_kib / 1024,
            "plain_trajectory_mib_at_T1000": n * FULL_T * 2 * 4 / 2 ** 20}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40, help="reverse steps timed per sampling run")
    parser.add_argument("--chunk", type=int, default=None, help="chunk size of the engine's sampler "
                        "(default: mode_interp.diffusion.default_chunk_size() for the thread count)")
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--readme", help="rewrite the table between the benchmark-table markers of this file")
    args = parser.parse_args()
    mi.configure_threads()
    q = args.quick
    rows = []
    for batch in ((2_000,) if q else (10_000, 100_000)):
        rows += sampling(batch, 5 if q else args.steps, 1 if q else 2, args.chunk)
        print(table(rows[-5:]), flush=True)
    rows += chunks(2_000 if q else 50_000, 3 if q else 20, 1 if q else 3)
    print(markdown_table(["samples", "dim", "chunk (rows)", "speed", "vs the default chunk"],
                         [[f"{r['batch']:,}", r["dim"], f"{r['chunk']:,}" + (" (default)" if r["default"] else ""),
                           f"{r['per_second']:,.0f} samples/s", f"{r['ratio_vs_default']:.2f}x"]
                          for r in rows if r["kind"] == "chunk"]), flush=True)
    rows += training(2_000 if q else 10_000, 3 if q else 10, 1 if q else 3)
    r = window_memory(20_000 if q else 500_000, 12 if q else 50)
    rows.append(r)
    print(table(rows))
    print(f"x0_hat window (last 10 steps), {r['batch']:,} samples: peak RSS {r['peak_rss_mib']:.0f} MiB "
          f"(process before sampling: {r['rss_before_sampling_mib']:.0f} MiB; keeping the whole 1000-step "
          f"trajectory would need {r['plain_trajectory_mib_at_T1000']:.0f} MiB for x0_hat alone)")
    machine = {"torch": torch.__version__, "torch_threads": torch.get_num_threads(),
               "cpu_capability": torch.backends.cpu.get_cpu_capability(), "bf16_native": P.bf16_native("cpu"),
               "machine": platform.processor() or platform.machine(), "date": time.strftime("%Y-%m-%d"),
               "command": "python benchmarks/run.py " + " ".join(sys.argv[1:])}
    if args.json:
        Path(args.json).write_text(json.dumps([{**r, **machine} for r in rows], indent=1) + "\n")
    if args.readme:
        readme = Path(args.readme).read_text()
        head, rest = readme.split("<!-- benchmark-table -->", 1)
        tail = rest.split("<!-- /benchmark-table -->", 1)[1]
        note = (f"Recorded {machine['date']} with `{machine['command']}`: torch {machine['torch']}, "
                f"{machine['torch_threads']} threads, CPU capability {machine['cpu_capability']}, native bfloat16: "
                f"{'yes' if machine['bf16_native'] else 'no'}; peak RSS of the 500k-sample x0_hat window "
                f"{r['peak_rss_mib']:.0f} MiB.")
        Path(args.readme).write_text(f"{head}<!-- benchmark-table -->\n{note}\n\n{table(rows)}\n"
                                     f"<!-- /benchmark-table -->{tail}")


if __name__ == "__main__":
    main()
