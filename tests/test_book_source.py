"""Static checks of the chapters' sources (no execution): every number the prose cites through
``{glue:...}`key``` is glued by a code cell of the same chapter, and no chapter or package docstring
points readers at files outside the repository."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))
REFERENCE = re.compile(r"\{glue(?::\w+)?\}`([A-Za-z0-9_]+)")
GLUED = re.compile(r"""glue\(\s*(f?)(["'])(.+?)\2""")


def _glued_patterns(code: str) -> list:
    """The keys a chapter's code glues, as regexes (an f-string key's {...} parts match anything)."""
    out = []
    for is_f, _, key in GLUED.findall(code):
        parts = re.split(r"\{[^}]*\}", key) if is_f else [key]
        out.append(re.compile("^" + ".+".join(re.escape(p) for p in parts) + "$"))
    return out


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_glue_reference_is_glued(notebook):
    cells = json.loads(notebook.read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    prose = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    patterns = _glued_patterns(code)
    assert REFERENCE.findall(prose) and patterns, f"{notebook.name}: no glue references found (the regexes are stale?)"
    missing = sorted({key for key in REFERENCE.findall(prose) if not any(p.match(key) for p in patterns)})
    assert not missing, f"{notebook.name} cites keys no code cell glues: {missing}"


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
