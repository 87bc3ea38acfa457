"""Static checks of the chapters' sources (no execution): no chapter or package docstring points readers
at files outside the repository, and every section link has its target. (That every ``{glue:...}`key```
the prose cites was glued is checked on the executed chapters, in ``tests/test_book.py``.)"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))
def test_nothing_points_outside_the_repository():
    texts = [p for p in NOTEBOOKS] + [ROOT / "book" / "intro.md"] + sorted((ROOT / "mode_interp").rglob("*.py"))
    offenders = [str(p.relative_to(ROOT)) for p in texts
                 if re.search(r"paper[-_ ]notes|design\.md|\.\./shared", p.read_text())]
    assert not offenders, offenders


def test_every_section_link_has_its_target():
    """``[text](label)`` links to a ``(label)=`` target of some chapter (a missing one only warns in
    Sphinx, and the -W build then fails at its very end)."""
    texts = {p.name: "\n".join("".join(c["source"]) for c in json.loads(p.read_text())["cells"]
                               if c["cell_type"] == "markdown") for p in NOTEBOOKS}
    texts["intro.md"] = (ROOT / "book" / "intro.md").read_text()
    targets = {t for text in texts.values() for t in re.findall(r"^\(([\w-]+)\)=\s*$", text, re.M)}
    links = {(name, link) for name, text in texts.items()
             for link in re.findall(r"\]\(([A-Za-z][\w-]*)\)", text) if "." not in link}
    assert targets and links
    missing = sorted((name, link) for name, link in links if link not in targets)
    assert not missing, missing
