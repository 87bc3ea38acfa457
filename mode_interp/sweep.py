"""``python -m mode_interp.sweep SPEC``: expand a grid of experiment specs into tasks and run them on Dask.

The spec file (JSON, or YAML for ``.yaml`` / ``.yml``)::

    {
      "name": "loop_1d",                  # the experiment folder: records and index.json go to OUT/name/
      "experiment": "recursive_arm",      # a registered experiment (mode_interp.experiments)
      "spec": {"loop": {"base": {...}, "generations": 5, "oversample": 1.025}},   # the fixed part
      "grid": {"seed": [0, 1, 2, 3, 4], "arm": ["none", "variance", "random"]},   # every combination
      "note": "free text, copied into the index"
    }

``grid`` keys are fields of the experiment's spec; a dotted key sets a nested field
(``"loop.oversample": [1.025, 1.25]``, ``"loop.base.n_train": [1000, 10000]``). One task per combination,
in the order of the grid's keys (the last varies fastest).

Running:

* default: an embedded ``LocalCluster``, one worker process per core (``--workers N``), one torch thread
  each (``--threads-per-worker``);
* ``--scheduler tcp://HOST:8786``: an existing Dask cluster (``dask scheduler`` and ``dask worker``
  processes, dask-jobqueue on SLURM, Kubernetes); workers need this package installed, and should share
  ``MODE_INTERP_CACHE`` (a shared folder) if tasks are to reuse each other's trained models;
* ``--serial``: in this process, no Dask (the reference the parallel paths are tested against).

A task whose record already exists in ``OUT/name/`` is skipped (the cache), so an interrupted sweep
resumes where it stopped; work several tasks share (a loop's generation 0) runs once, first. A failing
task is reported with its spec and traceback while the others go on (exit status 1 at the end); a worker
that dies mid-task has its task rescheduled on another worker by Dask. Records are written by this
process, atomically, as tasks finish, and so is ``OUT/name/index.json``: one entry per task (its grid
values, spec, seed, status, seconds, threads, record file, or error) and the totals (tasks, computing
seconds, and CPU hours = computing seconds x torch threads, with shared work counted once), plus a
``calls`` history of the sweeps that wrote it.

Exit status: 0 all tasks done, 1 some task failed, 2 a usage error (bad spec file or option).
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import os
import sys
import time
import traceback
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import cache
from .experiments import records
from .runtime import restore_malloc

DEFAULT_OUT = records.SHIPPED_RESULTS


class SweepError(ValueError):
    """A usage error in a sweep spec (exit status 2)."""


# ---------------------------------------------------------------- spec file

def read_spec(path) -> dict:
    """The sweep file at ``path`` (JSON or YAML), checked: ``name``, ``experiment``, ``spec``, ``grid``."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise SweepError(f"cannot read the sweep file {path}: {e}") from e
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml
            sweep = yaml.safe_load(text)
        else:
            sweep = json.loads(text)
    except Exception as e:
        raise SweepError(f"{path} is not valid {'YAML' if path.suffix in ('.yaml', '.yml') else 'JSON'}: {e}") from e
    return check_sweep(sweep, str(path))


def check_sweep(sweep, where: str = "sweep") -> dict:
    if not isinstance(sweep, dict):
        raise SweepError(f"{where}: the top level must be a mapping, got {type(sweep).__name__}")
    allowed = {"name", "experiment", "spec", "grid", "note"}
    unknown = sorted(set(sweep) - allowed)
    if unknown:
        raise SweepError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    name = sweep.get("name")
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "-_." for c in name) or name[0] == ".":
        raise SweepError(f"{where}: name must be a folder name (letters, digits, '-', '_', '.'), got {name!r}")
    if sweep.get("experiment") not in records.EXPERIMENTS:
        raise SweepError(f"{where}: experiment must be one of {sorted(records.EXPERIMENTS)}, got "
                         f"{sweep.get('experiment')!r}")
    if not isinstance(sweep.get("spec", {}), dict):
        raise SweepError(f"{where}: spec must be a mapping of the experiment's fields")
    grid = sweep.get("grid", {})
    if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
        raise SweepError(f"{where}: grid must map spec fields to non-empty lists of values, got {grid!r}")
    return {"name": name, "experiment": sweep["experiment"], "spec": sweep.get("spec", {}), "grid": grid,
            "note": sweep.get("note", "")}


def _set(d: dict, dotted: str, value) -> None:
    keys = dotted.split(".")
    for k in keys[:-1]:
        if not isinstance(d.get(k), dict):
            raise SweepError(f"grid key {dotted!r}: {k!r} is not a mapping in the spec")
        d = d[k]
    d[keys[-1]] = value


def expand(sweep: dict) -> list:
    """The tasks of a checked sweep: ``[{"grid": {key: value}, "spec": full spec dict}]``; each spec is
    validated by the experiment's spec class (a bad value is a :class:`SweepError` naming the task)."""
    keys = list(sweep["grid"])
    tasks = []
    for values in itertools.product(*(sweep["grid"][k] for k in keys)):
        spec = copy.deepcopy(sweep["spec"])
        point = dict(zip(keys, values))
        for k, v in point.items():
            _set(spec, k, v)
        try:
            canonical = records.as_spec(sweep["experiment"], spec).to_dict()
        except (TypeError, ValueError) as e:
            raise SweepError(f"task {point}: {e}") from e
        tasks.append({"grid": point, "spec": canonical})
    return tasks


# ---------------------------------------------------------------- tasks (run on the workers)

def _prepare(name: str, spec: dict, threads: int) -> None:
    torch.set_num_threads(threads)
    restore_malloc()
    experiment = records.get(name)
    experiment.prepare(records.as_spec(name, spec))


def _task(name: str, spec: dict, command: str, threads: int, *after) -> dict:
    """Compute one record (``after``: futures this task waits for, e.g. the shared generation 0). A Dask
    worker's allocator is first put back to glibc's defaults (:func:`mode_interp.runtime.restore_malloc`:
    the nanny's setting made toy training 2.4x slower)."""
    torch.set_num_threads(threads)
    restore_malloc()
    return records.compute(name, spec, command)


# ---------------------------------------------------------------- the sweep

def _index_path(out: Path, sweep: dict) -> Path:
    return Path(out) / sweep["name"] / "index.json"


def write_index(out: Path, sweep: dict, entries: list, call: dict) -> dict:
    """Write ``OUT/name/index.json`` atomically (module docstring); earlier calls are kept in ``calls``."""
    path = _index_path(out, sweep)
    old = json.loads(path.read_text()) if path.exists() else {}
    done = [e for e in entries if e["status"] == "done"]
    shared, shared_cpu = {}, {}
    for e in done:                   # work several records share, counted once (the largest report of it)
        if e.get("shared_key"):
            shared[e["shared_key"]] = max(shared.get(e["shared_key"], 0.0), e.get("shared_seconds", 0.0))
            shared_cpu[e["shared_key"]] = max(shared_cpu.get(e["shared_key"], 0.0),
                                              e.get("shared_seconds", 0.0) * e.get("threads", 1))
    cpu = sum(e.get("computed_seconds", 0.0) for e in done) + sum(shared.values())     # wall seconds of work
    thread_seconds = (sum(e.get("computed_seconds", 0.0) * e.get("threads", 1) for e in done)
                      + sum(shared_cpu.values()))
    index = {"name": sweep["name"], "experiment": sweep["experiment"], "schema": cache.CACHE_SCHEMA,
             "note": sweep["note"], "spec": sweep["spec"], "grid": sweep["grid"],
             "totals": {"tasks": len(entries), "done": len(done),
                        "failed": sum(e["status"] == "failed" for e in entries),
                        "pending": sum(e["status"] == "pending" for e in entries),
                        "computed_seconds": round(cpu, 1), "cpu_hours": round(thread_seconds / 3600, 3)},
             "calls": [c for c in old.get("calls", []) if c.get("started") != call["started"]] + [call],
             "tasks": entries}
    text = json.dumps(index, indent=1, allow_nan=True) + "\n"
    cache.atomic_write(path, lambda f: f.write(text.encode()), mode=0o644)
    return index


def _entry(task: dict, status: str, record_name: str, record: dict | None = None, error: str = "") -> dict:
    entry = {"grid": task["grid"], "spec": task["spec"], "seed": task["spec"].get("seed"), "status": status,
             "record": record_name}
    if record is not None:
        entry.update({"seconds": record.get("wall_seconds"), "computed_seconds": record.get("computed_seconds", 0.0),
                      "threads": record.get("threads", 1),      # torch threads: CPU hours = seconds x threads
                      **({"shared_key": record["shared_key"], "shared_seconds": record.get("shared_seconds", 0.0)}
                         if record.get("shared_key") else {})})
    if error:
        entry["error"] = error
    return entry


def run_sweep(sweep: dict, out=DEFAULT_OUT, scheduler: str | None = None, workers: int | None = None,
              threads_per_worker: int = 1, serial: bool = False, progress: bool = True,
              command: str | None = None) -> dict:
    """Run a checked sweep (see the module docstring); returns the index written."""
    out = Path(out)
    folder = out / sweep["name"]
    name = sweep["experiment"]
    experiment = records.get(name)
    tasks = expand(sweep)
    command = command or "python -m mode_interp.sweep " + " ".join(sys.argv[1:])
    call = {"command": command, "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "torch": torch.__version__,
            "threads_per_worker": threads_per_worker,
            "engine": "serial" if serial else (scheduler or f"LocalCluster({workers or os.cpu_count()} workers)")}
    start = time.perf_counter()
    entries, todo = [], []
    for i, task in enumerate(tasks):
        file = records.record_file(name, task["spec"])
        found, _ = records.find(name, task["spec"], folder, shipped=False)
        if found is not None:
            entries.append(_entry(task, "done", file, found) | {"cached": True})
        else:
            entries.append(_entry(task, "pending", file))
            todo.append(i)
    call.update({"tasks": len(tasks), "found": len(tasks) - len(todo)})
    write_index(out, sweep, entries, call)

    def finish(i: int, record: dict | None, error: str = "") -> None:
        task = tasks[i]
        if record is not None:
            records.write(record, folder / entries[i]["record"])
            entries[i] = _entry(task, "done", entries[i]["record"], record)
        else:
            entries[i] = _entry(task, "failed", entries[i]["record"], error=error)
            print(f"\ntask {task['grid']} FAILED (spec {json.dumps(task['spec'])}):\n{error}", file=sys.stderr)
        call["wall_seconds"] = round(time.perf_counter() - start, 1)
        write_index(out, sweep, entries, call)

    bar = tqdm(total=len(tasks), initial=len(tasks) - len(todo), disable=not progress, desc=sweep["name"],
               unit="task")
    try:
        if serial:
            _run_serial(name, experiment, tasks, todo, command, threads_per_worker, finish, bar)
        else:
            _run_dask(name, experiment, tasks, todo, command, threads_per_worker, finish, bar, scheduler, workers)
    finally:
        bar.close()
    call["wall_seconds"] = round(time.perf_counter() - start, 1)
    return write_index(out, sweep, entries, call)


def _run_serial(name, experiment, tasks, todo, command, threads, finish, bar) -> None:
    prepared = set()
    for i in todo:
        spec = tasks[i]["spec"]
        try:
            if experiment.prepare is not None:
                key = experiment.prepare_key(records.as_spec(name, spec))
                if key not in prepared:
                    _prepare(name, spec, threads)
                    prepared.add(key)
            record, error = _task(name, spec, command, threads), ""
        except Exception:
            record, error = None, traceback.format_exc()
        finish(i, record, error)
        bar.update(1)


def _run_dask(name, experiment, tasks, todo, command, threads, finish, bar, scheduler, workers) -> None:
    from dask.distributed import Client, LocalCluster, as_completed

    if scheduler:
        client, cluster = Client(scheduler), None     # connect timeout: dask config distributed.comm.timeouts.connect
        try:
            client.wait_for_workers(1, timeout=120)
        except TimeoutError as e:
            client.close()
            raise RuntimeError(f"the scheduler at {scheduler} has no workers (waited 120 s); start some with "
                               f"`dask worker {scheduler}`") from e
    else:
        workers = workers or os.cpu_count() or 1
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    try:
        prepares, futures = {}, {}
        for i in todo:
            spec = tasks[i]["spec"]
            after = []
            if experiment.prepare is not None:
                key = experiment.prepare_key(records.as_spec(name, spec))
                if key not in prepares:
                    prepares[key] = client.submit(_prepare, name, spec, threads, key=f"prepare-{key}", pure=False)
                after = [prepares[key]]
            fut = client.submit(_task, name, spec, command, threads, *after,
                                key=f"{name}-{records.record_file(name, spec)[:-5]}", pure=False)
            futures[fut.key] = (i, fut)
        for fut in as_completed([f for _, f in futures.values()]):
            i = futures[fut.key][0]
            if fut.status == "finished":
                finish(i, fut.result())
            else:
                try:
                    exc = fut.exception()
                    tb = "".join(traceback.format_exception(type(exc), exc, fut.traceback()))
                except Exception as e:             # cancelled, or the scheduler lost it
                    tb = f"{type(e).__name__}: {e} (task status {fut.status})"
                finish(i, None, tb)
            bar.update(1)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def sweep_records(sweep, compute: bool = False, directory=None) -> list:
    """The records of every task of ``sweep`` (a checked sweep or a spec file path), in task order: found in
    ``directory`` (default: ``cache_dir()/results/<name>``) or the shipped results, else computed into
    ``directory`` when ``compute`` (in this process, serially), else a LookupError naming the missing task.
    This is how a chapter reads a sweep without touching the shipped index."""
    sweep = read_spec(sweep) if not isinstance(sweep, dict) else sweep
    directory = Path(directory) if directory is not None else cache.cache_dir() / "results" / sweep["name"]
    return [records.run(sweep["experiment"], task["spec"], directory, compute_missing=compute)
            for task in expand(sweep)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mode_interp.sweep", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("spec", help="the sweep file (JSON, or YAML for .yaml / .yml)")
    parser.add_argument("--out", default=str(DEFAULT_OUT),
                        help="results folder; records and index.json go to OUT/<name>/ (default: the package's "
                             "shipped results)")
    engine = parser.add_mutually_exclusive_group()
    engine.add_argument("--scheduler", help="address of an existing Dask scheduler, e.g. tcp://HOST:8786")
    engine.add_argument("--serial", action="store_true", help="run the tasks in this process, without Dask")
    parser.add_argument("--workers", type=int, default=None,
                        help="LocalCluster worker processes (default: one per core)")
    parser.add_argument("--threads-per-worker", type=int, default=1, help="torch threads per task (default 1)")
    parser.add_argument("--dry-run", action="store_true", help="list the tasks and which are already done")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        if args.workers is not None and args.workers < 1:
            raise SweepError(f"--workers must be >= 1, got {args.workers}")
        if args.threads_per_worker < 1:
            raise SweepError(f"--threads-per-worker must be >= 1, got {args.threads_per_worker}")
        if args.workers is not None and (args.scheduler or args.serial):
            raise SweepError("--workers applies to the embedded LocalCluster only (not with --scheduler/--serial)")
        sweep = read_spec(args.spec)
        expand(sweep)                                  # every task's spec is valid before anything runs
        if args.dry_run:
            folder = Path(args.out) / sweep["name"]
            for task in expand(sweep):
                found, path = records.find(sweep["experiment"], task["spec"], folder, shipped=False)
                print(f"{'done ' if found else 'to do'}  {json.dumps(task['grid'])}  {path.name}")
            return 0
    except SweepError as e:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return 2
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        index = run_sweep(sweep, args.out, args.scheduler, args.workers, args.threads_per_worker, args.serial,
                          not args.no_progress, "python -m mode_interp.sweep " + " ".join(argv))
    except (OSError, RuntimeError) as e:            # e.g. no scheduler at that address, or one without workers
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return 2
    totals = index["totals"]
    print(f"{sweep['name']}: {totals['done']} of {totals['tasks']} tasks done, {totals['failed']} failed; "
          f"{totals['cpu_hours']:.2f} CPU hours in the records; index: {_index_path(Path(args.out), sweep)}")
    return 1 if totals["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
