"""A notebook runs once per test session: its nbmake item gives way only to a browser test of the same notebook."""

from tests.browser_env import run_in_browser


def test_a_notebook_gives_way_only_to_its_own_browser_test():
    ids = ["notebooks/00_toy.ipynb::00_toy.ipynb", "notebooks/01_decompose.ipynb::01_decompose.ipynb",
           "notebooks/06_new.ipynb::06_new.ipynb", "tests/test_browser.py::test_notebook_00_in_the_browser",
           "tests/test_browser.py::test_notebook_01_in_the_browser", "tests/method/test_masks.py::test_x"]
    assert run_in_browser(ids) == {
        "notebooks/00_toy.ipynb::00_toy.ipynb": "tests/test_browser.py::test_notebook_00_in_the_browser",
        "notebooks/01_decompose.ipynb::01_decompose.ipynb": "tests/test_browser.py::test_notebook_01_in_the_browser",
    }  # 06 has no browser test: nbmake runs it


def test_without_its_browser_test_in_the_session_nbmake_runs_the_notebook():
    # e.g. `pytest notebooks --nbmake`, or `-k 01` deselecting the browser test of 00
    assert run_in_browser(["notebooks/00_toy.ipynb::00_toy.ipynb"]) == {}
    assert run_in_browser(["notebooks/00_toy.ipynb::00_toy.ipynb",
                           "tests/test_browser.py::test_notebook_01_in_the_browser"]) == {}
