"""The component atlas (``python -m vpd_lite.atlas``): a small atlas of the shipped decomposition, built once, read
as HTML (what a reader without JavaScript gets) and opened in a real headless Chromium (``file://``, offline).

Screenshots go to ``$VPD_LITE_SCREENSHOTS`` (or the test's temporary folder; the path is printed): the index, the
index after searching for German, the German component's page, and that page at phone width.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests import browser_env
from tests.commands.cli_batch import run_case
from vpd_lite.erase import atlas_pages
from vpd_lite.erase.atlas import build_atlas, page_name, parse_component_list
from vpd_lite.errors import UserError

GERMAN = "model.layers.0.mlp.down_proj:113"
SMALL = [GERMAN, "model.layers.0.mlp.down_proj:77", "model.layers.0.self_attn.q_proj:0",
         "model.layers.1.mlp.up_proj:19"]


@pytest.fixture(scope="module")
def atlas(tmp_path_factory):
    """(data, folder): the small atlas, built once for every test here."""
    out = tmp_path_factory.mktemp("atlas") / "site"
    data, files = build_atlas(out, components=parse_component_list(",".join(SMALL)), ablation_blocks=1)
    return data, out, files


def test_the_site_holds_an_index_a_page_per_component_and_plotly_once(atlas):
    data, out, files = atlas
    pages = sorted(p.name for p in (out / "components").iterdir())
    assert pages == sorted(page_name(c) for c in parse_component_list(",".join(SMALL)))
    assert sorted(p.name for p in out.iterdir()) == ["atlas.css", "atlas.js", "components", "index.html",
                                                     "plotly.min.js"]
    assert sorted(files) == sorted(p for p in out.rglob("*") if p.is_file())  # it wrote only into the folder
    for path in [out / "index.html", *(out / "components").iterdir()]:
        text = path.read_text(encoding="utf-8")
        # nothing but the site's own files is referenced: no http(s) address anywhere
        assert not re.search(r"(src|href)=\"(https?:)?//", text), path
        assert "http://" not in text and "https://" not in text, path


def test_the_index_table_reads_without_javascript(atlas):
    data, out, _ = atlas
    index = (out / "index.html").read_text(encoding="utf-8")
    rows = re.findall(r"<tr><td class=\"t\">(.*?)</tr>", index)
    assert len(rows) == len(SMALL)
    german = next(r for r in rows if f">{GERMAN}<" in r)
    assert f'href="components/{page_name(GERMAN)}"' in german
    assert "German" in german  # its label names German
    # the edit scan's best German ΔCE and worst other ΔCE (results/edit_scan_best.csv: +3.599, +0.099 es)
    assert ">+3.599<" in german and "+0.099 es" in german
    assert index.count('class="bar"') == len(SMALL) * len(data.langs)  # an inline bar per language


def test_the_german_page_shows_every_section(atlas):
    data, out, _ = atlas
    page = (out / "components" / page_name(GERMAN)).read_text(encoding="utf-8")
    for heading in ("The label and its evidence", "Where it fires", "Top contexts", "What removing it does",
                    "What it reads and writes", "Dose-response", "In other decompositions"):
        assert f"<h2>{heading}" in page, heading
    assert page.count('<div class="fig"') == 4  # rates, CI histogram, removal, dose-response
    assert page.count("What to look for.") >= 5  # one sentence per figure (and the contexts)
    assert "<table class='ctx'" in page and 'class="k10 f"' in page  # contexts shaded, firing token boxed
    assert "directly: it writes to the residual stream" in page  # down_proj: its write path, in words
    assert "data/targeted_de" in page  # nearest component in the shipped targeted decomposition
    facts = next(f for f in data.components if f.key == GERMAN)
    assert facts.ablation is not None and max(facts.ablation, key=facts.ablation.get) == "de"


def test_pages_are_the_same_bytes_for_the_same_data(atlas):
    data, out, _ = atlas
    assert atlas_pages.index_html(data) == (out / "index.html").read_text(encoding="utf-8")
    facts = data.components[0]
    assert atlas_pages.component_html(data, facts) == \
        (out / "components" / page_name(facts.cid)).read_text(encoding="utf-8")


def test_the_removal_reads_as_small_when_it_is_small(atlas):
    data, out, _ = atlas
    index = (out / "index.html").read_text(encoding="utf-8")
    assert ">removed: largest ΔCE<" in index
    facts = next(f for f in data.components if f.key == GERMAN)
    assert f"{facts.ablation['de']:+.3f} de<" in index  # down_proj:113: German gets worst when it is removed
    small = {"en": 0.0, "de": 3e-4, "fr": -4e-4, "es": -0.00001, "it": 0.002}
    layout = atlas_pages.ablation_figure(small)["layout"]["yaxis"]
    assert layout["range"][0] <= -atlas_pages.ABLATION_MIN_RANGE and layout["range"][1] >= atlas_pages.ABLATION_MIN_RANGE
    big = atlas_pages.ablation_figure({"de": 0.4, "en": -0.1})["layout"]["yaxis"]["range"]
    assert big[0] <= -0.1 and big[1] >= 0.4
    assert atlas_pages.signed(-0.00001) == "0.0000" and atlas_pages.signed(0.00004) == "0.0000"
    assert atlas_pages.signed(-0.00006) == "-0.0001" and atlas_pages.signed(0.25, 3) == "+0.250"
    quiet = next(f for f in data.components if max(abs(v) for v in f.ablation.values()) < atlas_pages.ABLATION_SMALL)
    page = atlas_pages.component_html(data, quiet)
    assert "removing this component changes next to nothing" in page and "-0.0000" not in page
    german = (out / "components" / page_name(GERMAN)).read_text(encoding="utf-8")
    assert "changes next to nothing" not in german


def test_text_is_escaped():
    assert atlas_pages.esc("<b>&") == "&lt;b&gt;&amp;"
    assert atlas_pages.attr('a"b') == "a&quot;b"
    assert "</" not in atlas_pages.figure_div({"data": [{"name": "</script>"}], "layout": {}}, "x").split(
        "<script type=\"application/json\">")[1].removesuffix("</script>")


def test_a_folder_with_files_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match=r"already holds 1 file\(s\) \(notes.txt\)"):
        build_atlas(tmp_path)


@pytest.mark.parametrize("args, fragment", [
    (["{missing}"], "is not a folder"),
    (["{plain}"], "is not a decomposition folder"),
    (["--components", "v_proj61"], "expected comma-separated ids like model.layers.0.mlp.down_proj:113"),
    (["--components", "model.layers.9.mlp.up_proj:1"], "has no matrix 'model.layers.9.mlp.up_proj'"),
    (["--components", "model.layers.1.self_attn.v_proj:999"], "has components 0 to"),
    (["--out", "{plain}"], "already holds"),
    (["--ablate", "some"], "neither a number >= 0 nor 'all'"),
])
def test_bad_input_gets_one_clear_line(tmp_path, args, fragment):
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "notes.txt").write_text("not a decomposition")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    result = run_case("atlas", [a.format(missing=tmp_path / "nope", plain=plain) for a in args], str(cwd))
    err = [line for line in result["stderr"].splitlines() if "error:" in line]
    assert result["code"] == 2 and "Traceback" not in result["stderr"], result
    assert len(err) == 1 and err[0].startswith("python -m vpd_lite.atlas") and fragment in err[0], err
    assert list(cwd.iterdir()) == []


# ------------------------------------------------------------------------------------------ a real browser
@pytest.fixture(scope="module")
def browser():
    if browser_env.missing():
        pytest.skip(browser_env.missing())
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=browser_env.chromium(), headless=True,
                              args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return browser_env.screenshot_folder(tmp_path_factory, "atlas")


class Watched:
    """A page of its own context that fails on any request that would leave the machine and records console
    errors and uncaught exceptions."""

    def __init__(self, browser, width: int) -> None:
        self.context = browser.new_context(viewport={"width": width, "height": 900})
        self.left, self.errors = [], []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", lambda msg: msg.type == "error" and self.errors.append(msg.text))
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def _route(self, route) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            self.left.append(route.request.url)
            route.abort()

    def check(self) -> None:
        assert self.left == [], f"requests that would leave the machine: {self.left}"
        assert self.errors == [], f"console errors: {self.errors}"
        overflow = self.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page is {overflow} px wider than the window"

    def figures_drawn(self) -> int:
        n = self.page.locator("div.fig").count()
        self.page.wait_for_function(f"document.querySelectorAll('div.fig svg.main-svg').length >= {n}",
                                    timeout=20_000)
        drawn = self.page.evaluate("Array.from(document.querySelectorAll('div.fig')).filter("
                                   "d => d.querySelector('svg.main-svg g.trace .point, svg.main-svg g.trace path.js-line')"
                                   ").length")  # a bar or a line drawn in every figure
        assert drawn == n, f"{drawn} of {n} figures drawn"
        return n


def test_in_a_browser_search_sort_follow_a_link(atlas, browser, shots):
    _, out, _ = atlas
    w = Watched(browser, 1280)
    page = w.page
    page.goto((out / "index.html").as_uri())
    page.screenshot(path=str(shots / "atlas_index.png"), full_page=True)
    page.fill("#search", "German")
    visible = page.locator("#atlas tbody tr:visible")
    assert 1 <= visible.count() < len(SMALL)
    assert all("german" in t.lower() for t in visible.all_inner_texts())
    page.screenshot(path=str(shots / "atlas_search_german.png"), full_page=True)
    page.fill("#search", "")
    page.get_by_role("button", name="German firing").click()  # sort: highest German firing rate first
    first = page.locator("#atlas tbody tr").first.inner_text()
    assert GERMAN in first, first
    # a click anywhere in a header cell sorts, not only on its words: the corner of "removed: largest ΔCE"
    removal = page.locator("#atlas th", has_text="removed: largest")
    removal.click(position={"x": 2, "y": 2})
    assert removal.get_attribute("aria-sort") == "descending"
    first = page.locator("#atlas tbody tr").first.inner_text()
    assert GERMAN in first and "German" in first, first  # down_proj:113's removal hurts German most
    # the header row stays in view when the table scrolls
    page.locator(".tablebox").evaluate("e => { e.style.maxHeight = '120px'; e.scrollTop = 10000; }")
    box, head = page.locator(".tablebox").bounding_box(), page.locator("#atlas th").first.bounding_box()
    assert abs(head["y"] - box["y"]) < 3, (head, box)
    w.check()
    page.get_by_role("link", name=GERMAN).click()
    page.wait_for_load_state("load")
    assert page.url.endswith(page_name(GERMAN))
    assert w.figures_drawn() == 4
    page.screenshot(path=str(shots / "atlas_german_page.png"), full_page=True)
    w.check()
    w.context.close()


@pytest.mark.parametrize("which", ["index.html", f"components/{page_name(GERMAN)}"])
def test_at_phone_width_nothing_overflows(atlas, browser, shots, which):
    _, out, _ = atlas
    w = Watched(browser, 390)
    w.page.goto((out / which).as_uri())
    if which != "index.html":
        w.figures_drawn()
        w.page.screenshot(path=str(shots / "atlas_german_page_phone.png"), full_page=True)
    w.check()
    w.context.close()


def test_a_targeted_decomposition_gets_its_statistics_harvested_and_no_foreign_scan(tmp_path):
    """data/targeted_de ships no statistics: they are harvested (here on 2 blocks per language, to stay quick),
    its labels come from the offline labeller, the shipped edit scan (of the shipped decomposition) is not shown,
    and its nearest component in the shipped decomposition is."""
    from vpd_lite.models.paths import data_dir

    cid = ("model.layers.1.self_attn.v_proj", 18)  # the German component of the targeted run kept in results/
    data, _ = build_atlas(tmp_path / "site", data_dir() / "targeted_de", [cid], ablation_blocks=1, harvest_blocks=2)
    (facts,) = data.components
    assert data.stats_how.startswith("harvested now") and data.labels_how.startswith("the offline labeller")
    assert facts.scan_curve is None and facts.scan_best is None and facts.ablation is not None
    assert any(m["decomposition"] == "data/decomposition" for m in facts.nearest)
    page = (tmp_path / "site" / "components" / page_name(cid)).read_text(encoding="utf-8")
    assert "Not scanned: the shipped edit scan belongs to the shipped decomposition" in page


def test_a_figure_keeps_only_what_its_kind_does_not_share_and_merges_back_whole():
    """The pages hold each figure's own parts; atlas.js merges in what every figure of its kind shares. Merging
    gives the whole figure back, for figures like and unlike the shared one (another language list, another bin
    count, another threshold); a figure without a shared key is refused rather than merged wrong."""
    import json

    from vpd_lite.erase.atlas_pages import (JS, SHARED_FIGURES, ablation_figure, ci_hist_figure, rates_figure,
                                            unshared, with_shared)

    figs = {"rates": [rates_figure(["en", "de", "fr", "es", "it"], {"en": 0.1, "de": 0.5, "fr": 0, "es": 0, "it": 0}),
                      rates_figure(["de", "en"], {"de": 0.2, "en": 0.01})],
            "hist": [ci_hist_figure([5.0, 0.0] + [1.0] * 18, 0.1), ci_hist_figure([3.0] * 10, 0.2)],
            "removal": [ablation_figure({"en": 0.001, "de": 0.3, "fr": -0.002, "es": 0.0, "it": 0.01}),
                        ablation_figure({"de": -0.2})]}
    for kind, group in figs.items():
        for fig in group:
            own = unshared(fig, SHARED_FIGURES[kind])
            assert with_shared(own, SHARED_FIGURES[kind]) == fig
        assert len(json.dumps(unshared(group[0], SHARED_FIGURES[kind]))) < len(json.dumps(group[0])) / 2
    assert "var SHARED = " + json.dumps(SHARED_FIGURES, separators=(",", ":"), sort_keys=True, ensure_ascii=False) in JS
    with pytest.raises(ValueError, match="lacks the shared keys"):
        unshared({"data": []}, SHARED_FIGURES["rates"])
