"""Rebuild the shipped multilingual corpus ``data/corpus/<lang>/{train,heldout}.txt`` from Debian packages.

Sources (all Debian ``main``, see ``data/README.md`` for licences):

* ``debian-handbook`` — "The Debian Administrator's Handbook", one book translated paragraph by paragraph
  into every language we use. Its HTML pages give *parallel* prose: paragraph ``i`` of page ``p`` is the same
  paragraph in en, de, fr, es and it.
* ``fortunes`` (en), ``fortunes-de``, ``fortunes-es``, ``fortunes-it`` — fortune-cookie quotes, jokes,
  proverbs and anecdotes: everyday topics the handbook lacks. There is no French fortune package.

Design:

* held-out = a fixed set of handbook pages (``HELDOUT_PAGES``), kept only where a paragraph is translated in
  all five languages, so line ``i`` of every ``heldout.txt`` is the same paragraph (parallel, same topic);
* train = every other handbook page + fortunes, de-duplicated, sampled (seeded) up to a per-language byte
  budget that gives the 50/20/10/10/10 en/de/fr/es/it mix; no held-out page is used for training in any
  language.

One paragraph (or one fortune) per line, UTF-8, whitespace collapsed.

Usage (needs ``apt-get`` and ``dpkg-deb``, i.e. a Debian/Ubuntu machine; users of the package never need it)::

    python scripts/build_corpus.py                      # download the pinned .debs into a temp dir, rebuild
    python scripts/build_corpus.py --debs /some/folder  # reuse .deb files already downloaded there
"""

from __future__ import annotations

import argparse
import html.parser
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # run from a checkout without `pip install -e .`

from vpd_lite.commands.cli import unit_interval

LANGS = ("en", "de", "fr", "es", "it")

#: Debian package -> pinned version (Debian 12 "bookworm"). The build refuses other versions unless
#: ``--any-version`` is given, so the committed text is reproducible byte for byte.
PACKAGES = {
    "debian-handbook": "11.20220922",
    "fortunes": "1:1.99.1-7.3",
    "fortunes-de": "0.35-1",
    "fortunes-es": "1.36",
    "fortunes-it": "1.99-4.1",
}

HANDBOOK_LOCALES = {"en": "en-US", "de": "de-DE", "fr": "fr-FR", "es": "es-ES", "it": "it-IT"}

#: Handbook pages held out in every language: why Linux / why Debian, planning a migration, what the
#: kernel and user space do, solving problems, following Debian news (about 37 KB of English prose).
HELDOUT_PAGES = (
    "sect.why-gnu-linux.html",
    "sect.why-debian.html",
    "sect.how-to-migrate.html",
    "sect.kernel-role-and-tasks.html",
    "sect.user-space.html",
    "sect.common-procedures.html",
    "sect.follow-debian-news.html",
)

#: Training bytes per language (UTF-8): en 50 %, de 20 %, fr/es/it 10 % each of 1.5 MB.
TRAIN_BUDGET = {"en": 750_000, "de": 300_000, "fr": 150_000, "es": 150_000, "it": 150_000}
#: At most this share of a language's training bytes comes from fortunes (the rest is handbook prose).
FORTUNE_SHARE = 0.3

#: Fortune files used per language (ASCII art, IRC logs, code and the offensive sections are left out).
FORTUNE_FILES = {
    "en": ("cookie", "definitions", "education", "food", "humorists", "kids", "law", "love",
           "medicine", "miscellaneous", "people", "pets", "platitudes", "politics", "science",
           "songs-poems", "sports", "wisdom", "work", "computers"),
    "de": ("anekdoten", "bahnhof", "beilagen", "brot", "computer", "dessert", "doppelsinnig", "elefanten",
           "fussball", "gedichte", "hauptgericht", "holenlassen", "huhn", "kalt", "kinderzitate", "kuchen",
           "letzteworte", "lieberals", "loewe", "mathematiker", "murphy", "namen", "plaetzchen", "quiz",
           "regeln", "salat", "sauce", "sicherheitshinweise", "sprichworte", "sprichwortev", "sprueche",
           "stilblueten", "suppe", "tips", "translations", "unfug", "vornamen", "vorspeise", "warmduscher",
           "witze", "woerterbuch", "wusstensie", "zitate", "infodrom"),
    "es": ("amistad.fortunes", "arte.fortunes", "asimov.fortunes", "ciencia.fortunes", "deprimente.fortunes",
           "familia.fortunes", "famosos.fortunes", "filosofia.fortunes", "humanos.fortunes",
           "informatica.fortunes", "lao-tse.fortunes", "leydemurphy.fortunes", "libertad.fortunes",
           "nietzsche.fortunes", "pintadas.fortunes", "poder.fortunes", "proverbios.fortunes",
           "refranes.fortunes", "sabiduria.fortunes", "schopenhauer.fortunes", "sentimientos.fortunes",
           "varios.fortunes", "verdad.fortunes", "vida.fortunes"),
    "it": ("adams", "computer", "definizioni", "formiche", "italia", "jackfr", "leggi", "luke", "luttazzi",
           "norm", "paolotedeschi", "zuse"),
}
FORTUNE_DIRS = {"en": "fortunes", "de": "fortunes-de", "es": "fortunes-es", "it": "fortunes-it"}
FORTUNE_SUBDIR = {"en": "", "de": "de", "es": "es", "it": "it"}

MIN_HANDBOOK_CHARS = 80
MIN_FORTUNE_CHARS = 50
SEED = 0

#: Frequent function words, for a crude language check (drops untranslated or mixed paragraphs).
STOPWORDS = {
    "en": "the of and to in is that it for you with as are this be on not by or have from which can".split(),
    "de": "der die und das ist nicht ein eine den zu mit sich des auf für im dem von sie es auch werden".split(),
    "fr": "le la les de des et est un une du que en pour dans qui pas sur au avec ce il sont par".split(),
    "es": "el la los las de y que en un una es por con para del se no al lo como más su".split(),
    "it": "il di che la e un una per non è con del della sono le si da gli nel ma come anche".split(),
}


# --------------------------------------------------------------------------------------------- helpers
def clean(text: str) -> str:
    """Collapse whitespace, drop control characters (fortune "overstriking" backspaces included)."""
    text = re.sub(r".\x08", "", text)  # x BACKSPACE y -> y (bold/underline by overstriking)
    text = "".join(ch for ch in text if ch in "\n\t" or ch.isprintable())
    return re.sub(r"\s+", " ", text).strip()


def language_scores(text: str) -> dict[str, int]:
    """Count function words of each language in ``text`` (lower-cased word tokens)."""
    words = Counter(re.findall(r"[^\W\d_]+", text.lower()))
    return {lang: sum(words[w] for w in sw) for lang, sw in STOPWORDS.items()}


def is_language(text: str, lang: str) -> bool:
    """True when ``lang``'s function words are present and outnumber every other language's."""
    scores = language_scores(text)
    best_other = max(v for k, v in scores.items() if k != lang)
    return scores[lang] >= 2 and scores[lang] > best_other


class _ParaParser(html.parser.HTMLParser):
    """Collect the text of every ``<div class="para">`` of a handbook page, without ``<pre>``/tables."""

    SKIP = ("pre", "table", "script", "style")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paras: list[str] = []
        self._cur: list[str] | None = None
        self._depth = 0
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._cur is None:
            if tag == "div" and dict(attrs).get("class") == "para":
                self._cur, self._depth = [], 1
            return
        if tag == "div":
            self._depth += 1
        if tag in self.SKIP:
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if self._cur is None:
            return
        if tag in self.SKIP:
            self._skip -= 1
        if tag == "div":
            self._depth -= 1
            if self._depth == 0:
                self.paras.append(clean("".join(self._cur)))
                self._cur = None

    def handle_data(self, data: str) -> None:
        if self._cur is not None and self._skip == 0:
            self._cur.append(data)


def handbook_pages(root: Path, lang: str) -> dict[str, list[str]]:
    """``{page file name: [paragraph text, ...]}`` for one language of the extracted handbook."""
    folder = root / "debian-handbook" / "usr/share/doc/debian-handbook/html" / HANDBOOK_LOCALES[lang]
    if not folder.is_dir():
        raise FileNotFoundError(f"handbook folder for {lang!r} not found: {folder}")
    pages = {}
    for path in sorted(folder.glob("*.html")):
        parser = _ParaParser()
        parser.feed(path.read_text(encoding="utf-8"))
        pages[path.name] = parser.paras
    return pages


def fortunes(root: Path, lang: str) -> list[str]:
    """All usable fortunes of ``lang`` (attribution lines and short/art entries dropped), in file order."""
    if lang not in FORTUNE_FILES:
        return []
    folder = root / FORTUNE_DIRS[lang] / "usr/share/games/fortunes" / FORTUNE_SUBDIR[lang]
    out = []
    for name in FORTUNE_FILES[lang]:
        path = folder / name
        if not path.is_file():
            raise FileNotFoundError(f"fortune file missing: {path}")
        raw = path.read_text(encoding="utf-8", errors="strict")
        for entry in re.split(r"^%\s*$", raw, flags=re.M):
            lines = [ln for ln in entry.splitlines() if not re.match(r"^\s*--\s", ln)]  # attributions
            body = "\n".join(lines)
            symbols = sum(1 for ch in body if not (ch.isalnum() or ch.isspace() or ch in ".,;:!?'\"-()"))
            text = clean(body)
            if len(text) < MIN_FORTUNE_CHARS or symbols > 0.05 * max(len(body), 1):
                continue
            if is_language(text, lang):
                out.append(text)
    return out


# ----------------------------------------------------------------------------------------------- build
def build(root: Path, out_dir: Path, fortune_share: float = FORTUNE_SHARE) -> dict[str, dict[str, int]]:
    """Write ``out_dir/<lang>/{train,heldout}.txt`` from the extracted packages under ``root``.

    Also copies each package's Debian ``copyright`` file to ``out_dir/licenses/<package>.copyright``.

    Returns ``{lang: {"train": bytes, "heldout": bytes, "train_lines": n, "heldout_lines": n}}``.
    """
    pages = {lang: handbook_pages(root, lang) for lang in LANGS}
    en = pages["en"]
    for lang in LANGS:
        if pages[lang].keys() != en.keys():
            raise ValueError(f"handbook pages differ between en and {lang}")
        for name in en:
            if len(pages[lang][name]) != len(en[name]):
                raise ValueError(f"paragraph count of {name} differs between en and {lang}")
    missing = [p for p in HELDOUT_PAGES if p not in en]
    if missing:
        raise ValueError(f"held-out pages not in the handbook: {missing}")

    def usable(lang: str, name: str, i: int) -> bool:
        text = pages[lang][name][i]
        if len(text) < MIN_HANDBOOK_CHARS or not is_language(text, lang):
            return False
        return lang == "en" or text != en[name][i]  # untranslated paragraphs stay English

    # held-out: paragraphs of the held-out pages usable in all five languages (parallel lines)
    heldout = {lang: [] for lang in LANGS}
    for name in HELDOUT_PAGES:
        for i in range(len(en[name])):
            if all(usable(lang, name, i) for lang in LANGS):
                for lang in LANGS:
                    heldout[lang].append(pages[lang][name][i])

    licenses = out_dir / "licenses"
    licenses.mkdir(parents=True, exist_ok=True)
    for pkg in PACKAGES:
        if pkg.startswith("fortunes") and fortune_share <= 0:
            continue
        src = root / pkg / "usr/share/doc" / pkg / "copyright"
        tmp = licenses / f"{pkg}.copyright.tmp"
        shutil.copyfile(src, tmp)
        os.replace(tmp, licenses / f"{pkg}.copyright")

    rng = random.Random(SEED)
    stats = {}
    for lang in LANGS:
        held = set(heldout[lang])
        seen: set[str] = set(held)

        def dedup(texts: list[str]) -> list[str]:
            out = []
            for t in texts:
                if t not in seen:
                    seen.add(t)
                    out.append(t)
            return out

        hb = dedup([pages[lang][name][i] for name in sorted(en) if name not in HELDOUT_PAGES
                    for i in range(len(en[name])) if usable(lang, name, i)])
        ft = dedup(fortunes(root, lang))
        rng.shuffle(hb)
        rng.shuffle(ft)
        budget = TRAIN_BUDGET[lang]
        take_ft = _take(ft, int(fortune_share * budget)) if ft and fortune_share > 0 else []
        take_hb = _take(hb, budget - _nbytes(take_ft))
        if _nbytes(take_hb) + _nbytes(take_ft) < budget:
            raise ValueError(f"not enough {lang} text for the {budget}-byte training budget")
        train = take_hb + take_ft
        rng.shuffle(train)

        folder = out_dir / lang
        folder.mkdir(parents=True, exist_ok=True)
        _write_lines(folder / "train.txt", train)
        _write_lines(folder / "heldout.txt", heldout[lang])
        stats[lang] = {
            "train": _nbytes(train), "heldout": _nbytes(heldout[lang]),
            "train_lines": len(train), "heldout_lines": len(heldout[lang]),
            "train_fortune_bytes": _nbytes(take_ft), "train_handbook_bytes": _nbytes(take_hb),
        }
    return stats


def _nbytes(lines: list[str]) -> int:
    return sum(len(t.encode("utf-8")) + 1 for t in lines)


def _take(texts: list[str], budget: int) -> list[str]:
    """The longest prefix of ``texts`` whose UTF-8 size (one line each) reaches ``budget`` bytes."""
    out, total = [], 0
    for t in texts:
        if total >= budget:
            break
        out.append(t)
        total += len(t.encode("utf-8")) + 1
    return out


def _write_lines(path: Path, lines: list[str]) -> None:
    """Atomically write one text per line (UTF-8, ``\\n``)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(t + "\n" for t in lines), encoding="utf-8")
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------------- packages
def fetch_and_extract(debs: Path, root: Path, any_version: bool) -> None:
    """Download (if needed) the pinned ``.deb`` files into ``debs`` and extract each into ``root/<pkg>``."""
    for pkg, version in PACKAGES.items():
        found = sorted(debs.glob(f"{pkg}_*.deb"))
        if not found:
            spec = pkg if any_version else f"{pkg}={version}"
            subprocess.run(["apt-get", "download", spec], cwd=debs, check=True)
            found = sorted(debs.glob(f"{pkg}_*.deb"))
        deb = found[-1]
        got = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], check=True,
                             capture_output=True, text=True).stdout.strip()
        if got != version and not any_version:
            raise SystemExit(f"{deb.name} has version {got!r}, pinned {version!r} (use --any-version)")
        target = root / pkg
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(target)], check=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--debs", type=Path, default=None,
                    help="folder holding (or receiving) the .deb files; default: a temporary folder")
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "data" / "corpus",
                    help="output folder (default: data/corpus of this clone, the shipped corpus)")
    ap.add_argument("--any-version", action="store_true", help="accept package versions other than pinned")
    ap.add_argument("--fortune-share", type=unit_interval, default=FORTUNE_SHARE,
                    help="largest share of a language's training bytes taken from fortunes, in [0, 1] "
                         "(0 = handbook only; default: %(default)s)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        debs = args.debs or Path(tmp) / "debs"
        debs.mkdir(parents=True, exist_ok=True)
        root = Path(tmp) / "extracted"
        fetch_and_extract(debs.resolve(), root, args.any_version)
        stats = build(root, args.out, args.fortune_share)
    print(f"{'lang':<5}{'train B':>10}{'(handbook':>11}{'fortunes)':>11}{'lines':>8}{'heldout B':>11}{'lines':>7}")
    for lang, s in stats.items():
        print(f"{lang:<5}{s['train']:>10}{s['train_handbook_bytes']:>11}{s['train_fortune_bytes']:>11}"
              f"{s['train_lines']:>8}{s['heldout']:>11}{s['heldout_lines']:>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
