"""tools/execute_book.py, the parallel first step of `make book` (the build itself is checked by test_book.py)."""

import importlib.util
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("execute_book", ROOT / "tools" / "execute_book.py")
execute_book = importlib.util.module_from_spec(spec)
spec.loader.exec_module(execute_book)


def test_every_chapter_of_the_toc_runs_once_longest_first():
    toc = [ROOT / f"{c['file']}.ipynb" for c in yaml.safe_load((ROOT / "_toc.yml").read_text())["chapters"]]
    order = execute_book.chapters()
    assert sorted(order) == sorted(toc) and len(set(order)) == len(order)
    assert order[0].stem.startswith("02") and order[1].stem.startswith("04")


def test_chapters_not_in_the_order_go_last(tmp_path):
    (tmp_path / "book").mkdir()
    for name in ("01_a", "02_b", "99_new"):
        (tmp_path / "book" / f"{name}.ipynb").write_text("{}")
    (tmp_path / "_toc.yml").write_text(yaml.safe_dump({"root": "book/intro", "chapters": [
        {"file": "book/99_new"}, {"file": "book/01_a"}, {"file": "book/02_b"}, {"file": "book/missing"}]}))
    root = execute_book.ROOT
    execute_book.ROOT = tmp_path
    try:
        assert [p.stem for p in execute_book.chapters(tmp_path / "_toc.yml")] == ["02_b", "01_a", "99_new"]
    finally:
        execute_book.ROOT = root


@pytest.mark.parametrize("timeout", ["0", "-5", "x"])
def test_a_bad_timeout_is_a_usage_error(timeout, capsys):
    with pytest.raises(SystemExit) as e:
        execute_book.main(["--timeout", timeout])
    assert e.value.code == 2 and "--timeout" in capsys.readouterr().err
