"""Small helpers that turn computed numbers into Markdown for the chapters (display with IPython)."""

from __future__ import annotations


def markdown_table(headers, rows) -> str:
    """A Markdown (MyST/GFM) table from a header sequence and an iterable of row sequences.

    Cells are converted with ``str``; format numbers before passing them.
    """
    headers = [str(h) for h in headers]
    rows = [[str(c) for c in row] for row in rows]
    if not headers:
        raise ValueError("headers must be a non-empty sequence")
    for i, row in enumerate(rows):
        if len(row) != len(headers):
            raise ValueError(f"rows[{i}] has {len(row)} cells, expected {len(headers)} (one per header)")
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
