"""The coding exercises of notebooks 03 and 04: every check passes the library's own function and the solution
printed in the notebook, and says something useful about a typical wrong answer, the unwritten stub and a
function that raises."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from tests.tutorial.test_coding import solution, stub
from vpd_lite.interpret.labels import categorize
from vpd_lite.interpret.statistics import ComponentStats, StatsAccumulator
from vpd_lite.tutorial import coding

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def raises(*args):
    raise ValueError("oops")


def ok(check):
    return bool(check) and str(check).startswith("Correct:")


def nope(check, *words):
    text = str(check)
    return not bool(check) and text.startswith("Not quite:") and all(w in text for w in words)


# ---- notebook 03
def make_stats() -> ComponentStats:
    """Module "a": comp 0 German, comp 1 everywhere, comp 2 dead; module "b": comp 1 mostly English."""
    langs = ["en", "de", "fr"]
    acc = StatsAccumulator({"a": 3, "b": 2}, langs, threshold=0.1, top_k=2, context_left=1, context_right=1)
    for k, lang in enumerate(langs):
        a = torch.zeros(1, 6, 3)
        if lang == "de":
            a[0, 1:5, 0] = 0.8
        a[0, : 2 + k, 1] = 0.5
        b = torch.zeros(1, 6, 2)
        b[0, :3, 1] = 0.9 if lang == "en" else 0.0
        b[0, 0, 1] = 0.9
        acc.update(lang, torch.arange(6).view(1, 6) + 6 * k, {"a": a, "b": b})
    return acc.finalize()


def counts_profile(stats, cid):
    """Typical wrong answer: shares of firing counts instead of rates."""
    module, c = cid
    counts = stats.fire_counts[module][:, c].double()
    total = float(counts.sum())
    return {lang: (float(n) / total if total else 0.0) for lang, n in zip(stats.langs, counts)}


def rates_profile(stats, cid):
    """Typical wrong answer: the rates, not normalised to shares."""
    module, c = cid
    return {lang: float(r) for lang, r in zip(stats.langs, stats.firing_rate(module)[:, c])}


def test_language_profile_check():
    stats = make_stats()
    assert ok(coding.check_language_profile(lambda s, cid: s.language_profile(cid), stats))
    assert ok(coding.check_language_profile(solution("03_label.ipynb", "language_profile"), stats))
    # equal text per language: only the uneven-text test input tells counts from rates
    assert nope(coding.check_language_profile(counts_profile, stats), "value", "times as much text")
    assert nope(coding.check_language_profile(rates_profile, stats), "value", "largest difference")
    assert nope(coding.check_language_profile(stub, stats), "not written yet", "dict")
    assert nope(coding.check_language_profile(raises, stats), "raised ValueError")
    nan_dead = lambda s, cid: {k: v / max(sum(rates_profile(s, cid).values()), 0.0) if sum(rates_profile(s, cid).values())
                               else float("nan") for k, v in rates_profile(s, cid).items()}  # noqa: E731
    assert nope(coding.check_language_profile(nan_dead, stats), "never fires")
    wrong_keys = lambda s, cid: dict(enumerate(s.language_profile(cid).values()))  # noqa: E731
    assert nope(coding.check_language_profile(wrong_keys, stats), "keys")


def test_category_check():
    assert ok(coding.check_categorize(categorize))
    assert ok(coding.check_categorize(solution("03_label.ipynb", "categorize")))
    assert {categorize(p) for p in coding.CATEGORY_PROFILES} == {
        "German", "French", "foreign languages", "all languages", "mostly German", "mixed (German, French)",
        "mixed (English, Italian, Spanish)", "mixed (French, English, German)", "mixed (English, German, French)",
        "mixed (English, German, French, Spanish)", "never fires"}  # every rule is reached

    def codes_not_names(profile):
        return categorize(profile).replace("German", "de")

    assert nope(coding.check_categorize(codes_not_names), "yours is", "expected 'German'")
    assert nope(coding.check_categorize(lambda p: categorize(p).replace(", ", "/")), "mixed (German, French)")
    assert nope(coding.check_categorize(stub), "not written yet", "str")
    assert nope(coding.check_categorize(raises), "raised ValueError")
    assert nope(coding.check_categorize(lambda p: 3), "should be str")
    # a neighbouring threshold (the text's 10, 15, 20 and 70 % mixed up, 2/3 for 70 %) is a wrong answer too
    from vpd_lite.interpret.labels import LabelConfig

    for wrong in ({"single_lang_share": 2 / 3}, {"single_lang_share": 0.65}, {"foreign_max_english": 0.15},
                  {"foreign_max_english": 0.2}, {"foreign_min_share": 0.1}, {"mixed_min_share": 0.15},
                  {"all_langs_min_fair": 0.4}):
        config = LabelConfig(**wrong)
        assert nope(coding.check_categorize(lambda p, config=config: categorize(p, config)), "the profile"), wrong


# ---- notebook 04
def test_scalar_edit_check():
    assert ok(coding.check_scalar_edit(coding.edited_weight))
    assert ok(coding.check_scalar_edit(solution("04_erase_german.ipynb", "edited_weight")))
    assert nope(coding.check_scalar_edit(lambda W, u, v, s: W - (s - 1) * torch.outer(u, v)), "value", "s = −2")
    assert nope(coding.check_scalar_edit(lambda W, u, v, s: W + s * torch.outer(u, v)), "value")
    assert nope(coding.check_scalar_edit(lambda W, u, v, s: W + (s - 1) * torch.outer(v, u)), "raised RuntimeError")
    assert nope(coding.check_scalar_edit(lambda W, u, v, s: (W + (s - 1) * torch.outer(u, v)).T), "shape")
    assert nope(coding.check_scalar_edit(lambda W, u, v, s: (W + (s - 1) * torch.outer(u, v)).detach()), "gradient")
    assert nope(coding.check_scalar_edit(stub), "not written yet", "tensor")
    assert nope(coding.check_scalar_edit(raises), "raised ValueError")


def test_edited_weight_is_what_the_library_edit_computes():
    """The reference reads W' off the library's hook; on a real nn.Linear under ScalarEdit it is the same."""
    from vpd_lite.erase.edits import Direction, ScalarEdit

    torch.manual_seed(0)
    lin = torch.nn.Linear(4, 3, bias=False)
    u, v = torch.randn(3), torch.randn(4)
    with torch.no_grad(), ScalarEdit(lin, [Direction("", 0, u, v)], init=-2.5):
        via_edit = lin(torch.eye(4)).T
    torch.testing.assert_close(coding.edited_weight(lin.weight.detach(), u, v, -2.5), via_edit)


def test_scan_column_check(tiny):
    model, direction, blocks = tiny
    check = coding.check_scan_column
    assert ok(check(coding.scan_column, model, direction, blocks))
    assert ok(check(solution("04_erase_german.ipynb", "scan_column"), model, direction, blocks))
    good = solution("04_erase_german.ipynb", "scan_column")
    flipped = lambda m, d, s, b: {k: -x for k, x in good(m, d, s, b).items()}  # noqa: E731
    assert nope(check(flipped, model, direction, blocks), "value", "s = -4")
    from vpd_lite.erase.edits import ScalarEdit
    from vpd_lite.method.cross_entropy import language_ce

    def no_baseline(m, d, s, b):  # the CE under the edit, not its change
        with ScalarEdit(m, [d], init=s):
            return language_ce(m, b)

    assert nope(check(no_baseline, model, direction, blocks), "value")
    assert nope(check(stub, model, direction, blocks), "not written yet", "dict")
    assert nope(check(raises, model, direction, blocks), "raised ValueError")


def test_scan_column_check_undoes_what_the_student_left_on_the_model(tiny):
    model, direction, blocks = tiny
    from vpd_lite.erase.edits import ScalarEdit
    from vpd_lite.method.cross_entropy import language_ce

    before = language_ce(model, blocks)

    def leaves_edit_attached(m, d, s, b):
        ScalarEdit(m, [d], init=s).attach()  # never removed
        lin = dict(m.named_modules())[d.module]
        with torch.no_grad():
            lin.weight.mul_(2.0)  # and writes into the weight
        raise RuntimeError("gave up")

    assert nope(coding.check_scan_column(leaves_edit_attached, model, direction, blocks), "raised RuntimeError")
    assert language_ce(model, blocks) == before


# ---- the notebooks' exercise cells
@pytest.mark.parametrize("notebook, names", [
    ("03_label.ipynb", ["language_profile", "categorize"]),
    ("04_erase_german.ipynb", ["edited_weight", "scan_column"]),
])
def test_each_coding_exercise_has_a_stub_a_check_and_a_collapsed_solution(notebook, names):
    cells = json.loads((NOTEBOOKS / notebook).read_text(encoding="utf-8"))["cells"]
    texts = ["".join(c["source"]) for c in cells]
    for name in names:
        stub_at = next(i for i, t in enumerate(texts) if cells[i]["cell_type"] == "code" and f"def {name}(" in t)
        body = texts[stub_at]
        assert re.search(r"^\s+\.\.\.  # your code", body, flags=re.M), name  # the stub returns None
        assert re.search(rf"coding\.check_\w+\({name}\b", body), name
        assert cells[stub_at - 1]["cell_type"] == "markdown" and "(code)" in texts[stub_at - 1]
        assert "<details><summary>Solution</summary>" in texts[stub_at + 1] and f"def {name}(" in texts[stub_at + 1]
        # later cells never use the student's function
        assert not any(re.search(rf"\b{name}\(", t) for t in texts[stub_at + 2:] if "def " not in t), name
