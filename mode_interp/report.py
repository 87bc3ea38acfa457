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


def in_words(parts) -> str:
    """Parts as a list in prose: "a", "a and b", "a, b and c" ("" for none)."""
    parts = [str(p) for p in parts]
    return " and ".join([", ".join(parts[:-1]), parts[-1]] if len(parts) > 1 else parts)


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


def plain(value):
    """``value`` as plain Python (numpy / torch scalars and 0-d arrays to int, float or bool; containers
    element-wise): what myst-nb's ``glue`` and JSON records need (numpy >= 2 scalars break format specs)."""
    import numbers

    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:    # numpy / torch scalar
        value = value.item()
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return value


def glue_all(values: dict, prefix: str = "") -> dict:
    """Glue every ``values[key]`` under ``prefix + key`` (myst-nb ``glue``, not displayed), converted by
    :func:`plain`; return the dict of glued keys. The chapters' prose cites them as
    ``{glue:text}`prefix+key:fmt```."""
    from myst_nb import glue

    if not isinstance(values, dict):
        raise TypeError(f"values must be a dict of name -> value, got {type(values).__name__}")
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a str, got {type(prefix).__name__}")
    out = {}
    for key, value in values.items():
        if not isinstance(key, str) or not key.replace("_", "").isalnum():
            raise ValueError(f"glue keys must be names of letters, digits and _, got {key!r}")
        out[prefix + key] = plain(value)
        glue(prefix + key, out[prefix + key], display=False)
    return out


def glue_tables(tables: dict, numbers: dict, prefix: str = "") -> dict:
    """Glue ``numbers`` (:func:`glue_all`) and each Markdown string ``tables[name]`` as ``name + "_table"``
    (an ``IPython.display.Markdown``, for the prose's ``{glue:md}`` directive), all under ``prefix``; return
    the dict of glued keys. ``(tables, numbers)`` is what the report functions of a section return."""
    from IPython.display import Markdown

    if not isinstance(tables, dict):
        raise TypeError(f"tables must be a dict of name -> Markdown string, got {type(tables).__name__}")
    for name, table in tables.items():
        if not isinstance(table, str):
            raise TypeError(f"tables[{name!r}] must be a Markdown string, got {type(table).__name__}")
    if not isinstance(numbers, dict):
        raise TypeError(f"numbers must be a dict of name -> value, got {type(numbers).__name__}")
    return glue_all(numbers | {f"{name}_table": Markdown(t) for name, t in tables.items()}, prefix)


def merge_checks(*parts) -> tuple:
    """``(claims, sanity)`` for :func:`check` from a chapter's sections: each part a dict of claims, or a
    ``(claims, sanity)`` pair. A name given twice is a ValueError (one check must not silently replace
    another)."""
    merged = ({}, {})
    for i, part in enumerate(parts):
        if isinstance(part, dict):
            part = (part, {})
        if not (isinstance(part, tuple) and len(part) == 2 and all(isinstance(g, dict) for g in part)):
            raise TypeError(f"parts[{i}] must be a dict of claims or a (claims, sanity) pair of dicts, got "
                            f"{type(part).__name__}")
        for into, group in zip(merged, part):
            twice = sorted(set(into) & set(group))
            if twice:
                raise ValueError(f"parts[{i}] repeats the check(s) {twice}")
            into.update(group)
    return merged


def check(claims: dict, sanity: dict | None = None) -> None:
    """A chapter's check cell: print ``PASS/FAIL [claim] name`` for each claim (can fail if the science is
    wrong) and ``[sanity]`` for each sanity check (true by construction or arithmetic), then assert that
    none failed (AssertionError listing the failures: a failed claim fails the build and CI)."""
    for name, group in (("claims", claims), ("sanity", sanity or {})):
        if not isinstance(group, dict):
            raise TypeError(f"{name} must be a dict of description -> bool, got {type(group).__name__}")
    failed = []
    for kind, group in (("claim", claims), ("sanity", sanity or {})):
        for name, ok in group.items():
            ok = bool(plain(ok))
            print(("PASS " if ok else "FAIL ") + f"[{kind}] {name}")
            if not ok:
                failed.append(f"[{kind}] {name}")
    assert not failed, failed
