"""Small helpers that turn computed numbers into Markdown for the chapters (display with IPython)."""

from __future__ import annotations


def markdown_table(headers, rows) -> str:
    """A Markdown (MyST/GFM) table from a header sequence and an iterable of row sequences.

    Cells are converted with ``str``; format numbers before passing them.
    """
    for name, value in (("headers", headers), ("rows", rows)):
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise ValueError(f"{name} must be a sequence (of cells / of row sequences), got {value!r}")
    headers = [str(h) for h in headers]
    rows = list(rows)
    for i, row in enumerate(rows):
        if isinstance(row, (str, bytes)) or not hasattr(row, "__iter__"):
            raise ValueError(f"rows[{i}] must be a sequence of cells, got {row!r}")
    rows = [[str(c) for c in row] for row in rows]
    if not headers:
        raise ValueError("headers must be a non-empty sequence")
    for i, row in enumerate(rows):
        if len(row) != len(headers):
            raise ValueError(f"rows[{i}] has {len(row)} cells, expected {len(headers)} (one per header)")
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def benchmark_table(rows) -> str:
    """The Markdown table of ``benchmarks/results.json`` (``python benchmarks/run.py``): one line per
    measured variant with its speed, its ratio to the plain implementation and, for a compiled variant, the
    compile time and the number of samples at which it pays for itself."""
    lines = []
    for r in rows:
        if r.get("kind") not in ("sampling", "training"):
            continue
        speed = (f"{r['per_second']:,.0f} samples/s" if "per_second" in r else f"{r['s_per_step'] * 1e3:.1f} ms/step")
        comp = f"{r['compile_seconds']:.1f}" if r.get("compile_seconds") is not None else ""
        if "compile_seconds" in r:
            be = f"{r['break_even_samples']:,.0f}" if r.get("break_even_samples") is not None else "never"
        else:
            be = ""
        lines.append([f"{r['kind']}, batch {r['batch']:,}", r["variant"], r["ran_as"], speed,
                      f"{r['ratio_vs_plain']:.2f}x", comp, be])
    return markdown_table(["measurement", "variant", "ran as", "speed", "ratio vs plain", "compile (s)",
                           "compile pays off after (samples)"], lines)
