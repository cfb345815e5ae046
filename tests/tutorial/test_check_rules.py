"""Every coding exercise's check refuses an answer that breaks exactly one rule the notebook's text states, and
accepts correct answers written differently from the shipped solution.

``RULES`` lists, per exercise, each stated rule with a plausible wrong answer that breaks only that rule and
words the message must hold; a test input of the check must separate each rule from its absence. ``HINTS``
checks the other direction: a hint names a mistake only when the answer is that mistake, so a different wrong
answer never gets it."""

from __future__ import annotations

import pytest
import torch

from tests.tutorial.test_coding_03_04 import counts_profile, make_stats, rates_profile
from vpd_lite.erase.edits import ScalarEdit
from vpd_lite.interpret.labels import categorize as library_categorize
from vpd_lite.method.cross_entropy import language_ce
from vpd_lite.models.corpus import lang_name
from vpd_lite.tutorial import coding


def categorize_with(*, never=True, single_ge=True, en_le=True, use_english=True, foreign_ge=True, n_foreign=3,
                    foreign_first=True, all_ge=True, half_fair=True, mixed_ge=True, by_share=True, sep=", ",
                    names=True, top_is_first=False, skip_zero=False, mostly_needs_one=False):
    """The notebook's categorize rules, written out, with one rule changed by a keyword (a plausible mistake)."""

    def ge(a, b, inclusive):
        return a >= b if inclusive else a > b

    def categorize(profile):
        if never and sum(profile.values()) <= 0:
            return "never fires"
        top = next(iter(profile)) if top_is_first else max(profile, key=lambda lang: profile[lang])
        name = lang_name if names else (lambda lang: lang)
        if ge(profile[top], 0.7, single_ge):
            return name(top)
        others = [lang for lang in profile if lang != "en" and ge(profile[lang], 0.15, foreign_ge)]
        english_low = (profile.get("en", 1.0) <= 0.1 if en_le else profile.get("en", 1.0) < 0.1) or not use_english
        foreign = english_low and len(others) >= n_foreign
        shares = [v for v in profile.values() if v > 0] if skip_zero else list(profile.values())
        every = ge(min(shares), (0.5 / len(profile)) if half_fair else 0.1, all_ge)
        if foreign_first and foreign:
            return "foreign languages"
        if every:
            return "all languages"
        if foreign:
            return "foreign languages"
        named = [lang for lang in profile if ge(profile[lang], 0.2, mixed_ge)]
        if by_share:
            named.sort(key=lambda lang: -profile[lang])
        if (len(named) == 1) if mostly_needs_one else (len(named) <= 1):
            return f"mostly {name(top)}"
        return "mixed (" + sep.join(name(lang) for lang in named) + ")"

    return categorize


@pytest.fixture(scope="module")
def stats():
    return make_stats()


def run(check_name, fn, stats, tiny):
    """Run the check ``check_name`` on the student's ``fn`` (with the notebook-like inputs it needs)."""
    check = getattr(coding, check_name)
    if check_name == "check_language_profile":
        return check(fn, stats)
    if check_name == "check_scan_column":
        model, direction, blocks = tiny
        return check(fn, model, direction, blocks)
    return check(fn)


def _scan(model, direction, s, blocks, init=None, baseline=True, sign=1.0):
    before = language_ce(model, blocks)
    with ScalarEdit(model, [direction], init=s if init is None else init(s)):
        after = language_ce(model, blocks)
    return {lang: sign * (after[lang] - (before[lang] if baseline else 0.0)) for lang in blocks}


def _minimality(g, p, beta, eps=1e-12, n=None, q_dims=None, log=torch.log2, freq=True, reduce="sum"):
    C = g.shape[-1]
    q = (g + eps).pow(p)
    q = q.sum(q_dims) if q_dims is not None else q.reshape(-1, C).sum(0)
    N = g.numel() // C if n is None else n(g)
    per_c = q / N + (beta * (q / N) * log(1 + q) if freq else 0)
    return per_c.sum() if reduce == "sum" else per_c.mean()


def _profile_in_dict_order(stats, cid):
    """Rates with the token counts taken in ``tokens_per_lang``'s order, not looked up by language."""
    module, c = cid
    tokens = torch.tensor([float(n) for n in stats.tokens_per_lang.values()])
    rate = stats.fire_counts[module][:, c].double() / tokens.clamp(min=1).double()
    return _shares(stats.langs, rate)


def _profile_with_own_languages(stats, cid):
    """Rates paired with a language list of its own (the course's five), not ``stats.langs``."""
    module, c = cid
    langs = ["en", "de", "fr", "es", "it"][:len(stats.langs)]
    rate = stats.fire_counts[module][:, c].double() / torch.tensor(
        [float(stats.tokens_per_lang[lang]) for lang in stats.langs]).clamp(min=1).double()
    return _shares(langs, rate)


_BASELINE = {}
_CAPABILITY = "capability"  # a literal: `stream is _CAPABILITY` holds for the same literal only, as `is "capability"`


def _scan_cached_baseline(model, direction, s, blocks):
    """Keeps the first call's unedited cross-entropy for every later call."""
    if not _BASELINE:
        _BASELINE.update(language_ce(model, blocks))
    with ScalarEdit(model, [direction], init=s):
        after = language_ce(model, blocks)
    return {lang: after[lang] - _BASELINE.get(lang, 0.0) for lang in blocks}


def _scan_first_direction(model, direction, s, blocks, _seen=[]):  # noqa: B006 - remembers the first direction
    """The scan column of the first direction it was ever given, whatever direction it is given now."""
    if not _seen:
        _seen.append(direction)
    return _scan(model, _seen[0], s, blocks)


def _scan_by_weight(model, direction, s, blocks):
    """Right: edits the weight itself, measures, and takes the edit off again by subtracting it."""
    layer = dict(model.named_modules())[direction.module]
    before = language_ce(model, blocks)
    change = (s - 1) * torch.outer(direction.u, direction.v)
    with torch.no_grad():
        layer.weight += change
    after = language_ce(model, blocks)
    with torch.no_grad():
        layer.weight -= change
    return {lang: after[lang] - before[lang] for lang in blocks}


def _leaky(z, G, a, lo_inclusive=True, hi_inclusive=True, zero_above=True, alpha=True, one_sided=True):
    inside = G * ((z >= 0) if lo_inclusive else (z > 0))
    if zero_above:
        inside = inside * ((z <= 1) if hi_inclusive else (z < 1))
    leak = (a if alpha else 1.0) * G * ((G < 0) if one_sided else 1.0)
    return torch.where(z < 0, leak, inside)


# (exercise, rule its text states, wrong answer breaking only that rule, words its message holds)
RULES = [
    ("check_components_output", "the mask scales each component", lambda x, V, U, m: (x @ V) @ U,
     ["mask is not used"]),
    ("check_components_output", "column c of V is V_c", lambda x, V, U, m: ((x @ V.T) * m) @ U, ["V transposed"]),
    ("check_components_output", "row c of U is U_c", lambda x, V, U, m: ((x @ V) * m) @ U.T, ["U transposed"]),
    ("check_components_output", "any number of leading dimensions",
     lambda x, V, U, m: ((x.reshape(-1, x.shape[-1]) @ V) * m.reshape(-1, m.shape[-1])) @ U, ["shape"]),
    ("check_components_output", "gradients reach x, V, U and the mask",
     lambda x, V, U, m: ((x @ V) * m.detach()) @ U, ["gradient with respect to mask"]),
    ("check_components_output", "dimensions of size 1 stay", lambda x, V, U, m: (((x @ V) * m) @ U).squeeze(),
     ["shape", "(1, 1)"]),
    ("check_stochastic_mask", "g = 1 keeps the component whatever r is", lambda g, r: g * r, ["g·r"]),
    ("check_stochastic_mask", "m = g + (1 − g)·r between the ends", lambda g, r: torch.maximum(g, r),
     ["larger of g and r"]),
    ("check_stochastic_mask", "m stays in [0, 1]", lambda g, r: g + r, ["value", "g = 1, r = 0.3"]),
    ("check_stochastic_mask", "m has g's shape, dimensions of size 1 too", lambda g, r: (g + (1 - g) * r).squeeze(),
     ["shape", "(1, 5)"]),
    ("check_stochastic_mask", "gradients reach r", lambda g, r: g + (1 - g) * r.detach(),
     ["gradient with respect to r"]),
    ("check_leaky_gradient", "G at z = 0 (0 ≤ z)", lambda z, G, a: _leaky(z, G, a, lo_inclusive=False),
     ["z = 0"]),
    ("check_leaky_gradient", "G at z = 0 whatever the sign of G (the leak only below 0)",
     lambda z, G, a: torch.where((z <= 0) & (G < 0), a * G, G * (z >= 0) * (z <= 1)), ["z = 0, grad_out = -1"]),
    ("check_leaky_gradient", "G at z = 1 whatever the sign of G",
     lambda z, G, a: G * (z >= 0) * ((z < 1) | (G < 0)) + torch.where(z < 0, a * G * (G < 0), 0 * G),
     ["z = 1, grad_out = 2"]),
    ("check_leaky_gradient", "G at z = 1 (z ≤ 1)", lambda z, G, a: _leaky(z, G, a, hi_inclusive=False),
     ["z = 1"]),
    ("check_leaky_gradient", "0 above 1", lambda z, G, a: _leaky(z, G, a, zero_above=False), ["z = 1.5"]),
    ("check_leaky_gradient", "below 0 only G < 0", lambda z, G, a: _leaky(z, G, a, one_sided=False),
     ["one-sided"]),
    ("check_leaky_gradient", "below 0 scaled by alpha", lambda z, G, a: _leaky(z, G, a, alpha=False),
     ["z = -0.5", "alpha = 0.1"]),
    ("check_leaky_gradient", "the result has z's shape", lambda z, G, a: _leaky(z, G, a).squeeze(), ["(1, 5)"]),
    ("check_importance_minimality", "eps guards g = 0 for p < 1", lambda g, p, b: _minimality(g, p, b, eps=0.0),
     ["is inf", "g = 0, p = 0.5", "finite"]),
    ("check_importance_minimality", "the frequency term", lambda g, p, b: _minimality(g, p, b, freq=False),
     ["frequency term"]),
    ("check_importance_minimality", "log base 2", lambda g, p, b: _minimality(g, p, b, log=torch.log),
     ["base 2"]),
    ("check_importance_minimality", "N counts every position (all leading dims)",
     lambda g, p, b: _minimality(g, p, b, n=lambda g: g.shape[0]), ["test input 2 of 4", "g of shape (2, 4, 6)"]),
    ("check_importance_minimality", "q sums over every position",
     lambda g, p, b: _minimality(g, p, b, q_dims=0), ["value"]),
    ("check_importance_minimality", "the power p", lambda g, p, b: _minimality(g, 1.0, b), ["p = 2"]),
    ("check_importance_minimality", "a sum over components", lambda g, p, b: _minimality(g, p, b, reduce="mean"),
     ["number of components C"]),
    ("check_pgd_step", "ascent", lambda s, g, a: (s - a * g.sign()).clamp(0, 1), ["downhill"]),
    ("check_pgd_step", "the sign of the gradient", lambda s, g, a: (s + a * g).clamp(0, 1), ["direction"]),
    ("check_pgd_step", "clamp to [0, 1]", lambda s, g, a: s + a * g.sign(), ["[0, 1]"]),
    ("check_pgd_step", "a zero gradient does not move s",
     lambda s, g, a: (s + a * torch.where(g >= 0, 1.0, -1.0)).clamp(0, 1), ["grad = 0"]),
    ("check_pgd_step", "a source at a bound steps back inside",
     lambda s, g, a: torch.where((s > 0) & (s < 1), (s + a * g.sign()).clamp(0, 1), s), ["grad = -1, step"]),
    ("check_pgd_step", "only the sign, however small the gradient",
     lambda s, g, a: (s + a * g / (g.abs() + 1e-8)).clamp(0, 1), ["grad = 1e-09"]),
    ("check_language_profile", "each language's own token count (by its code)", _profile_in_dict_order,
     ["reverse order"]),
    ("check_language_profile", "rows follow stats.langs", _profile_with_own_languages, ["another order"]),
    ("check_language_profile", "rates, not counts", counts_profile, ["times as much text"]),
    ("check_language_profile", "shares sum to 1", rates_profile, ["sum to", "not 1"]),
    ("check_language_profile", "all 0 for a component that never fires",
     lambda s, cid: {k: (v if sum(s.language_profile(cid).values()) else 1 / len(s.langs))
                     for k, v in s.language_profile(cid).items()}, ["never fires"]),
    ("check_language_profile", "keys are the language codes",
     lambda s, cid: {lang_name(k): v for k, v in s.language_profile(cid).items()}, ["keys"]),
    ("check_categorize", "1: every share 0 is never fires", categorize_with(never=False), ["never fires"]),
    ("check_categorize", "2: top >= 70 % (at 70 %)", categorize_with(single_ge=False), ["fr 70%"]),
    ("check_categorize", "3: English <= 10 % (at 10 %)", categorize_with(en_le=False), ["en 10%, de 45%"]),
    ("check_categorize", "3: English must be low", categorize_with(use_english=False), ["en 24%"]),
    ("check_categorize", "3: others >= 15 % (at 15 %)", categorize_with(foreign_ge=False), ["es 15%"]),
    ("check_categorize", "3: at least three others", categorize_with(n_foreign=4), ["foreign languages"]),
    ("check_categorize", "rule 3 before rule 4", categorize_with(foreign_first=False), ["foreign languages"]),
    ("check_categorize", "4: >= half a fair share (at it)", categorize_with(all_ge=False), ["it 10%"]),
    ("check_categorize", "4: half of 1 / number of languages", categorize_with(half_fair=False), ["es 12%"]),
    ("check_categorize", "5: a second at >= 20 % (at 20 %)", categorize_with(mixed_ge=False), ["fr 20%"]),
    ("check_categorize", "6: largest share first", categorize_with(by_share=False),
     ["'mixed (French, English, German)'"]),
    ("check_categorize", "6: separated by ', '", categorize_with(sep="/"), ["mixed (German, French)"]),
    ("check_categorize", "language names, not codes", categorize_with(names=False), ["expected 'German'"]),
    ("check_categorize", "the largest share, wherever it is in the dict", categorize_with(top_is_first=True),
     ["en 10%, de 75%"]),
    ("check_categorize", "4: every share counts, a 0 too", categorize_with(skip_zero=True), ["it 0%"]),
    ("check_categorize", "5: at most one language at 20 % (none too)", categorize_with(mostly_needs_one=True),
     ["pl 1%"]),
    ("check_scalar_edit", "the prefactor enters as s − 1", lambda W, u, v, s: W + s * torch.outer(u, v),
     ["s = −2"]),
    ("check_scalar_edit", "W' adds the component", lambda W, u, v, s: W - (s - 1) * torch.outer(u, v),
     ["s = −2"]),
    ("check_scalar_edit", "U_c V_cᵀ, not V_c U_cᵀ", lambda W, u, v, s: W + (s - 1) * torch.outer(v, u),
     ["raised RuntimeError"]),
    ("check_scalar_edit", "gradients reach W, u and v",
     lambda W, u, v, s: W + (s - 1) * torch.outer(u, v.detach()), ["gradient with respect to v"]),
    ("check_scalar_edit", "W' has W's shape, a row of one too",
     lambda W, u, v, s: (W + (s - 1) * torch.outer(u, v)).squeeze(), ["shape", "(1, 3)"]),
    ("check_scan_column", "the direction it is given", _scan_first_direction, ["u negated"]),
    ("check_scan_column", "the blocks it is given", _scan_cached_baseline, ["other text"]),
    ("check_scan_column", "minus the unedited model's CE", lambda m, d, s, b: _scan(m, d, s, b, baseline=False),
     ["value", "s = -4"]),
    ("check_scan_column", "edited minus unedited, not the reverse",
     lambda m, d, s, b: _scan(m, d, s, b, sign=-1.0), ["value"]),
    ("check_scan_column", "the edit at s itself", lambda m, d, s, b: _scan(m, d, s, b, init=lambda s: s - 1),
     ["value"]),
    ("check_remainder_mask", "capability batch: u (g = 0)",
     lambda u, stream: torch.ones_like(u), ["capability batch", "your mask is 1"]),
    ("check_remainder_mask", "rest batch: ones", lambda u, stream: u, ["rest batch", "pinned on"]),
    ("check_remainder_mask", "the stream compared by its value",
     lambda u, stream: u.clone() if stream is _CAPABILITY else torch.ones_like(u), ["capability batch"]),
    ("check_remainder_mask", "a float mask, like the components'",
     lambda u, stream: u.clone() if stream == "capability" else torch.ones_like(u, dtype=torch.bool),
     ["bool tensor", "float32"]),
    ("check_remainder_mask", "g + (1 − g)·u with g = 0 is u, not 1 − u",
     lambda u, stream: 1 - u if stream == "capability" else torch.ones_like(u), ["g = 0"]),
]


@pytest.mark.parametrize("check_name, rule, wrong, words", RULES, ids=[f"{r[0][6:]}: {r[1]}" for r in RULES])
def test_each_stated_rule_is_reached_by_a_test_input(check_name, rule, wrong, words, stats, tiny):
    text = str(run(check_name, wrong, stats, tiny))
    assert text.startswith("Not quite:"), (rule, text)
    for word in words:
        assert word in text, (rule, word, text)


def test_every_exercise_has_its_rules_listed():
    checks = {name for name in dir(coding) if name.startswith("check_")}
    assert checks == {r[0] for r in RULES}


def _shares(langs, rate):
    total = float(rate.sum())
    return {lang: (float(r) / total if total > 0 else 0.0) for lang, r in zip(langs, rate)}


CORRECT = [
    ("check_components_output", lambda x, V, U, m: torch.einsum("...i,ic,...c,cj->...j", x, V, m, U)),
    ("check_components_output", lambda x, V, U, m: sum(m[..., c:c + 1] * (x @ V[:, c:c + 1]) * U[c]
                                                       for c in range(V.shape[1]))),
    ("check_stochastic_mask", lambda g, r: 1 - (1 - g) * (1 - r)),
    ("check_stochastic_mask", lambda g, r: r + (1 - r) * g),
    ("check_stochastic_mask", lambda g, r: torch.lerp(g, torch.ones_like(g), r)),
    ("check_leaky_gradient", lambda z, G, a: G * torch.where(z < 0, a * (G < 0), z <= 1)),
    ("check_leaky_gradient", lambda z, G, a: _leaky(z, G, a)),
    ("check_importance_minimality", lambda g, p, b: _minimality(g, p, b)),
    ("check_importance_minimality", lambda g, p, b: (lambda q, n: (q / n * (1 + b * torch.log2(1 + q))).sum())(
        torch.pow(g.flatten(0, -2) + 1e-12, p).sum(0), g.flatten(0, -2).shape[0])),
    ("check_pgd_step", lambda s, g, a: torch.clamp(s + a * torch.sign(g), min=0, max=1)),
    ("check_pgd_step", lambda s, g, a: (s + a * (g > 0).float() - a * (g < 0).float()).clamp(0, 1)),
    ("check_language_profile", lambda s, cid: _shares(s.langs, s.firing_rate(cid[0])[:, cid[1]])),
    ("check_categorize", categorize_with()),
    ("check_categorize", library_categorize),
    ("check_scalar_edit", lambda W, u, v, s: W + (s - 1) * u[:, None] * v[None, :]),
    ("check_scalar_edit", lambda W, u, v, s: W + (s - 1) * torch.einsum("i,j->ij", u, v)),
    ("check_scan_column", lambda m, d, s, b: _scan(m, d, s, b)),
    ("check_scan_column", _scan_by_weight),
    ("check_remainder_mask", lambda u, stream: u.clone() if stream == "capability" else u * 0 + 1),
]


@pytest.mark.parametrize("check_name, fn", CORRECT, ids=[f"{c[0][6:]}-{i}" for i, c in enumerate(CORRECT)])
def test_correct_answers_written_differently_are_accepted(check_name, fn, stats, tiny):
    text = str(run(check_name, fn, stats, tiny))
    assert text.startswith("Correct:"), text


# (exercise, a wrong answer that is none of the named mistakes, hint words it must not get)
HINTS = [
    ("check_components_output", lambda x, V, U, m: 2 * (((x @ V) * m) @ U),
     ["transposed", "mask is not used", "separately"]),
    ("check_stochastic_mask", lambda g, r: g + (1 - g) * r * 0.5, ["g·r", "larger of g and r"]),
    ("check_leaky_gradient", lambda z, G, a: _leaky(z, G, a, zero_above=False),
     ["plain clamp", "one-sided", "wrong sign"]),
    ("check_importance_minimality", lambda g, p, b: _minimality(g, p, b, n=lambda g: g.shape[0]),
     ["number of components", "frequency term", "base 2"]),
    ("check_importance_minimality", lambda g, p, b: 2 * _minimality(g, p, b), ["number of components"]),
    ("check_pgd_step", lambda s, g, a: (s + 2 * a * g.sign()).clamp(0, 1), ["downhill", "[0, 1]", "direction"]),
    ("check_remainder_mask", lambda u, stream: u * 0.5 if stream == "capability" else torch.ones_like(u),
     ["your mask is 1", "pinned on", "g = 0"]),
]


@pytest.mark.parametrize("check_name, wrong, words", HINTS, ids=[f"{h[0][6:]}-{i}" for i, h in enumerate(HINTS)])
def test_a_different_wrong_answer_gets_no_hint(check_name, wrong, words, stats, tiny):
    text = str(run(check_name, wrong, stats, tiny))
    assert text.startswith("Not quite:"), text
    for word in words:
        assert word not in text, (word, text)


def test_a_forgotten_return_is_not_the_untouched_stub(stats):
    def language_profile(stats, cid):
        module, c = cid
        ...  # your code: return {language: share of the firing rate}, e.g. {"en": 0.1, "de": 0.7, ...}

    def forgot(stats, cid):
        module, c = cid
        profile = stats.language_profile((module, c))  # noqa: F841

    assert "not written yet" in str(coding.check_language_profile(language_profile, stats))
    text = str(coding.check_language_profile(forgot, stats))
    assert "returned None" in text and "not written yet" not in text

    def renames(u, stream):
        mask = u  # noqa: F841 - the answer, not returned

    text = str(coding.check_remainder_mask(renames))
    assert "returned None" in text and "not written yet" not in text, text


def test_a_failure_names_the_input_entry_that_differs():
    text = str(coding.check_leaky_gradient(lambda z, G, a: G * ((z >= 0) & (z <= 1))))
    assert "at index (2,)" in text and "z = -0.5, grad_out = -3, alpha = 0.1" in text, text
    text = str(coding.check_components_output(lambda x, V, U, m: ((x @ V) * m) @ U.T))
    assert "x = [1, 2, -1]" in text and "mask = [1, 0, 0.5]" in text, text
    text = str(coding.check_scalar_edit(lambda W, u, v, s: W + s * torch.outer(u, v)))  # W's entry, by its index
    assert "W[" in text and "u = [" in text, text


def test_the_never_fires_rule_is_reached_when_every_component_fires(stats):
    """Statistics without a dead component (as a full run may have) still get a test input that never fires."""
    import dataclasses

    busy = dataclasses.replace(stats, fire_counts={m: t + 1 for m, t in stats.fire_counts.items()})
    assert all(busy.n_fires(cid) > 0 for cid in busy.component_ids())
    assert str(coding.check_language_profile(lambda s, cid: s.language_profile(cid), busy)).startswith("Correct:")
    uniform_when_dead = RULES[[r[1] for r in RULES].index("all 0 for a component that never fires")][2]
    text = str(coding.check_language_profile(uniform_when_dead, busy))
    assert text.startswith("Not quite:") and "never fires" in text, text


def test_an_input_changed_in_place_is_said_even_when_the_value_is_right():
    """A function that writes into its input would alter its caller's tensor: the check says which input."""

    def clamps_in_place(s, g, a):
        return s.add_(a * torch.sign(g)).clamp_(0, 1)  # the right values, but s is overwritten

    text = str(coding.check_pgd_step(clamps_in_place))
    assert text.startswith("Not quite:") and "changed its input `" in text and "in place" in text, text


def test_a_lower_precision_is_named_when_the_values_differ():
    text = str(coding.check_stochastic_mask(lambda g, r: (g + (1 - g) * r).to(torch.float16) + 1e-3))
    assert text.startswith("Not quite:") and "float16" in text and "float32" in text, text


def test_an_edit_left_on_the_model_is_said_and_removed(tiny):
    """A scan column computed right but with the edit left attached: the check says so (and removes it), so
    later cells see the model as trained."""
    model, direction, blocks = tiny
    before = language_ce(model, blocks)

    def leaves_the_edit(m, d, s, b):
        base = language_ce(m, b)
        ScalarEdit(m, [d], init=s).__enter__()  # never left: the hook stays on the matrix
        after = language_ce(m, b)
        return {lang: after[lang] - base[lang] for lang in b}

    text = str(coding.check_scan_column(leaves_the_edit, model, direction, blocks))
    assert text.startswith("Not quite:") and "the values are right" in text and "ScalarEdit" in text, text
    assert language_ce(model, blocks) == before  # removed again


def _profile_popping_english(profile):
    """Right rules, but it takes English out of the caller's dict (``pop``) before rules 4 to 6."""
    others = profile
    english = others.pop("en", 1.0)
    return library_categorize({"en": english, **others})


def _profile_through_a_view(stats, cid):
    """Right shares, computed by dividing a view of ``stats``' firing counts in place."""
    module, c = cid
    rate = stats.fire_counts[module][:, c]
    for i, lang in enumerate(stats.langs):
        rate[i] /= max(int(stats.tokens_per_lang[lang]), 1)
    total = float(rate.sum())
    return {lang: (float(r) / total if total > 0 else 0.0) for lang, r in zip(stats.langs, rate)}


def _scan_scaling_u(model, direction, s, blocks):
    direction.u.mul_(s)  # scales the component instead of editing with s, in place
    return _scan(model, direction, 1.0, blocks, init=lambda _: 2.0)


def _edit_in_place(W, u, v, s):
    W += (s - 1) * torch.outer(u, v)
    return W


# (exercise, an answer that changes one of its inputs in place, the input's name in the message or None when torch
# refuses the change itself)
IN_PLACE_ANSWERS = [
    ("check_categorize", _profile_popping_english, "profile"),
    ("check_language_profile", _profile_through_a_view, "stats"),
    ("check_scan_column", _scan_scaling_u, "direction"),
    ("check_scalar_edit", _edit_in_place, None),
    ("check_stochastic_mask", lambda g, r: r.mul_(1 - g).add_(g), None),
]


@pytest.mark.parametrize("check_name, fn, name", IN_PLACE_ANSWERS, ids=[a[0][6:] for a in IN_PLACE_ANSWERS])
def test_an_input_changed_in_place_is_named_and_the_callers_object_is_untouched(check_name, fn, name, stats, tiny):
    """Whatever the input (a dict, the statistics, a component's direction, a tensor that needs its gradient), an
    answer that changes it in place is told so, with the test input; the notebook's own objects stay as they were,
    so that later cells and a second try see them unchanged."""
    import copy

    before = copy.deepcopy((stats, tiny[1], tiny[2]))
    text = str(run(check_name, fn, stats, tiny))
    assert text.startswith("Not quite:") and "in place" in text and "expected" not in text, text
    if name is not None:
        assert f"input `{name}` in place" in text, text
    else:
        assert "torch refused it" in text and " with " in text, text  # the test input is shown
    assert coding._same(stats, before[0]) and coding._same(tiny[1], before[1]) and coding._same(tiny[2], before[2])


def test_a_result_of_another_type_is_described_on_one_line():
    import numpy as np

    text = str(coding.check_leaky_gradient(lambda z, G, a: (G * (z >= 0) * (z <= 1)).numpy()))
    assert "numpy ndarray of shape (12,)" in text and "\n" not in text, text
