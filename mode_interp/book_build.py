"""Execute the book's chapters side by side before Jupyter Book renders them (``make book``).

Jupyter Book 1 executes its notebooks one after another, each on every core's torch threads, which the
book's small networks use poorly: on two cores a chapter runs barely faster on two threads than on one.
This command runs ``jobs`` chapters at a time instead, each kernel on one torch thread
(``MODE_INTERP_THREADS``), and stores every executed chapter in myst-nb's execution cache; the build then
runs in myst-nb's ``cache`` mode (``_config.yml``) and renders them from there.

The cache is emptied first, on every run: jupyter-cache keys a notebook by its code cells only, not by the
package or the environment, so a kept entry could show outputs of older code. Every chapter is therefore
executed afresh by each ``make book``, as before. A chapter that fails here is reported with its traceback
and the command exits 1 (the build would fail on it too); nothing is cached for it.

    python -m mode_interp.book_build [--jobs 2] [--cache _build/.jupyter_cache] [--timeout 7200] NOTEBOOK ...
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path


def _execute(path: str, timeout: int):
    """Run one notebook in its own folder; (path, executed notebook, seconds, traceback or None)."""
    import nbformat
    from jupyter_cache.executors.utils import single_nb_execution

    nb = nbformat.read(path, as_version=4)
    result = single_nb_execution(nb, cwd=str(Path(path).parent), timeout=timeout, allow_errors=False,
                                 meta_override=True)
    return path, nb, result.time, result.exc_string if result.err is not None else None


def execute_chapters(notebooks, cache_path, jobs: int = 2, timeout: int = 7200, threads: int = 1) -> dict:
    """Execute ``notebooks`` (paths), ``jobs`` at a time with ``threads`` torch threads per kernel, into a
    fresh jupyter-cache at ``cache_path``. Returns {path: (seconds, traceback or None)}; only the chapters
    that ran without an error are cached."""
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    from ._validate import check_int

    jobs = check_int("jobs", jobs, 1, 64)
    timeout = check_int("timeout", timeout, 1, None)
    threads = check_int("threads", threads, 1, 256)
    paths = [str(Path(p).resolve()) for p in notebooks]
    missing = [p for p in paths if not Path(p).is_file() or not p.endswith(".ipynb")]
    if not paths or missing:
        raise ValueError(f"notebooks must be existing .ipynb files, got {missing or 'none'}")
    cache = get_cache(str(cache_path))
    cache.clear_cache()
    os.environ["MODE_INTERP_THREADS"] = str(threads)      # inherited by every kernel
    done = {}
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(_execute, p, timeout) for p in paths]
        for future in as_completed(futures):
            path, nb, seconds, error = future.result()
            done[path] = (seconds, error)
            name = Path(path).name
            if error is None:
                cache.cache_notebook_bundle(CacheBundleIn(nb, path, data={"execution_seconds": seconds}),
                                            check_validity=False, overwrite=True)
                print(f"{name}: executed in {seconds:.1f} s", flush=True)
            else:
                print(f"{name}: FAILED after {seconds:.1f} s\n{error}", file=sys.stderr, flush=True)
    return done


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="+", help="the chapters, in the order they should start")
    parser.add_argument("--jobs", type=int, default=2, help="chapters executed at a time (default 2)")
    parser.add_argument("--cache", default="_build/.jupyter_cache", help="myst-nb's execution cache folder")
    parser.add_argument("--timeout", type=int, default=7200, help="seconds per cell (default 7200)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per kernel (default 1)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        done = execute_chapters(args.notebooks, args.cache, args.jobs, args.timeout, args.threads)
    except ValueError as e:
        parser.error(str(e))
    failed = [Path(p).name for p, (_, error) in done.items() if error is not None]
    print(f"{len(done) - len(failed)} of {len(done)} chapters executed in {time.perf_counter() - start:.0f} s "
          f"({args.jobs} at a time)" + (f"; failed: {', '.join(failed)}" if failed else ""), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
