"""What the real-browser tests need, found once: a Chromium on this machine and the ``playwright`` package.

Used by the browser tests themselves (to skip, saying what is missing) and by the repository's ``conftest.py``
(which lets a notebook run once per test session: in the browser when one can run, else under nbmake).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path


def chromium() -> str | None:
    """The path of a Chromium-family browser (``$VPD_LITE_CHROMIUM`` first), or None if there is none."""
    for candidate in (os.environ.get("VPD_LITE_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    return None


def screenshot_folder(tmp_path_factory, what: str) -> Path:
    """Where a browser test saves its screenshots: ``$VPD_LITE_SCREENSHOTS`` (a person is going to look) or a
    fresh temporary folder; the path is printed, prefixed by ``what`` ("atlas", "browser-test")."""
    folder = Path(os.environ.get("VPD_LITE_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\n{what} screenshots: {folder}")
    return folder


def missing() -> str | None:
    """Why the browser tests cannot run here (one sentence with the command that fixes it), or None if they can."""
    if importlib.util.find_spec("playwright") is None:
        return "the browser test needs `pip install playwright`"
    if chromium() is None:
        return "the browser test needs a Chromium browser: `apt-get install -y chromium` (Debian)"
    return None


BROWSER_TEST = "tests/test_browser.py::test_notebook_{}_in_the_browser"


def run_in_browser(nodeids: list[str]) -> dict[str, str]:
    """{notebook's nbmake node id: the node id of the browser test that runs the same notebook}, for the
    notebooks (``notebooks/NN_name.ipynb::...``) whose browser test (``test_notebook_NN_in_the_browser``) is
    among ``nodeids``. Pure: whether a browser is here is ``missing()``'s question."""
    present = set(nodeids)
    pairs = {}
    for nodeid in nodeids:
        path = nodeid.split("::")[0]
        if path.endswith(".ipynb"):
            browser_test = BROWSER_TEST.format(path.rsplit("/", 1)[-1][:2])
            if browser_test in present:
                pairs[nodeid] = browser_test
    return pairs
