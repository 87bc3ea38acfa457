"""Execute the book's chapters in parallel into Jupyter Book's execution cache (the first step of `make book`).

Jupyter Book 1 executes a book's notebooks one after another, each in one kernel. On a 2-core machine a
kernel with two torch threads keeps both cores busy only part of the time (a training step of the toy MLP
runs 1.5x faster on two threads than on one, not 2x), so this step runs the chapters side by side instead:
a pool of ``os.cpu_count()`` processes (jupyter-cache's "local-parallel" executor), each chapter in its
own kernel with one torch thread (``MODE_INTERP_THREADS=1``), the longest chapters first (:data:`ORDER`).
Every executed notebook is stored in the jupyter-cache folder that ``_config.yml`` names
(``execute_notebooks: cache``), where ``jupyter-book build`` finds it and only renders it.

A chapter that fails (an error, or a failed claim in its check cell) is printed with its traceback, and
this command exits with status 1 after every other chapter has run. The cache is a hand-off, not a store:
`make book` deletes it before this step and after the build, so that a changed package can never be
rendered with a stale chapter (jupyter-cache keys a notebook by its code cells only).

    python tools/execute_book.py [--cache _build/.jupyter_cache] [--timeout 7200]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

import yaml
from jupyter_cache import get_cache
from jupyter_cache.cache.db import NbProjectRecord
from jupyter_cache.executors import load_executor

ROOT = Path(__file__).resolve().parents[1]
# longest first, so that no long chapter starts last (FAST wall times on one thread, in this order)
ORDER = ("02", "04", "03", "06", "05", "01", "engine")


def chapters(toc: Path = ROOT / "_toc.yml") -> list:
    """The notebooks of ``_toc.yml``, in :data:`ORDER` (chapters not listed there last, in toc order)."""
    files = [ROOT / f"{entry['file']}.ipynb" for entry in yaml.safe_load(toc.read_text())["chapters"]]
    files = [f for f in files if f.exists()]

    def rank(path: Path) -> int:
        return next((i for i, key in enumerate(ORDER) if path.stem.startswith(key)), len(ORDER))

    return sorted(files, key=rank)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", default=str(ROOT / "_build" / ".jupyter_cache"),
                        help="the jupyter-cache folder (as _config.yml's execute.cache)")
    parser.add_argument("--timeout", type=int, default=7200, help="seconds per cell (as _config.yml)")
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error(f"--timeout must be a positive number of seconds, got {args.timeout}")
    os.environ.setdefault("MODE_INTERP_THREADS", "1")          # inherited by every kernel
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cache = get_cache(args.cache)
    notebooks = chapters()
    for path in notebooks:
        cache.add_nb_to_project(str(path))
    start = time.perf_counter()
    print(f"executing {len(notebooks)} chapters, {os.cpu_count()} at a time, "
          f"MODE_INTERP_THREADS={os.environ['MODE_INTERP_THREADS']}: " + ", ".join(p.name for p in notebooks),
          flush=True)
    result = load_executor("local-parallel", cache=cache, logger=logging.getLogger("execute_book")).run_and_cache(
        timeout=args.timeout, allow_errors=False)
    for record in cache.list_cache_records():
        print(f"  {Path(record.uri).name}: {record.data.get('execution_seconds', float('nan')):.0f} s")
    print(f"all chapters: {time.perf_counter() - start:.0f} s of wall time", flush=True)
    failed = result.excepted + result.errored
    for uri in failed:
        print(f"\nFAILED {uri}\n{NbProjectRecord.record_from_uri(uri, cache.db).traceback or ''}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
