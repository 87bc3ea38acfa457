"""``make book``'s first step (mode_interp.book_build): chapters executed side by side into a fresh
execution cache that myst-nb's ``cache`` mode then finds; a failing chapter is reported and not cached."""
import nbformat
import pytest
from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn

from mode_interp import book_build


def _notebook(path, *sources):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_chapters_run_side_by_side_into_a_fresh_cache(tmp_path, capsys):
    good = _notebook(tmp_path / "good.ipynb", "import os, pathlib", "print(os.environ['MODE_INTERP_THREADS'], "
                     "pathlib.Path.cwd().name)")
    bad = _notebook(tmp_path / "bad.ipynb", "raise RuntimeError('a failed claim')")
    cache_path = tmp_path / "cache"
    # an entry from an earlier run is dropped: the failing chapter's old outputs are not found afterwards
    get_cache(str(cache_path)).cache_notebook_bundle(CacheBundleIn(nbformat.read(bad, as_version=4), str(bad)),
                                                     check_validity=False)
    done = book_build.execute_chapters([good, bad], cache_path, jobs=2, timeout=120, threads=1)
    assert done[str(good)][1] is None and "a failed claim" in done[str(bad)][1]
    cache = get_cache(str(cache_path))
    # what myst-nb does in cache mode: match the unexecuted source, merge the cached outputs into it
    _, merged = cache.merge_match_into_notebook(nbformat.read(good, as_version=4))
    assert merged.cells[1].outputs[0]["text"] == f"1 {tmp_path.name}\n"      # one thread, the notebook's folder
    with pytest.raises(KeyError):
        cache.match_cache_notebook(nbformat.read(bad, as_version=4))
    assert "bad.ipynb: FAILED" in capsys.readouterr().err


def test_bad_arguments_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="notebooks must be existing .ipynb files"):
        book_build.execute_chapters([tmp_path / "missing.ipynb"], tmp_path / "cache")
    with pytest.raises(ValueError, match="jobs"):
        book_build.execute_chapters([_notebook(tmp_path / "a.ipynb", "1")], tmp_path / "cache", jobs=0)
    with pytest.raises(SystemExit):
        book_build.main(["--jobs", "x", str(tmp_path / "a.ipynb")])
