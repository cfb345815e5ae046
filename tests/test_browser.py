"""The notebooks as a student sees them: JupyterLab in a real (headless Chromium) browser, Run All, then the widgets.

The test starts JupyterLab itself on 127.0.0.1 (a free port, a random token, quick mode, this checkout first on
PYTHONPATH) over a temporary copy of ``notebooks/`` (so nothing it runs or autosaves touches the repository),
drives Debian's ``chromium`` with the ``playwright`` Python package (``executable_path`` points at the system
browser: playwright's own browser download needs the internet) in a 1280 x 900 window (JupyterLab's default
notebook width, what a student on a laptop sees), and for every notebook (00-05):

* Run All, wait until every code cell has run and the kernel is idle;
* no cell has an error output (read from the saved notebook), no "Error displaying widget", no progress bar left
  in an output, every plotly figure is drawn (an SVG with a plot area) with its title inside the figure, no menu
  over the title and every bar inside its axis range, every widget is drawn;
* 02: the language heatmap's sort menu re-sorts the rows and retitles the figure; the component browser's
  "component" dropdown changes the browser's figure;
* 04: the edit explorer's slider (an ipywidgets ``FloatSlider`` described ``s``) moved to a strongly negative
  ``s`` changes the explorer's figure, whose CE axis still holds every bar and ln V.

Screenshots are saved to ``$VPD_LITE_SCREENSHOTS`` (or the test's temporary folder; the path is printed): the
outputs a teacher checks by eye, and, only when ``$VPD_LITE_SCREENSHOTS`` names a folder (a person is going to
look), per notebook a full-length ``NN_page.png`` (the notebook scrolled through and stitched) with its
screen-sized pieces in ``NN_page/``. The outputs: every coding-exercise check
(``NN_coding_<function>.png``), 01's loss curves and faithfulness figure, 02's firing-frequency figure,
language heatmap (``02_heatmap_sorted.png``, ``..._resorted.png``) and component browser, 04's fit figure,
dose-response with its zoomed panel and the explorer at a strongly negative s (``04_explorer_negative_s.png``),
05's two-streams picture, loss curves, quality figure, held-out CE after the edit and the shipped seed comparison.

Install what it needs: ``apt-get install -y chromium`` and ``pip install playwright``. Without either the test is
skipped, saying which is missing.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from pathlib import Path
from typing import NamedTuple

import psutil
import pytest

from tests import browser_env, watch

ROOT = Path(__file__).resolve().parent.parent
# a last resort only: a Run All that stops making progress fails after watch.STALL_S (quick mode takes 5-60 s a
# notebook on 2 busy cores)
RUN_CAP_S = 1800
VIEWPORT = {"width": 1280, "height": 900}  # a laptop screen: JupyterLab's default layout and notebook width
NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return browser_env.screenshot_folder(tmp_path_factory, "browser-test")


class Lab(NamedTuple):
    base: str  # http://127.0.0.1:PORT
    token: str
    nbdir: Path  # the copy of notebooks/ it serves
    pid: int  # the server's process; its kernels are its children


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server over a copy of notebooks/: yields a ``Lab``."""
    if browser_env.missing():
        pytest.skip(browser_env.missing())
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
    def answers() -> bool:
        if server.poll() is not None:
            raise RuntimeError(f"JupyterLab exited; log:\n{(work / 'jupyterlab.log').read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5) as r:
                return r.status == 200
        except OSError:
            return False

    try:
        watch.wait_with_progress(answers, lambda: (work / "jupyterlab.log").stat().st_size, "JupyterLab to start",
                                 lambda: f"log:\n{(work / 'jupyterlab.log').read_text()[-3000:]}",
                                 cpu_pid=lambda: server.pid, poll_s=0.5)
        yield Lab(base, token, nbdir, server.pid)
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
        b = p.chromium.launch(executable_path=browser_env.chromium(), headless=True,
                              args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        yield b
        b.close()


@pytest.fixture(autouse=True)
def shut_down_kernels(lab):
    """After each notebook, its kernel goes: five kernels alive at once would crowd a small machine."""
    yield
    stop_kernels(lab)


# --------------------------------------------------------------------------------------------------- helpers
def api(lab, method: str, path: str, body: dict | None = None):
    """One call of the Jupyter server's REST API; returns the decoded JSON (None for an empty reply)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{lab.base}{path}", data=data, method=method,
                                     headers={"Authorization": f"token {lab.token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as r:
        raw = r.read()
    return json.loads(raw) if raw else None


def kernel_pid(lab, kernel_id: str) -> int | None:
    """The process of kernel ``kernel_id`` (a child of the JupyterLab server), or None if there is none."""
    server = psutil.Process(lab.pid)
    for p in server.children(recursive=True):
        try:
            if any(kernel_id in part for part in p.cmdline()):
                return p.pid
        except psutil.Error:
            pass
    return None


def kernel_state(lab, kernel_id: str) -> str:
    """What the server knows of kernel ``kernel_id``: its execution state and its open connections."""
    try:
        k = api(lab, "GET", f"/api/kernels/{kernel_id}")
    except OSError as e:
        return f"kernel {kernel_id[:8]} unknown to the server ({e})"
    others = [x["id"][:8] for x in api(lab, "GET", "/api/kernels") if x["id"] != kernel_id]
    return (f"kernel {kernel_id[:8]} {k['execution_state']}, {k.get('connections', '?')} connection(s)"
            + (f"; other kernels: {others}" if others else ""))


def start_kernel(lab, name: str) -> str:
    """A session (and kernel) for notebook ``name``, made through the REST API before the page opens, so that
    JupyterLab connects to it instead of starting kernels of its own (two started at once is the race this
    avoids). Returns the kernel's id; the server calls it "starting" until a client connects."""
    session = api(lab, "POST", "/api/sessions",
                  {"path": name, "name": name, "type": "notebook", "kernel": {"name": "python3"}})
    return session["kernel"]["id"]


def stop_kernels(lab) -> None:
    """End every session and kernel the server has."""
    for session in api(lab, "GET", "/api/sessions"):
        api(lab, "DELETE", f"/api/sessions/{session['id']}")
    for kernel in api(lab, "GET", "/api/kernels"):
        api(lab, "DELETE", f"/api/kernels/{kernel['id']}")


PROMPTS = f"""[...document.querySelectorAll('{NOTEBOOK} .jp-CodeCell .jp-InputPrompt')].map(p => p.textContent.trim())"""
OUTPUT_SIZE = f"""[...document.querySelectorAll('{NOTEBOOK} .jp-OutputArea-output')]
    .reduce((n, e) => n + e.textContent.length + e.childElementCount, 0)"""


def run_progress(page) -> tuple[list[str], int]:
    """What a student sees move during Run All: every code cell's prompt, and how much output is on the page."""
    return page.evaluate(f"() => [{PROMPTS}, {OUTPUT_SIZE}]")


def where_stuck(page, lab, kernel_id: str) -> str:
    """One sentence: which cell the run stands at, and the kernel's state."""
    prompts = page.evaluate(f"() => {PROMPTS}")
    ran = sum(1 for p in prompts if re.fullmatch(r"\[\d+\]:?", p))
    busy = [i for i, p in enumerate(prompts) if "*" in p]
    at = f"code cell {busy[0] + 1} shows {prompts[busy[0]]}" if busy else "no cell is running"
    indicator = page.evaluate("() => { const e = document.querySelector('.jp-Notebook-ExecutionIndicator');"
                              " return e && e.getAttribute('data-status'); }")
    return (f"{ran} of {len(prompts)} code cells ran, {at}; the page's kernel indicator says {indicator}; "
            f"{kernel_state(lab, kernel_id)}")


def open_notebook(browser, lab, name: str, kernel_id: str):
    """Open notebook ``name`` in its own workspace; return the page once it is connected to ``kernel_id``
    and idle."""
    page = browser.new_page(viewport=VIEWPORT)
    page.set_default_timeout(60_000)
    # a workspace of its own: the default one would reopen the notebooks earlier tests opened, as tabs
    page.goto(f"{lab.base}/lab/workspaces/{Path(name).stem}/tree/{name}?token={lab.token}")
    page.wait_for_selector(f"{NOTEBOOK} .jp-Cell", timeout=120_000)

    def connected() -> bool:
        k = api(lab, "GET", f"/api/kernels/{kernel_id}")
        indicator = page.evaluate("() => { const e = document.querySelector('.jp-Notebook-ExecutionIndicator');"
                                  " return e && e.getAttribute('data-status'); }")
        return k.get("connections", 0) >= 1 and k["execution_state"] == "idle" and indicator == "idle"

    watch.wait_with_progress(connected, lambda: None, f"{name}: the page to connect to its kernel",
                             lambda: where_stuck(page, lab, kernel_id), cpu_pid=lambda: kernel_pid(lab, kernel_id))
    kernels = [k["id"] for k in api(lab, "GET", "/api/kernels")]
    assert kernels == [kernel_id], f"{name}: JupyterLab started kernels of its own: {kernels}, not {kernel_id}"
    return page


def click_run_all(page, name: str) -> None:
    """Run > Run All Cells, until some prompt shows it took ([*] or [n]): a click that lands on a menu entry
    still disabled during start-up is tried again."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(3):
        page.click(".lm-MenuBar-item:has-text('Run')")
        page.locator(".lm-Menu-item[data-command='runmenu:run-all'], "
                     ".lm-Menu-item[data-command='notebook:run-all-cells']").first.click()
        try:
            page.wait_for_function(f"() => ({PROMPTS}).some(p => /\\[(\\*|\\d+)\\]/.test(p))", timeout=30_000)
            return
        except PlaywrightTimeout:
            if attempt == 2:
                raise AssertionError(f"{name}: Run All did not start any cell in three tries") from None
            print(f"{name}: Run All did not start within 30 s; clicking it again")
            page.keyboard.press("Escape")


RUN_TRIES = 3


def open_and_run_all(browser, lab, name: str):
    """Open notebook ``name`` in JupyterLab, Run All, wait until every code cell ran and the kernel is idle, save.

    The wait is progress-based: it gives up on a try after ``watch.STALL_S`` seconds in which no prompt or
    output on the page changed and the kernel computed nothing, saying where the run stood. Such a try is
    retried (at most ``RUN_TRIES`` in all) with a fresh kernel and a fresh page, and the retry is reported as a
    warning (listed in pytest's summary even when the test passes).

    Returns (page, saved notebook as a dict, seconds the run took)."""
    for attempt in range(1, RUN_TRIES + 1):
        kernel_id = start_kernel(lab, name)
        page = open_notebook(browser, lab, name, kernel_id)
        t0 = time.monotonic()
        click_run_all(page, name)

        def finished() -> bool:
            prompts = page.evaluate(f"() => {PROMPTS}")
            return (all(re.fullmatch(r"\[\d+\]:?", p) for p in prompts)
                    and api(lab, "GET", f"/api/kernels/{kernel_id}")["execution_state"] == "idle")

        try:
            watch.wait_with_progress(finished, lambda: run_progress(page), f"{name}: Run All",
                                     lambda: where_stuck(page, lab, kernel_id),
                                     cpu_pid=lambda: kernel_pid(lab, kernel_id), cap_s=RUN_CAP_S)
            break
        except watch.Stalled as stuck:
            page.close()
            stop_kernels(lab)
            if attempt == RUN_TRIES:
                raise
            # a warning, so that the retry is listed in the run's summary even when the test then passes
            warnings.warn(f"RETRY: {stuck} -- try {attempt + 1} of {RUN_TRIES} with a fresh kernel", stacklevel=1)
    seconds = time.monotonic() - t0
    saved = save_and_read(page, lab.nbdir / name)
    wait_until_drawn(page, saved)
    return page, saved, seconds


def save_and_read(page, path: Path, timeout_s: float = 60) -> dict:
    """Save the open notebook (Ctrl+S) and return it once the file on disk is that save: written after the
    key press, every code cell with an execution count."""
    before = path.stat().st_mtime_ns
    page.keyboard.press("Control+s")
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if path.stat().st_mtime_ns != before:
                saved = json.loads(path.read_text())
                if all(c.get("execution_count") for c in saved["cells"] if c["cell_type"] == "code"):
                    return saved
        except (OSError, ValueError):  # caught half-written: read it again
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{path.name} was not saved with every cell run within {timeout_s:.0f} s")
        time.sleep(0.2)


def _outputs_with(saved: dict, mime: str) -> list[dict]:
    return [o for c in saved["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
            if mime in o.get("data", {})]


def expected_views(saved: dict) -> tuple[int, int]:
    """(plotly figures, widget views) the saved notebook's outputs hold, less the progress bars that closed
    themselves when done (tqdm's leave=False)."""
    n_plotly = len(_outputs_with(saved, "application/vnd.plotly.v1+json"))
    n_widgets = sum(1 for o in _outputs_with(saved, "application/vnd.jupyter.widget-view+json")
                    if not PROGRESS_BAR.search(str(o["data"].get("text/plain", ""))))
    return n_plotly, n_widgets


DRAWN_PLOTS = f"""[...document.querySelectorAll('{NOTEBOOK} .js-plotly-plot')]
    .filter(e => e.querySelector('svg.main-svg .cartesianlayer, svg.main-svg .heatmaplayer')).length"""
DRAWN_WIDGETS = f"""document.querySelectorAll('{NOTEBOOK} .jp-OutputArea-output .widget-vbox, '
    + '{NOTEBOOK} .jp-OutputArea-output .jupyter-widgets').length"""


def wait_until_drawn(page, saved: dict, timeout_s: float = 30) -> None:
    """Wait (at most ``timeout_s``; ``assert_clean_run`` then says what is missing) until the browser has drawn
    every plotly figure and widget the saved notebook holds, and then two more frames."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    n_plotly, n_widgets = expected_views(saved)
    try:
        page.wait_for_function(f"() => ({DRAWN_PLOTS}) >= {n_plotly} && ({DRAWN_WIDGETS}) >= {n_widgets}",
                               timeout=timeout_s * 1000, polling=250)
    except PlaywrightTimeout:  # assert_clean_run then reports the counts
        pass
    next_frames(page)


def next_frames(page, n: int = 2) -> None:
    """Return after the browser has painted ``n`` more frames (what a scroll or a redraw needs to show)."""
    page.evaluate(f"""() => new Promise(done => {{
        let left = {n};
        const tick = () => (--left > 0 ? requestAnimationFrame(tick) : done());
        requestAnimationFrame(tick);
    }})""")


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
    n_plotly, n_widgets = expected_views(saved)
    drawn = page.evaluate(f"() => {DRAWN_PLOTS}")
    assert drawn >= n_plotly, f"{name}: {n_plotly} plotly figures in the outputs, {drawn} drawn"
    views = page.evaluate(f"() => {DRAWN_WIDGETS}")
    assert views >= n_widgets, f"{name}: {n_widgets} widget outputs, {views} drawn"
    outputs = page.locator(f"{NOTEBOOK} .jp-OutputArea-output").all_inner_texts()
    bars = [t[:120] for t in outputs if PROGRESS_BAR.search(t)]
    assert not bars and not page.locator(f"{NOTEBOOK} .jp-OutputArea-output .widget-progress").count(), \
        f"{name}: a progress bar is left in an output: {bars}"
    problems = plotly_layout_problems(page)
    assert not problems, f"{name}: plotly figures drawn wrong: {problems}"
    shrunk = page.eval_on_selector_all(
        f"{NOTEBOOK} .jp-RenderedImage img",
        "els => els.filter(e => e.naturalWidth > e.clientWidth + 1).map(e => [e.naturalWidth, e.clientWidth])")
    # a figure wider than the output area is scaled down, and its text with it
    assert not shrunk, f"{name}: images scaled down to fit (natural width, drawn width): {shrunk}"


PROGRESS_BAR = re.compile(r"\d+%\|.*\||\d+(\.\d+)?\s?(it/s|s/it)")


def plotly_layout_problems(page, root: str = NOTEBOOK) -> list[str]:
    """Each drawn plotly figure under ``root``: its title and annotations inside the figure, no menu over the
    title, every bar inside its y axis range (a bar past the top of the axis is cut off)."""
    return page.eval_on_selector_all(f"{root} .js-plotly-plot", r"""els => els.flatMap(el => {
        const svg = el.querySelector('svg.main-svg');
        if (!svg) return [];
        const f = svg.getBoundingClientRect(), out = [];
        const inside = r => r.left >= f.left - 1 && r.right <= f.right + 1 && r.top >= f.top - 1 && r.bottom <= f.bottom + 1;
        const title = el.querySelector('.gtitle');
        const t = title && title.getBoundingClientRect();
        if (t && t.width && !inside(t)) out.push(`title outside its figure: ${title.textContent}`);
        for (const a of el.querySelectorAll('.infolayer .annotation')) {
            const r = a.getBoundingClientRect();
            if (r.width && !inside(r)) out.push(`annotation outside its figure: ${a.textContent}`);
        }
        const menu = el.querySelector('.updatemenu-header-group');
        if (menu && t && t.width) {
            const m = menu.getBoundingClientRect();
            if (m.left < t.right && t.left < m.right && m.top < t.bottom && t.top < m.bottom)
                out.push(`menu over the title: ${title.textContent}`);
        }
        const layout = el._fullLayout || {};
        for (const tr of el._fullData || []) {
            if (tr.type !== 'bar' || !tr.y || !tr.y.length) continue;
            const ax = layout[(tr.yaxis || 'y').replace('y', 'yaxis')];
            if (!ax || !ax.range) continue;
            const top = Math.max(...ax.range.map(Number)), high = Math.max(...Array.from(tr.y, Number));
            if (high > top) out.push(`bar ${tr.name} reaches ${high.toFixed(2)} above its axis (top ${top.toFixed(2)})`);
        }
        return out;
    })""")


def cell(page, saved: dict, contains: str):
    """The first cell whose source contains ``contains`` (the DOM holds every cell: windowing is off)."""
    index = next((i for i, c in enumerate(saved["cells"]) if contains in "".join(c["source"])), None)
    assert index is not None, f"no cell contains {contains!r}"
    return page.locator(f"{NOTEBOOK} .jp-Cell").nth(index)


def shoot_output(page, saved: dict, contains: str, path: Path, whole_cell: bool = False):
    """Screenshot the output (or, with ``whole_cell``, code and output) of the cell containing ``contains``."""
    target = cell(page, saved, contains)
    if not whole_cell:
        target = target.locator(".jp-Cell-outputWrapper").first
    target.scroll_into_view_if_needed()
    next_frames(page)
    target.screenshot(path=str(path))
    return target


def shoot_coding_checks(page, saved: dict, shots: Path, stem: str) -> list[str]:
    """A screenshot of every coding-exercise cell (the stub and its check's message): ``{stem}_coding_<name>.png``."""
    names = []
    for c in saved["cells"]:
        found = re.search(r"coding\.check_(\w+)\(", "".join(c["source"]))
        if c["cell_type"] == "code" and found:
            shoot_output(page, saved, found.group(0), shots / f"{stem}_coding_{found.group(1)}.png", whole_cell=True)
            names.append(found.group(1))
    return names


def shoot_page(page, shots: Path, stem: str) -> None:
    """The whole notebook, top to bottom: screen-sized pieces (``{stem}_page/NN.png``) scrolled through the
    notebook's scroll area, and the same stitched into one tall ``{stem}_page.png``."""
    import io

    from PIL import Image

    outer = page.locator(f"{NOTEBOOK} .jp-WindowedPanel-outer").first
    box = outer.bounding_box()
    total, step = outer.evaluate("e => [e.scrollHeight, e.clientHeight]")
    pieces = shots / f"{stem}_page"
    pieces.mkdir(exist_ok=True)
    for old in pieces.glob("*.png"):
        old.unlink()
    canvas = Image.new("RGB", (round(box["width"]), round(total)), "white")
    k, top = 0, 0
    while True:
        y = outer.evaluate(f"e => {{ e.scrollTop = {top}; return e.scrollTop; }}")
        next_frames(page)
        png = page.screenshot(clip=box)
        (pieces / f"{k:02d}.png").write_bytes(png)
        canvas.paste(Image.open(io.BytesIO(png)), (0, round(y)))
        k, top = k + 1, top + step
        if y + step >= total or k >= 200:
            break
    canvas.save(shots / f"{stem}_page.png")
    outer.evaluate("e => { e.scrollTop = 0; }")


def run_and_check(browser, lab, shots: Path, name: str):
    """Run All ``name``, save the page screenshots, check it ran clean, shoot its coding exercises."""
    stem = name[:2]
    page, saved, seconds = open_and_run_all(browser, lab, name)
    print(f"{name}: Run All took {seconds:.1f} s")
    if os.environ.get("VPD_LITE_SCREENSHOTS"):  # the whole page, for a person to read: 5-10 s of screenshots
        shoot_page(page, shots, stem)
    assert_clean_run(page, saved, name)
    coding = shoot_coding_checks(page, saved, shots, stem)
    print(f"{name}: coding exercises shot: {coding}")
    return page, saved


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
def test_notebook_00_in_the_browser(lab, browser, shots):
    page, saved = run_and_check(browser, lab, shots, "00_toy_superposition.ipynb")
    shoot_output(page, saved, "exercises.check_pentagon_angle(", shots / "00_check_pentagon_angle.png", whole_cell=True)
    shoot_output(page, saved, "plots.training_trends(", shots / "00_training.png")
    page.close()


def test_notebook_01_in_the_browser(lab, browser, shots):
    page, saved = run_and_check(browser, lab, shots, "01_decompose.ipynb")
    shoot_output(page, saved, "plots.plot_loss_curves(", shots / "01_loss_curves.png")
    shoot_output(page, saved, "plots.plot_faithfulness(", shots / "01_faithfulness.png")
    shoot_output(page, saved, "exercises.check_uniform_ce(", shots / "01_check_uniform_ce.png", whole_cell=True)
    page.close()


def test_notebook_02_in_the_browser(lab, browser, shots):
    page, saved = run_and_check(browser, lab, shots, "02_inspect.ipynb")
    shoot_output(page, saved, "plots.plot_firing_frequency(", shots / "02_firing_frequency.png")

    # the language heatmap: title names the order; the menu re-sorts and retitles
    heat = page.locator(f"{NOTEBOOK} .js-plotly-plot").first
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
    assert not plotly_layout_problems(page), plotly_layout_problems(page)  # the new title fits too, menu closed

    # the component browser: shows the German component; another component changes the figure
    panel = page.locator(f"{NOTEBOOK} .widget-vbox:has(.widget-dropdown)").last
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


def test_notebook_03_in_the_browser(lab, browser, shots):
    page, saved = run_and_check(browser, lab, shots, "03_label.ipynb")
    shoot_output(page, saved, "plots.plot_label_categories(", shots / "03_label_categories.png")
    shoot_output(page, saved, 'search_labels(labels, "German"), n=8', shots / "03_search_german.png")
    page.close()


def test_notebook_04_in_the_browser(lab, browser, shots):
    page, saved = run_and_check(browser, lab, shots, "04_erase_german.ipynb")
    shoot_output(page, saved, "edit_plots.objective_plot(", shots / "04_fit_figure.png")
    shoot_output(page, saved, "edit_plots.dose_response_plot(pick_curve", shots / "04_dose_response_zoomed.png")
    shoot_output(page, saved, "edit_reports.claim_tables(runs", shots / "04_claim_tables.png")

    # the explorer: the FloatSlider described "s"; moving it to a strongly negative s changes the figure
    slider = page.locator(f"{NOTEBOOK} .widget-slider:has(label:text-is('s'))").first
    slider.scroll_into_view_if_needed()
    explorer = page.locator(f"{NOTEBOOK} .widget-vbox:has(.widget-slider)").last
    # the explorer's picture: a plotly figure, an image widget, or whatever an Output widget shows
    kind = next((k for k in (".js-plotly-plot", ".widget-image", ".widget-output") if explorer.locator(k).count()), None)
    assert kind is not None, "the explorer shows no figure (no plotly figure, image or output area)"
    view = explorer.locator(kind).first
    before = view.screenshot()
    handle = slider.locator(".noUi-handle, [role='slider']").first
    handle.focus()
    page.keyboard.press("Home")  # the slider's minimum: the most negative s it offers
    readout = slider.locator(".widget-readout").inner_text()
    assert float(readout.replace("\u2212", "-")) < 0, f"slider readout {readout!r} is not negative"
    wait_for_change(view, before)
    explorer.screenshot(path=str(shots / "04_explorer_negative_s.png"))
    # its CE axis holds every bar, the German one above ln V included, and the dashed ln V line
    plot = explorer.locator(".js-plotly-plot").first
    if plot.count():
        bars, top, ln_v = plot.evaluate("""el => [
            el._fullData.filter(t => t.type === 'bar').flatMap(t => Array.from(t.y, Number)),
            Math.max(...el._fullLayout.yaxis.range.map(Number)),
            Math.max(...(el._fullLayout.shapes || []).map(s => Number(s.y0)))]""")
        print(f"explorer at s = {readout}: CE bars up to {max(bars):.2f}, ln V {ln_v:.2f}, axis top {top:.2f}")
        assert max(bars) <= top and ln_v <= top, (bars, ln_v, top)
        assert not plotly_layout_problems(page), plotly_layout_problems(page)
    page.close()


def test_notebook_05_in_the_browser(lab, browser, shots):
    page, saved = run_and_check(browser, lab, shots, "05_targeted_german.ipynb")
    shoot_output(page, saved, "targeted.two_streams_picture(", shots / "05_two_streams.png")
    shoot_output(page, saved, "targeted.plot_targeted_history(", shots / "05_loss_curves.png")
    shoot_output(page, saved, "targeted.plot_quality(", shots / "05_quality.png")
    shoot_output(page, saved, "targeted.plot_heldout_ce(", shots / "05_heldout_ce.png")
    shoot_output(page, saved, "targeted.load_comparison(", shots / "05_comparison.png")
    page.close()
