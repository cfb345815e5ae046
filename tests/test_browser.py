"""The notebooks as a student sees them: JupyterLab in a real (headless Chromium) browser, Run All, then the widgets.

The test starts JupyterLab itself on 127.0.0.1 (a free port, a random token, quick mode, this checkout first on
PYTHONPATH) over a temporary copy of ``notebooks/`` (so nothing it runs or autosaves touches the repository),
drives Debian's ``chromium`` with the ``playwright`` Python package (``executable_path`` points at the system
browser: playwright's own browser download needs the internet), and for notebooks 02 and 04:

* Run All, wait until every code cell has run and the kernel is idle;
* no cell has an error output (read from the saved notebook), no "Error displaying widget", every plotly
  figure is drawn (an SVG with a plot area), every widget is drawn;
* 02: the language heatmap's sort menu re-sorts the rows and retitles the figure; the component browser's
  "component" dropdown changes the browser's figure;
* 04: the edit explorer's slider (an ipywidgets ``FloatSlider`` described ``s``) moved to a strongly negative
  ``s`` changes the explorer's figure.

Screenshots are saved to ``$VPD_LITE_SCREENSHOTS`` (or the test's temporary folder; the path is printed):
``02_component_browser.png`` (the German component), ``02_heatmap_sorted.png`` (and ``..._resorted.png``),
``04_explorer_negative_s.png`` and a full-page ``*_page.png`` per notebook.

Install what it needs: ``apt-get install -y chromium`` and ``pip install playwright``. Without either the test is
skipped, saying which is missing.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUN_TIMEOUT_S = 900  # per notebook: quick mode takes 1-3 minutes on 2 busy cores; a stuck kernel fails, not hangs


def _chromium() -> str | None:
    for candidate in (os.environ.get("VPD_LITE_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("VPD_LITE_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nbrowser-test screenshots: {folder}")
    return folder


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server over a copy of notebooks/: yields (base_url, token, notebook folder)."""
    pytest.importorskip("playwright.sync_api", reason="the browser test needs `pip install playwright`")
    if _chromium() is None:
        pytest.skip("the browser test needs a Chromium browser: `apt-get install -y chromium` (Debian)")
    work = tmp_path_factory.mktemp("lab")
    nbdir = work / "notebooks"
    shutil.copytree(ROOT / "notebooks", nbdir, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "runs"))
    settings = work / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    # every cell in the DOM (no virtual scrolling), so outputs below the fold are checked too
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    notifications = work / "settings" / "@jupyterlab" / "apputils-extension"
    notifications.mkdir(parents=True)
    (notifications / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    token, port = secrets.token_hex(16), _free_port()
    env = dict(os.environ, VPD_LITE_QUICK="1", VPD_LITE_RUNS=str(work / "runs"),
               PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]),
               JUPYTER_CONFIG_DIR=str(work / "config"), JUPYTER_RUNTIME_DIR=str(work / "runtime"))
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={nbdir}",
           f"--LabApp.user_settings_dir={work / 'settings'}", f"--LabApp.workspaces_dir={work / 'workspaces'}",
           "--LabApp.news_url=", "--ServerApp.port_retries=0"] + (["--allow-root"] if os.geteuid() == 0 else [])
    log = open(work / "jupyterlab.log", "w")
    server = subprocess.Popen(cmd, cwd=nbdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not start; log:\n{(work / 'jupyterlab.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield base, token, nbdir
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def browser(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=_chromium(), headless=True,
                              args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        yield b
        b.close()


# --------------------------------------------------------------------------------------------------- helpers
def open_and_run_all(browser, lab, name: str):
    """Open notebook ``name`` in JupyterLab, Run All, wait until every code cell ran and the kernel is idle, save.

    Returns (page, saved notebook as a dict, seconds the run took)."""
    base, token, nbdir = lab
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    page.set_default_timeout(60_000)
    page.goto(f"{base}/lab/tree/{name}?token={token}")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=120_000)
    wait_kernel_idle(page, 120)
    page.wait_for_timeout(3000)  # let the notebook finish setting up before the menu is used
    t0 = time.monotonic()
    for attempt in range(3):  # a click during start-up can land on a disabled menu entry: try again
        page.click(".lm-MenuBar-item:has-text('Run')")
        page.locator(".lm-Menu-item[data-command='runmenu:run-all'], "
                     ".lm-Menu-item[data-command='notebook:run-all-cells']").first.click()
        try:
            page.wait_for_function(
                r"""() => [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')]
                         .some(p => /\[(\*|\d+)\]/.test(p.textContent))""", timeout=30_000)
            break
        except Exception:
            if attempt == 2:
                raise
            page.keyboard.press("Escape")
    page.wait_for_function(
        """() => {
            const prompts = [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')];
            return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
        }""",
        timeout=RUN_TIMEOUT_S * 1000,
        polling=1000,
    )
    wait_kernel_idle(page, RUN_TIMEOUT_S)
    seconds = time.monotonic() - t0
    page.wait_for_timeout(3000)  # let widgets and plotly finish drawing
    page.keyboard.press("Control+s")
    page.wait_for_timeout(2000)
    saved = json.loads((nbdir / name).read_text())
    return page, saved, seconds


def wait_kernel_idle(page, timeout_s: float) -> None:
    page.wait_for_function(
        """() => {
            const el = document.querySelector('.jp-Notebook-ExecutionIndicator');  // in the status bar
            return el && el.getAttribute('data-status') === 'idle';
        }""",
        timeout=timeout_s * 1000,
        polling=500,
    )


def assert_clean_run(page, saved: dict, name: str) -> None:
    """No error output, no broken widget, every plotly figure drawn, every widget view drawn."""
    errors = [
        f"cell {i}: {o.get('ename')}: {o.get('evalue')}"
        for i, cell in enumerate(saved["cells"]) if cell["cell_type"] == "code"
        for o in cell.get("outputs", []) if o.get("output_type") == "error"
    ]
    assert not errors, f"{name}: cells with errors: {errors}"
    body = page.inner_text(".jp-NotebookPanel:not(.lm-mod-hidden)")
    assert "Error displaying widget" not in body, f"{name}: a widget failed to display"
    assert "Traceback" not in body, f"{name}: a traceback is on screen"
    n_plotly = sum(
        1 for cell in saved["cells"] if cell["cell_type"] == "code"
        for o in cell.get("outputs", []) if "application/vnd.plotly.v1+json" in o.get("data", {})
    )
    drawn = page.eval_on_selector_all(
        ".jp-NotebookPanel:not(.lm-mod-hidden) .js-plotly-plot",
        "els => els.filter(e => e.querySelector('svg.main-svg .cartesianlayer, svg.main-svg .heatmaplayer')).length")
    assert drawn >= n_plotly, f"{name}: {n_plotly} plotly figures in the outputs, {drawn} drawn"
    n_widgets = sum(
        1 for cell in saved["cells"] if cell["cell_type"] == "code"
        for o in cell.get("outputs", []) if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    )
    views = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output .widget-vbox, "
                         ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output .jupyter-widgets").count()
    assert views >= n_widgets, f"{name}: {n_widgets} widget outputs, {views} drawn"


def rows_top_to_bottom(heat) -> list[str]:
    """The heatmap's row labels in the order they are drawn, top to bottom (the DOM keeps the tick order)."""
    return heat.locator(".yaxislayer-above .ytick text").evaluate_all(
        "els => els.map(e => [e.getBoundingClientRect().top, e.textContent]).sort((a, b) => a[0] - b[0]).map(x => x[1])")


def wait_for_change(locator, before: bytes, timeout_s: float = 120) -> bytes:
    """Screenshots of ``locator`` until one differs from ``before`` and then holds still; returns it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = locator.screenshot()
        if now != before:
            time.sleep(2.0)
            return locator.screenshot()
    raise AssertionError(f"the figure did not change within {timeout_s:.0f} s")


# ------------------------------------------------------------------------------------------------------ tests
def test_notebook_02_in_the_browser(lab, browser, shots):
    page, saved, seconds = open_and_run_all(browser, lab, "02_inspect.ipynb")
    print(f"02_inspect.ipynb: Run All took {seconds:.1f} s")
    page.screenshot(path=str(shots / "02_page.png"), full_page=True)
    assert_clean_run(page, saved, "02_inspect.ipynb")

    # the language heatmap: title names the order; the menu re-sorts and retitles
    heat = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .js-plotly-plot").first
    heat.scroll_into_view_if_needed()
    heat.screenshot(path=str(shots / "02_heatmap_sorted.png"))
    title = heat.locator(".gtitle").text_content()
    active = heat.locator(".updatemenu-header-group text").first.text_content()
    assert active in title, f"menu shows {active!r} but the title says {title!r}"
    rows_before = rows_top_to_bottom(heat)
    assert len(rows_before) == len(set(rows_before)) and len(rows_before) >= 10, rows_before
    heat.locator(".updatemenu-header-group").first.click()
    heat.locator(".updatemenu-dropdown-button", has_text="English").first.click()
    page.wait_for_timeout(1500)
    title2 = heat.locator(".gtitle").text_content()
    assert "English" in title2 and title2 != title
    assert "English" in heat.locator(".updatemenu-header-group text").first.text_content()
    rows_after = rows_top_to_bottom(heat)
    assert rows_after != rows_before and sorted(rows_after) == sorted(rows_before)
    heat.screenshot(path=str(shots / "02_heatmap_resorted.png"))

    # the component browser: shows the German component; another component changes the figure
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .widget-vbox:has(.widget-dropdown)").last
    panel.scroll_into_view_if_needed()
    panel.screenshot(path=str(shots / "02_component_browser.png"))
    print(f"component browser: {panel.locator('.widget-html').first.inner_text()[:200]!r}")
    figure = panel.locator(".widget-image").first
    before = figure.screenshot()
    select = panel.locator(".widget-dropdown:has(label:text-is('component')) select")
    options = select.locator("option").all_inner_texts()
    assert len(options) >= 2, options
    current = select.input_value()
    other = next(v for v in select.locator("option").evaluate_all("os => os.map(o => o.value)") if v != current)
    select.select_option(other)
    wait_for_change(figure, before)
    panel.screenshot(path=str(shots / "02_component_browser_other.png"))
    page.close()


def test_notebook_04_in_the_browser(lab, browser, shots):
    page, saved, seconds = open_and_run_all(browser, lab, "04_erase_german.ipynb")
    print(f"04_erase_german.ipynb: Run All took {seconds:.1f} s")
    page.screenshot(path=str(shots / "04_page.png"), full_page=True)
    assert_clean_run(page, saved, "04_erase_german.ipynb")

    # the explorer: the FloatSlider described "s"; moving it to a strongly negative s changes the figure
    slider = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .widget-slider:has(label:text-is('s'))").first
    slider.scroll_into_view_if_needed()
    explorer = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .widget-vbox:has(.widget-slider)").last
    # the explorer's picture: a plotly figure, an image widget, or whatever an Output widget shows
    kind = next((k for k in (".js-plotly-plot", ".widget-image", ".widget-output") if explorer.locator(k).count()), None)
    assert kind is not None, "the explorer shows no figure (no plotly figure, image or output area)"
    view = explorer.locator(kind).first
    before = view.screenshot()
    handle = slider.locator(".noUi-handle, [role='slider']").first
    handle.focus()
    page.keyboard.press("Home")  # the slider's minimum: the most negative s it offers
    readout = slider.locator(".widget-readout").inner_text()
    assert float(readout.replace("−", "-")) < 0, f"slider readout {readout!r} is not negative"
    wait_for_change(view, before)
    explorer.screenshot(path=str(shots / "04_explorer_negative_s.png"))
    page.close()
