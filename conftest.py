"""Run each chapter once in CI: when MODE_INTERP_BOOK_HTML points at a book that ``make book`` has just built
(which executed every chapter, failing on any error or failed claim), the nbmake items for book/*.ipynb
are deselected and tests/test_book.py checks that build's executed notebooks instead. Without it, the
README's ``make test`` executes every chapter itself (nbmake)."""
import os


def pytest_collection_modifyitems(config, items):
    if not os.environ.get("MODE_INTERP_BOOK_HTML"):
        return
    chapters = [item for item in items if str(item.fspath).endswith(".ipynb")]
    if chapters:
        config.hook.pytest_deselected(items=chapters)
        items[:] = [item for item in items if item not in chapters]
