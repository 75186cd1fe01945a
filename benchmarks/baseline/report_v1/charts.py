"""Report charts: three chart types, laid out in Python and drawn by the SVG macros of
``templates/charts.svg.j2``.

Each chart is embedded in the page as ``<img src="data:image/svg+xml;base64,…" alt="…">``: measured
before this work, that costs ~0.14 ms to generate and ~18 ms to lay out, against ~24 ms for inline
``<svg>`` (which goes through the page's CSS pass) and ~200 ms for a matplotlib figure. The data URI is
built here from the macro's autoescaped output; no data value ever becomes a URL of its own.

Charts never rely on colour alone: every value is printed, the benchmark is a marker (not a hue), series
differ by line style and marker shape, and the stacked bars' middle and bottom boxes differ by fill
lightness and a hatch pattern, so a greyscale print reads the same.
"""

from __future__ import annotations

import base64
import textwrap
from dataclasses import dataclass
from typing import Any

from .text import Formatter

INK = "#1a1a1a"  # body text: 17:1 on white
MUTED = "#4d4d4d"  # secondary text: 8.5:1 on white
SUBJECT = "#1f4e79"  # the subscriber's bars and line
BENCH = "#000000"
GRID = "#c8c8c8"
TOP_BOX = SUBJECT
MIDDLE_BOX = "#e0e0e0"
BOTTOM_BOX = "#f4a582"  # under a dark hatch (pattern id "hatch")
BOTTOM_HATCH = "#8c2d04"
WHITE = "#ffffff"
FONT = "DejaVu Sans"


def _luminance(colour: str) -> float:
    """WCAG relative luminance of a ``#rrggbb`` colour."""
    channels = []
    for i in (1, 3, 5):
        c = int(colour[i : i + 2], 16) / 255
        channels.append(c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4)
    r, g, b = channels
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(foreground: str, background: str) -> float:
    """WCAG contrast ratio of two ``#rrggbb`` colours (1 to 21)."""
    a, b = sorted((_luminance(foreground), _luminance(background)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def text_on(fill: str) -> str:
    """The text colour (near-black or white) with the higher contrast on ``fill``."""
    return INK if contrast(INK, fill) >= contrast(WHITE, fill) else WHITE


def _n(value: float) -> str:
    """A coordinate with fixed precision, so the same chart always has the same bytes."""
    return f"{value:.1f}"


# Legend text is DejaVu Sans at 10 px: 5.1-5.7 px a character for Latin words (measured from the font's
# advance widths), so 6 is a safe estimate of how much room a label needs.
LEGEND_CHAR_W = 6.0
LEGEND_SWATCH, LEGEND_GAP, LEGEND_LINE = 18, 18, 16


def _legend_places(sizes: list[float], start: float, width: float) -> tuple[list[tuple[float, int]], int]:
    """(x, line) of legend items of the given widths, left to right from ``start``, moved left as far as
    needed to end inside ``width``, and wrapped onto further lines when even that is not enough (long
    labels, e.g. French ones or a long subscriber name). Returns the places and the number of lines."""
    needed = sum(sizes) + LEGEND_GAP * (len(sizes) - 1)
    x0 = max(4.0, min(float(start), width - 8 - needed))
    places, x, line = [], x0, 0
    for size in sizes:
        if x > x0 and x + size > width - 8:
            x, line = x0, line + 1
        places.append((x, line))
        x += size + LEGEND_GAP
    return places, line + 1


def _legend_row(
    labels: tuple[str, ...] | list[str], fills: list[str], start: float, width: float, top: float
) -> tuple[list[dict[str, str]], int]:
    """The stacked chart's legend: a swatch and a label per segment (see _legend_places)."""
    places, lines = _legend_places([LEGEND_SWATCH + LEGEND_CHAR_W * len(label) for label in labels], start, width)
    items = []
    for label, fill, (x, line) in zip(labels, fills, places, strict=True):
        y = top + 10 + LEGEND_LINE * line
        items.append(
            {
                "x": _n(x),
                "y": _n(y),
                "text_x": _n(x + LEGEND_SWATCH),
                "text_y": _n(y + 11),
                "fill": fill,
                "label": label,
            }
        )
    return items, lines


def _pair_legend(
    subject: str, benchmark: str, marks: tuple[float, float], start: float, width: float, y: float
) -> tuple[dict[str, str], int]:
    """Geometry of a subject + benchmark legend (``marks``: the width of each one's marker before its text)."""
    sizes = [marks[0] + LEGEND_CHAR_W * len(subject)] + (
        [marks[1] + LEGEND_CHAR_W * len(benchmark)] if benchmark else []
    )
    places, lines = _legend_places(sizes, start, width)
    (x1, _), (x2, line2) = places[0], places[-1]
    return {
        "legend_x": _n(x1),
        "legend_y": _n(y),
        "legend2_x": _n(x2),
        "legend2_y": _n(y + LEGEND_LINE * line2),
    }, lines


def _wrap(text: str, width: int, lines: int) -> list[str]:
    """``text`` wrapped to at most ``lines`` lines of ``width`` characters (the last one shortened)."""
    wrapped = textwrap.wrap(text, width=width, break_long_words=True) or [""]
    if len(wrapped) > lines:
        last = " ".join(wrapped[lines - 1 :])
        wrapped = [*wrapped[: lines - 1], textwrap.shorten(last, width=width, placeholder="…")]
    return wrapped


@dataclass(frozen=True)
class Chart:
    """A rendered chart: the ``data:`` URI for ``<img src>``, its alt text and its size in CSS px."""

    uri: str
    alt: str
    width: int
    height: int


@dataclass(frozen=True)
class Bar:
    label: str
    value: float | None
    benchmark: float | None
    suppressed: bool = False


@dataclass(frozen=True)
class StackedRow:
    label: str
    segments: tuple[float | None, ...]  # bottom → top box, percentages
    suppressed: bool = False


@dataclass(frozen=True)
class Point:
    label: str  # x-axis label, e.g. "W1"
    value: float | None
    benchmark: float | None


class ChartKit:
    """Builds the report's charts in one language with the SVG macros of one Jinja environment."""

    def __init__(self, macros: Any, fmt: Formatter, strings: dict[str, str]) -> None:
        self.macros = macros  # the module of templates/charts.svg.j2
        self.fmt = fmt
        self.s = strings

    def _chart(self, svg: str, alt: str, width: int, height: int) -> Chart:
        encoded = base64.b64encode(svg.encode("utf-8")).decode("ascii")
        return Chart(uri="data:image/svg+xml;base64," + encoded, alt=alt, width=width, height=height)

    # --- horizontal bars with a benchmark marker --------------------------------------------------

    def bars(self, title: str, bars: list[Bar], subject: str, benchmark: str) -> Chart:
        """Horizontal bars (the subscriber, value printed) with a benchmark marker on each row."""
        label_w, plot_w, value_w, row_h, bar_h, top = 150, 180, 50, 24, 14, 6
        width = label_w + plot_w + value_w
        x0 = label_w
        rows = []
        for i, bar in enumerate(bars):
            y = top + i * row_h
            lines = _wrap(bar.label, 23, 2)
            first_line_y = y + row_h / 2 - (len(lines) - 1) * 5.5 + 3.5
            item: dict[str, Any] = {
                "lines": [{"x": _n(x0 - 6), "y": _n(first_line_y + j * 11), "text": t} for j, t in enumerate(lines)],
                "suppressed": bar.suppressed or bar.value is None,
                "bar_y": _n(y + (row_h - bar_h) / 2),
                "bar_h": _n(bar_h),
                "text_y": _n(y + row_h / 2 + 3.5),
            }
            bar_end = x0
            if not item["suppressed"]:
                bar_w = plot_w * max(0.0, min(bar.value, 100.0)) / 100
                bar_end = x0 + bar_w
                item.update(bar_x=_n(x0), bar_w=_n(bar_w), value=self.fmt.pct(bar.value))
            if bar.benchmark is not None:
                bx = x0 + plot_w * max(0.0, min(bar.benchmark, 100.0)) / 100
                item.update(bench_x=_n(bx), bench_y1=_n(y + 3), bench_y2=_n(y + row_h - 3))
                bar_end = max(bar_end, bx + 2)
            item["value_x"] = _n(bar_end + 4 if not item["suppressed"] else x0 + 4)
            rows.append(item)
        plot_bottom = top + len(bars) * row_h
        legend, legend_lines = _pair_legend(subject, benchmark, (19, 14), 8, width, plot_bottom + 30)
        height = plot_bottom + 36 + LEGEND_LINE * (legend_lines - 1)
        ticks = [{"x": _n(x0 + plot_w * t / 100), "label": self.fmt.pct(t, 0)} for t in (0, 25, 50, 75, 100)]
        geometry = {
            "width": width,
            "height": height,
            "title": title,
            "font": FONT,
            "rows": rows,
            "ticks": ticks,
            "grid_top": _n(top),
            "grid_bottom": _n(plot_bottom),
            "tick_y": _n(plot_bottom + 13),
            **legend,
            "subject": subject,
            "benchmark": benchmark,
            "suppressed_text": self.s["suppressed_short"],
            "colours": self._colours(),
        }
        svg = str(self.macros.bars(geometry))
        parts = []
        for bar in bars:
            value = self.s["suppressed_short"] if bar.suppressed or bar.value is None else self.fmt.pct(bar.value)
            if benchmark:
                bench = self.fmt.pct(bar.benchmark) if bar.benchmark is not None else "–"
                parts.append(f"{bar.label}: {value} ({benchmark} {bench})")
            else:
                parts.append(f"{bar.label}: {value}")
        alt = self.s["alt_bars"].format(title=title, subject=subject) + " " + "; ".join(parts) + "."
        return self._chart(svg, alt, width, height)

    # --- stacked distribution bars ---------------------------------------------------------------

    def stacked(self, title: str, rows: list[StackedRow], segment_labels: tuple[str, str, str]) -> Chart:
        """100% stacked bars (bottom box, middle, top box) for several questions, values printed."""
        label_w, plot_w, row_h, bar_h, top = 250, 400, 32, 20, 8
        width = label_w + plot_w + 10
        fills = (("url(#hatch)", BOTTOM_BOX), (MIDDLE_BOX, MIDDLE_BOX), (TOP_BOX, TOP_BOX))
        items = []
        for i, row in enumerate(rows):
            y = top + i * row_h
            lines = _wrap(row.label, 40, 2)
            first_line_y = y + row_h / 2 - (len(lines) - 1) * 6 + 4
            segments = []
            x = float(label_w)
            if not row.suppressed:
                for value, (fill, base) in zip(row.segments, fills, strict=True):
                    w = plot_w * max(0.0, value or 0.0) / 100
                    fits = w >= 30
                    segments.append(
                        {
                            "x": _n(x),
                            "w": _n(w),
                            "fill": fill,
                            "text": self.fmt.pct(value, 0) if fits else "",
                            "text_x": _n(x + w / 2),
                            "text_fill": text_on(base),
                            "bold": base == BOTTOM_BOX,
                        }
                    )
                    x += w
            items.append(
                {
                    "lines": [
                        {"x": _n(label_w - 8), "y": _n(first_line_y + j * 12), "text": t} for j, t in enumerate(lines)
                    ],
                    "segments": segments,
                    "suppressed": row.suppressed,
                    "bar_y": _n(y + (row_h - bar_h) / 2),
                    "bar_h": _n(bar_h),
                    "text_y": _n(y + row_h / 2 + 4),
                    "sup_x": _n(label_w + 4),
                }
            )
        plot_bottom = top + len(rows) * row_h
        legend, legend_lines = _legend_row(segment_labels, [fill for fill, _base in fills], label_w, width, plot_bottom)
        height = plot_bottom + 30 + LEGEND_LINE * (legend_lines - 1)
        geometry = {
            "width": width,
            "height": height,
            "title": title,
            "font": FONT,
            "rows": items,
            "legend": legend,
            "suppressed_text": self.s["suppressed_short"],
            "colours": self._colours(),
        }
        svg = str(self.macros.stacked(geometry))
        parts = []
        for row in rows:
            if row.suppressed:
                parts.append(f"{row.label}: {self.s['suppressed_short']}")
                continue
            values = ", ".join(f"{lab} {self.fmt.pct(v)}" for lab, v in zip(segment_labels, row.segments, strict=True))
            parts.append(f"{row.label}: {values}")
        alt = self.s["alt_stacked"].format(title=title) + " " + "; ".join(parts) + "."
        return self._chart(svg, alt, width, height)

    # --- trend line across waves -----------------------------------------------------------------

    def trend(self, title: str, points: list[Point], subject: str, benchmark: str) -> Chart:
        """Top-box by wave: the subscriber (solid line, dots) and the benchmark (dashed, squares)."""
        left, plot_w, plot_h, top = 44, 230, 80, 12
        width = left + plot_w + 20
        legend, legend_lines = _pair_legend(subject, benchmark, (27, 27), 4, width, top + plot_h + 33)
        height = top + plot_h + 38 + LEGEND_LINE * (legend_lines - 1)
        step = plot_w / max(len(points), 1)

        def y_of(v: float) -> float:
            return top + plot_h * (1 - max(0.0, min(v, 100.0)) / 100)

        subject_pts, bench_pts, labels = [], [], []
        for i, p in enumerate(points):
            x = left + step * (i + 0.5)
            labels.append({"x": _n(x), "text": p.label})
            both = p.value is not None and p.benchmark is not None
            subject_above = not both or p.value >= p.benchmark
            if p.value is not None:
                y = y_of(p.value)
                subject_pts.append(
                    {
                        "x": _n(x),
                        "y": _n(y),
                        "text": self.fmt.pct(p.value),
                        "text_y": _n(y - 7 if subject_above else y + 15),
                    }
                )
            if p.benchmark is not None:
                y = y_of(p.benchmark)
                bench_pts.append(
                    {
                        "x": _n(x),
                        "y": _n(y),
                        "text": self.fmt.pct(p.benchmark),
                        "text_y": _n(y + 15 if subject_above else y - 7),
                    }
                )
        grid = [{"y": _n(y_of(t)), "label": self.fmt.pct(t, 0)} for t in (0, 25, 50, 75, 100)]
        geometry = {
            "width": width,
            "height": height,
            "title": title,
            "font": FONT,
            "grid": grid,
            "left": _n(left),
            "right": _n(left + plot_w),
            "label_y": _n(top + plot_h + 14),
            "labels": labels,
            "subject_pts": subject_pts,
            "bench_pts": bench_pts,
            "subject_path": _polyline(subject_pts),
            "bench_path": _polyline(bench_pts),
            **legend,
            "subject": subject,
            "benchmark": benchmark,
            "colours": self._colours(),
        }
        svg = str(self.macros.trend(geometry))
        parts = [
            f"{p.label}: {subject} {self.fmt.pct(p.value)}"
            + (f", {benchmark} {self.fmt.pct(p.benchmark)}" if benchmark else "")
            for p in points
        ]
        alt = self.s["alt_trend"].format(title=title) + " " + "; ".join(parts) + "."
        return self._chart(svg, alt, width, height)

    def _colours(self) -> dict[str, str]:
        return {
            "ink": INK,
            "muted": MUTED,
            "subject": SUBJECT,
            "bench": BENCH,
            "grid": GRID,
            "white": WHITE,
            "bottom": BOTTOM_BOX,
            "hatch": BOTTOM_HATCH,
            "middle": MIDDLE_BOX,
            "top": TOP_BOX,
            "on_subject": text_on(SUBJECT),
        }


def _polyline(points: list[dict[str, str]]) -> str:
    """An SVG path through consecutive points (a gap where a wave has no estimate is bridged)."""
    if len(points) < 2:
        return ""
    return "M" + " L".join(f"{p['x']} {p['y']}" for p in points)
