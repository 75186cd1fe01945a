"""The Excel data book of one subscriber: every question as a banner table, in the subscriber's language.

A data book is what a subscriber's own analysts open beside the PDF: a contents sheet linking to every
table; one sheet per question with the banner columns across (Total, the benchmark, then each banner's
columns with their letters), rows for the unweighted and weighted bases, each code's column percent, the
top-2 and bottom-2 boxes and the mean, each followed by a row of significance letters in their own cells;
and a notes sheet with the methods. Every figure is a real number cell with a number format, never text.
Withheld cells (a base under ``min_base``, or an ``F`` quality flag) are blank with a footnote; ``E``
estimates are marked. Written with XlsxWriter, in memory (see write).

It reads :class:`wavetool.stats.Tables` (computed with the subscriber's banners) and nothing else: the
book holds the subscriber's own scope, its benchmark's top-2 box and mean, and its custom questions only.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import xlsxwriter

from .config import StudyConfig
from .errors import OutputError
from .fsutil import atomic_path
from .report.wording import typeset
from .stats import Tables
from .texts import set_title, translated

TEXTS = {
    "en": {
        "contents": "Contents",
        "notes": "Notes",
        "title": "Data book",
        "wave": "Wave",
        "question": "Question",
        "table": "Table",
        "base_n": "Unweighted base",
        "base_w": "Weighted base",
        "topbox": "Top-2 box",
        "bottombox": "Bottom-2 box",
        "mean": "Mean",
        "sd": "Standard deviation",
        "sig": "sig.",
        "total": "Total",
        "benchmark": "Benchmark",
        "benchmark_note": "Benchmark: all other respondents of the wave (top-2 box and mean only)",
        "withheld": "Blank: withheld (unweighted base under {min_base}, or too unreliable to publish: F).",
        "caution": "E: use with caution (coefficient of variation between {low} and {high} %).",
        "letters": "Letters: this column is significantly higher than the column with that letter, within the "
        "same banner ({test}; {adjust}). Columns with a base under {min_base} are not tested.",
        "percent_note": "Column percents of valid responses, weighted; the columns of a banner may not add to "
        "the total where respondents did not answer the banner question.",
        "back": "Back to contents",
        "mr": "Percent of respondents (more than one answer allowed)",
        "methods": "Methods",
        "weights": "Weights",
        "tests": "Tests",
        "adjustment": "Adjustment for multiple comparisons",
        "suppression": "Suppression",
        "confidence": "Confidence level",
        "banners": "Banners",
        "generated": "Produced by wavetool from the study database.",
        "weight_source": {"raked": "raked (wavetool weight)", "vendor": "vendor's final weight", "none": "unweighted"},
    },
    "fr": {
        "contents": "Table des matières",
        "notes": "Notes",
        "title": "Cahier de données",
        "wave": "Vague",
        "question": "Question",
        "table": "Tableau",
        "base_n": "Base non pondérée",
        "base_w": "Base pondérée",
        "topbox": "Deux cotes supérieures",
        "bottombox": "Deux cotes inférieures",
        "mean": "Moyenne",
        "sd": "Écart-type",
        "sig": "sig.",
        "total": "Total",
        "benchmark": "Référence",
        "benchmark_note": "Référence : tous les autres répondants de la vague (deux cotes supérieures et moyenne seulement)",
        "withheld": "Vide : donnée supprimée (base non pondérée inférieure à {min_base}, ou trop peu fiable pour "
        "être publiée : F).",
        "caution": "E : à utiliser avec prudence (coefficient de variation entre {low} et {high} %).",
        "letters": "Lettres : cette colonne est significativement plus élevée que la colonne portant cette lettre, "
        "dans la même bannière ({test}; {adjust}). Les colonnes dont la base est inférieure à {min_base} ne sont "
        "pas testées.",
        "percent_note": "Pourcentages en colonne des réponses valides, pondérés; les colonnes d'une bannière "
        "peuvent ne pas totaliser le total lorsque des répondants n'ont pas répondu à la question de la bannière.",
        "back": "Retour à la table des matières",
        "mr": "Pourcentage des répondants (plusieurs réponses possibles)",
        "methods": "Méthodes",
        "weights": "Pondération",
        "tests": "Tests",
        "adjustment": "Correction pour comparaisons multiples",
        "suppression": "Suppression",
        "confidence": "Niveau de confiance",
        "banners": "Bannières",
        "generated": "Produit par wavetool à partir de la base de données de l'étude.",
        "weight_source": {
            "raked": "calée (wavetool weight)",
            "vendor": "pondération finale du fournisseur",
            "none": "non pondéré",
        },
    },
}
ADJUST_TEXT = {
    "en": {
        "bonferroni": "Bonferroni-adjusted within each row",
        "bh": "Benjamini-Hochberg within each row",
        "none": "no adjustment",
    },
    "fr": {
        "bonferroni": "correction de Bonferroni dans chaque rangée",
        "bh": "Benjamini-Hochberg dans chaque rangée",
        "none": "sans correction",
    },
}
LOCALE_PREFIX = {"en": "", "fr": "[$-0C0C]"}  # fr_CA: Excel's locale id 0x0C0C on every number format
FIXED_DATE = dt.datetime(2000, 1, 1)  # the book's document date: the same tables give the same bytes
_SHEET_BAD = re.compile(r"[\[\]:*?/\\']")


BOOKS_DIR = "tables"


def book_path(config: StudyConfig, wave: int, subscriber: str) -> Path:
    """Where ``wavetool run`` writes a subscriber's data book: ``tables/wave-N/<subscriber>.xlsx``."""
    return config.root / BOOKS_DIR / f"wave-{wave}" / f"{subscriber}.xlsx"


def write_databook(config: StudyConfig, tables: Tables, subscriber: str, path: str | Path) -> Path:
    """Write ``subscriber``'s data book of ``tables`` (one wave, computed with its scope and banners) to
    ``path`` (.xlsx), atomically; an OutputError when it cannot be written."""
    path = Path(path)
    sub = config.subscriber(subscriber)
    language = sub.language
    book = _Book(config, tables, subscriber, language)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            book.write(tmp)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write the data book: {exc.strerror or exc}") from None
    return path


class _Book:
    def __init__(self, config: StudyConfig, tables: Tables, subscriber: str, language: str) -> None:
        self.config, self.tables, self.subscriber, self.language = config, tables, subscriber, language
        self.t = TEXTS[language]
        self.meta = tables.meta
        self.wave = tables.meta["waves"][0]
        summaries = [s for s in tables.summaries if s["scope"] == subscriber and s["wave"] == self.wave]
        self.questions: list[str] = list(dict.fromkeys(s["question"] for s in summaries))
        self.summary: dict[tuple[str, str, str], dict[str, Any]] = {
            (s["question"], s.get("banner") or "", s.get("banner_code") or ""): s for s in summaries
        }
        self.rows: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
        for r in tables.rows:
            if r["scope"] == subscriber and r["wave"] == self.wave:
                self.rows[(r["question"], r.get("banner") or "", r.get("banner_code") or "")].append(r)
        self.columns = self._columns()
        self.quality = any("quality" in s for s in summaries[:1])

    # --- labels -----------------------------------------------------------------------------------

    def text(self, key: str, source: str | None) -> str:
        """A label in the book's language: the config's translation (per question, or of its shared answer
        scale) when there is one, else the source."""
        return self.say(translated(self.config, self.language, key, source) or source or "")

    def code_text(self, question: str, line: dict[str, Any]) -> str:
        """A row's label: a code's value label, or for a multiple-response set its item's own text."""
        key = self.question_key(question)
        if line.get("kind") == "multiple":
            item = f"{key.rsplit(':', 1)[0]}:{line['code']}" if ":" in key else line["code"]
            return self.text(item, line["label"]) or line["code"]
        return self.text(f"{key}.{line['code']}", line["label"]) or line["code"]

    def title(self, question: str, label: str | None) -> str:
        """A question's title in the book's language; a multiple-response set's as the report gives it."""
        key = self.question_key(question)
        lines = [x for x in self.rows.get((question, "", ""), []) if x.get("kind") == "multiple" and not x["missing"]]
        if lines:
            return set_title(self.config, self.language, key, label, [self.code_text(question, x) for x in lines])
        return self.text(key, label) or question

    def say(self, text: str) -> str:
        """A sentence or title as the book's language sets it (French spacing before : ; ! ?)."""
        return typeset(text, self.language)

    def question_key(self, question: str) -> str:
        s = self.summary.get((question, "", ""))
        return f"{self.subscriber}:{question}" if s and s["kind"] == "custom" else question

    def _columns(self) -> list[dict[str, Any]]:
        """The book's columns: Total, Benchmark, then each banner's lettered columns."""
        cols: list[dict[str, Any]] = [
            {"banner": "", "code": "", "label": self.t["total"], "letter": "", "group": ""},
            {"benchmark": True, "banner": "", "code": "", "label": self.t["benchmark"], "letter": "", "group": ""},
        ]
        for banner in (self.meta.get("banners") or {}).get("variables", []):
            group = self.text(banner["variable"], banner["label"]) or banner["variable"]
            for c in banner["columns"]:
                key = f"{banner['variable']}.{c['code']}"
                cols.append(
                    {
                        "banner": banner["variable"],
                        "code": c["code"],
                        "label": self.text(key, c["label"]),
                        "letter": c["column"],
                        "group": group,
                    }
                )
        return cols

    # --- formats ----------------------------------------------------------------------------------

    def _formats(self, wb: xlsxwriter.Workbook) -> dict[str, Any]:
        loc = LOCALE_PREFIX[self.language]
        base = {"font_name": "Arial", "font_size": 9, "valign": "top"}

        def f(**kw: Any) -> Any:
            return wb.add_format({**base, **kw})

        return {
            "title": f(bold=True, font_size=12),
            "subtitle": f(italic=True, font_color="#444444"),
            "group": f(bold=True, align="center", bottom=1, bg_color="#DCE6F1", text_wrap=True),
            "head": f(bold=True, align="center", text_wrap=True, bg_color="#DCE6F1"),
            "letter": f(bold=True, align="center", bg_color="#DCE6F1", bottom=1),
            "label": f(text_wrap=True),
            "label_b": f(bold=True, text_wrap=True),
            "count": f(num_format=f"{loc}#,##0"),
            "weighted": f(num_format=f"{loc}#,##0"),
            "pct": f(num_format=f"{loc}0.0"),
            "pct_e": f(num_format=f'{loc}0.0" E"'),
            "pct_b": f(num_format=f"{loc}0.0", bold=True),
            "mean": f(num_format=f"{loc}0.00"),
            "mean_e": f(num_format=f'{loc}0.00" E"'),
            "sig": f(font_color="#C00000", bold=True, align="center", font_size=8),
            "note": f(italic=True, font_color="#444444"),
            "link": f(font_color="#0563C1", underline=1),
            "text": f(text_wrap=True),
        }

    # --- writing ----------------------------------------------------------------------------------

    def write(self, target: Path) -> None:
        # in memory, not constant-memory mode: that mode spills each sheet's rows to temporary files (two per
        # sheet, 800 for a 400-question book, 0.4 ms each to create on this ext4), while the book's cells
        # (about 55,000) raise the peak memory no higher than the tables it is written from
        wb = xlsxwriter.Workbook(str(target), {"in_memory": True, "nan_inf_to_errors": True})
        wb.set_properties(
            {
                "title": f"{self.t['title']} — {self.config.subscriber(self.subscriber).display_name(self.language)}",
                "author": "wavetool",
                "created": FIXED_DATE,
            }
        )
        fmt = self._formats(wb)
        names = self._sheet_names()
        contents = wb.add_worksheet(self.t["contents"][:31])
        self._contents(contents, fmt, names)
        for question in self.questions:
            self._table(wb.add_worksheet(names[question]), fmt, question)
        self._notes(wb.add_worksheet(self.t["notes"]), fmt)
        wb.close()

    def _sheet_names(self) -> dict[str, str]:
        used = {self.t["contents"][:31].lower(), self.t["notes"].lower()}
        names = {}
        for q in self.questions:
            name = _SHEET_BAD.sub("_", q)[:31] or "Q"
            stem, i = name, 2
            while name.lower() in used:
                suffix = f"~{i}"
                name, i = stem[: 31 - len(suffix)] + suffix, i + 1
            used.add(name.lower())
            names[q] = name
        return names

    def _heading(self) -> str:
        sub = self.config.subscriber(self.subscriber)
        wave = self.config.waves.get(self.wave)
        wave_label = (
            (wave.label_fr if self.language == "fr" else wave.label) if wave else f"{self.t['wave']} {self.wave}"
        )
        study = self.config.name_fr if self.language == "fr" else self.config.name
        return f"{study} · {wave_label} · {sub.display_name(self.language)}"

    def _contents(self, ws: Any, fmt: dict[str, Any], names: dict[str, str]) -> None:
        ws.set_column(0, 0, 12)
        ws.set_column(1, 1, 90)
        ws.write_string(0, 0, self.say(f"{self.t['title']}: {self._heading()}"), fmt["title"])
        ws.write_string(1, 0, self.say(self.t["benchmark_note"]), fmt["subtitle"])
        ws.write_string(3, 0, self.t["question"], fmt["head"])
        ws.write_string(3, 1, self.t["table"], fmt["head"])
        ws.freeze_panes(4, 0)
        _page_setup(ws, 4)
        for i, q in enumerate(self.questions, start=4):
            s = self.summary[(q, "", "")]
            ws.write_string(i, 0, q, fmt["label"])
            label = self.title(q, s["label"])
            ws.write_url(i, 1, f"internal:'{names[q]}'!A1", fmt["link"], string=label[:255])
        ws.write_url(
            len(self.questions) + 5, 1, f"internal:'{self.t['notes']}'!A1", fmt["link"], string=self.t["notes"]
        )

    def _table(self, ws: Any, fmt: dict[str, Any], question: str) -> None:
        total = self.summary[(question, "", "")]
        cols = self.columns
        ws.set_column(0, 0, 34)
        ws.set_column(1, len(cols), 11)
        label = self.title(question, total["label"])
        ws.write_string(0, 0, self.say(f"{question}: {label}")[:32000], fmt["title"])
        sub = self._heading() + (f" · {self.t['mr']}" if total["kind"] == "multiple" else "")
        ws.write_string(1, 0, sub, fmt["subtitle"])
        # row 2: banner groups; row 3: column labels; row 4: letters
        groups: list[tuple[int, int, str]] = []
        for j, c in enumerate(cols, start=1):
            if c["group"] and groups and groups[-1][2] == c["group"] and groups[-1][1] == j - 1:
                groups[-1] = (groups[-1][0], j, c["group"])
            elif c["group"]:
                groups.append((j, j, c["group"]))
        # every row is written whole, top to bottom, its height set first
        ws.write_blank(2, 0, None, fmt["group"])
        for j in range(1, len(cols) + 1):
            group = next((g for g in groups if g[0] <= j <= g[1]), None)
            if group and group[0] == j and group[1] > j:
                ws.merge_range(2, j, 2, group[1], group[2], fmt["group"])
            elif group and group[0] == j:
                ws.write_string(2, j, group[2], fmt["group"])
            elif not group:
                ws.write_blank(2, j, None, fmt["group"])
        ws.set_row(3, 26)
        ws.write_blank(3, 0, None, fmt["head"])
        for j, c in enumerate(cols, start=1):
            ws.write_string(3, j, c["label"], fmt["head"])
        ws.write_blank(4, 0, None, fmt["letter"])
        for j, c in enumerate(cols, start=1):
            if c["letter"]:
                ws.write_string(4, j, f"({c['letter']})", fmt["letter"])
            else:
                ws.write_blank(4, j, None, fmt["letter"])
        ws.freeze_panes(5, 1)
        _page_setup(ws, 5)
        summaries = [self._col_summary(question, c) for c in cols]
        rows = [self.rows.get((question, c["banner"], c["code"]), []) for c in cols]
        notes = {"withheld": False, "caution": False}
        r = 5
        bench = [bool(c.get("benchmark")) for c in cols]
        bases = [None if b else s and s.get("base_n") for b, s in zip(bench, summaries, strict=True)]
        r = self._line(ws, fmt, r, self.t["base_n"], bases, "count", cols, notes)
        weighted = [None if b else s and s.get("base_weighted") for b, s in zip(bench, summaries, strict=True)]
        r = self._line(ws, fmt, r, self.t["base_w"], weighted, "weighted", cols, notes)
        for k, line in enumerate(rows[0]):
            if line["missing"]:
                continue
            values, letters, quality = [], [], []
            for c, col_rows in zip(cols, rows, strict=True):
                match = col_rows[k] if k < len(col_rows) and col_rows[k]["code"] == line["code"] else None
                if match is None:
                    match = next((x for x in col_rows if x["code"] == line["code"]), None)
                values.append(None if c.get("benchmark") or match is None else match["percent"])
                letters.append("" if match is None or c.get("benchmark") else match.get("sig_columns") or "")
                quality.append("" if match is None else match.get("quality") or "")
            code_label = self.code_text(question, line)
            withheld = [bool(s and s.get("suppressed")) for s in summaries]
            r = self._line(ws, fmt, r, code_label, values, "pct", cols, notes, quality, withheld)
            r = self._letters(ws, fmt, r, letters)
        if total.get("topbox") is not None or any(s and s.get("topbox") is not None for s in summaries):
            values = [
                s and (s.get("benchmark_topbox") if c.get("benchmark") else s.get("topbox"))
                for c, s in zip(cols, summaries, strict=True)
            ]
            qual = [(s or {}).get("quality") or "" for s in summaries]
            r = self._line(ws, fmt, r, self.t["topbox"], values, "pct_b", cols, notes, qual)
            r = self._letters(ws, fmt, r, [(s or {}).get("topbox_sig_columns") or "" for s in summaries])
            values = [
                None if c.get("benchmark") else s and s.get("bottombox") for c, s in zip(cols, summaries, strict=True)
            ]
            r = self._line(ws, fmt, r, self.t["bottombox"], values, "pct", cols, notes)
        if total.get("mean") is not None or any(s and s.get("mean") is not None for s in summaries):
            values = [
                s and (s.get("benchmark_mean") if c.get("benchmark") else s.get("mean"))
                for c, s in zip(cols, summaries, strict=True)
            ]
            qual = [(s or {}).get("mean_quality") or "" for s in summaries]
            r = self._line(ws, fmt, r, self.t["mean"], values, "mean", cols, notes, qual)
            r = self._letters(ws, fmt, r, [(s or {}).get("mean_sig_columns") or "" for s in summaries])
            values = [None if c.get("benchmark") else s and s.get("sd") for c, s in zip(cols, summaries, strict=True)]
            r = self._line(ws, fmt, r, self.t["sd"], values, "mean", cols, notes)
        r += 1
        ws.write_string(r, 0, self.say(self.t["percent_note"]), fmt["note"])
        r += 1
        if notes["withheld"]:
            ws.write_string(r, 0, self.say(self.t["withheld"].format(min_base=self.meta["min_base"])), fmt["note"])
            r += 1
        if notes["caution"]:
            ws.write_string(r, 0, self.say(self.t["caution"].format(low=16.6, high=33.3)), fmt["note"])
            r += 1
        if len(cols) > 2:
            ws.write_string(r, 0, self.say(self._letters_note()), fmt["note"])
            r += 1
        ws.write_url(r + 1, 0, f"internal:'{self.t['contents'][:31]}'!A1", fmt["link"], string=self.t["back"])

    def _col_summary(self, question: str, col: dict[str, Any]) -> dict[str, Any] | None:
        if col.get("benchmark"):
            return self.summary.get((question, "", ""))
        return self.summary.get((question, col["banner"], col["code"]))

    def _line(
        self,
        ws: Any,
        fmt: dict[str, Any],
        r: int,
        label: str,
        values: list[Any],
        kind: str,
        cols: list[dict[str, Any]],
        notes: dict[str, bool],
        quality: list[str] | None = None,
        withheld: list[bool] | None = None,
    ) -> int:
        ws.write_string(r, 0, label, fmt["label_b"] if kind in ("count", "pct_b") else fmt["label"])
        # a cell with nothing to show is not written at all: an empty cell looks the same, and these are a
        # fifth of a 400-question book's cells (writing it without them: 0.775 -> 0.633 s)
        for j, value in enumerate(values, start=1):
            flag = quality[j - 1] if quality else ""
            if cols[j - 1].get("benchmark") and value is None:
                continue
            if value is None or flag == "F" or (withheld and withheld[j - 1] and kind != "count"):
                if kind != "count" or value is None:
                    notes["withheld"] = True
            else:
                style = kind
                if flag == "E" and kind in ("pct", "pct_b", "mean"):
                    style = "mean_e" if kind == "mean" else "pct_e"
                    notes["caution"] = True
                ws.write_number(r, j, float(value), fmt[style])
        return r + 1

    def _letters(self, ws: Any, fmt: dict[str, Any], r: int, letters: list[str]) -> int:
        if len(self.columns) <= 2:
            return r
        ws.set_row(r, 11)
        for j, text in enumerate(letters, start=1):
            if text:
                ws.write_string(r, j, text, fmt["sig"])
        return r + 1

    def _letters_note(self) -> str:
        banners = self.meta.get("banners") or {}
        return self.t["letters"].format(
            test=self._test_text(),
            adjust=ADJUST_TEXT[self.language][banners.get("adjust_method", "none")],
            min_base=self.meta["min_base"],
        )

    def _test_text(self) -> str:
        level = self.meta.get("confidence", "95%")
        if self.language == "fr":
            return f"tests z bilatéraux à deux échantillons, niveau de confiance {level.replace('%', ' %')}"
        return f"two-sided two-sample z-tests, {level} confidence"

    def _notes(self, ws: Any, fmt: dict[str, Any]) -> None:
        ws.set_column(0, 0, 34)
        ws.set_column(1, 1, 100)
        t, meta = self.t, self.meta
        banners = meta.get("banners") or {}
        weights = ", ".join(f"{t['wave']} {w}: {t['weight_source'].get(s, s)}" for w, s in meta["weight"].items())
        lines = [
            (t["methods"], meta.get("percent", "") if self.language == "en" else t["percent_note"]),
            (t["weights"], weights),
            (t["confidence"], str(meta.get("confidence", ""))),
            (t["tests"], f"{meta.get('test', '')}. {banners.get('test', '')}".strip()),
            (t["adjustment"], ADJUST_TEXT[self.language][banners.get("adjust_method", "none")]),
            (t["suppression"], t["withheld"].format(min_base=meta["min_base"])),
            (t["benchmark"], t["benchmark_note"]),
            (
                t["banners"],
                "; ".join(
                    f"{self.text(b['variable'], b['label']) or b['variable']}: "
                    + ", ".join(
                        f"({c['column']}) {self.text(b['variable'] + '.' + c['code'], c['label'])}"
                        for c in b["columns"]
                    )
                    for b in banners.get("variables", [])
                ),
            ),
        ]
        for key in ("variance", "interval", "design"):
            if key in meta:
                lines.append((key, str(meta[key])))
        _page_setup(ws, 1)
        ws.write_string(0, 0, self.say(f"{t['notes']}: {self._heading()}"), fmt["title"])
        for i, (name, text) in enumerate(lines, start=2):
            ws.write_string(i, 0, name, fmt["label_b"])
            ws.write_string(i, 1, self.say(text), fmt["text"])
        ws.write_string(len(lines) + 3, 0, self.say(t["generated"]), fmt["note"])


def _page_setup(ws: Any, header_rows: int) -> None:
    """Printed (or converted to PDF): landscape, one page wide, the header rows on every page."""
    ws.set_landscape()
    ws.set_paper(1)  # Letter
    ws.fit_to_pages(1, 0)
    ws.set_margins(left=0.4, right=0.4, top=0.5, bottom=0.5)
    ws.repeat_rows(0, header_rows - 1)
    ws.set_footer("&L&8&A&R&8&P / &N")
