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


def _boxes_overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    """Whether two (x0, y0, x1, y1) boxes overlap (touching is fine)."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@dataclass(frozen=True)
class Chart:
    """A rendered chart: the ``data:`` URI for ``<img src>``, its alt text and its size in CSS px."""

    uri: str
    alt: str
    width: int
    height: int


@dataclass(frozen=True)
class Dot:
    """One attribute of the drivers chart."""

    label: str  # short label drawn beside the dot (the question number)
    x: float  # importance
    y: float  # performance, percent
    quadrant: str  # 'priority' | 'strength' | 'secondary' | 'surplus'
    name: str = ""  # full label, for the alt text


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

    # --- a small trend for a table row ---------------------------------------------------------------

    def spark(self, title: str, points: list[Point], subject: str) -> Chart:
        """A word-sized line of the subscriber's top box by wave (dots; a gap where a wave has no value).
        Values are not printed: the row beside it carries them, the alt text lists them all."""
        width, height, pad = 84, 22, 4
        step = (width - 2 * pad) / max(len(points) - 1, 1)
        known = [p.value for p in points if p.value is not None]
        low, high = (min(known), max(known)) if known else (0.0, 100.0)
        mid = (low + high) / 2
        low, high = min(low, mid - 15), max(high, mid + 15)  # at least 30 points of range: no drama
        dots = []
        for i, p in enumerate(points):
            if p.value is None:
                continue
            y = height - pad - (height - 2 * pad) * (p.value - low) / (high - low)
            dots.append({"x": _n(pad + step * i), "y": _n(y)})
        geometry = {
            "width": width,
            "height": height,
            "title": title,
            "dots": dots,
            "path": _polyline(dots),
            "last": dots[-1] if dots else None,
            "colours": self._colours(),
        }
        svg = str(self.macros.spark(geometry))
        parts = [f"{p.label}: {self.fmt.pct(p.value) if p.value is not None else '–'}" for p in points]
        alt = self.s["alt_spark"].format(title=title) + " " + "; ".join(parts) + "."
        return self._chart(svg, alt, width, height)

    # --- group differences: the higher group's bar above the lower group's -------------------------

    def pairs(self, title: str, rows: list[tuple[str, str, float, str, float]]) -> Chart:
        """One block per difference: its label, then two bars (the higher group, the lower group), each
        with its group's name and value printed beside it."""
        label_h, bar_h, gap, name_w, plot_w = 14, 12, 10, 150, 260
        width = name_w + plot_w + 60
        items, y = [], 4.0
        for label, high_name, high, low_name, low in rows:
            item = {"label": label, "label_y": _n(y + 10), "bars": []}
            y += label_h
            for j, (name, value) in enumerate(((high_name, high), (low_name, low))):
                w = plot_w * max(0.0, min(value, 100.0)) / 100
                item["bars"].append(
                    {
                        "name": name,
                        "name_y": _n(y + 9.5),
                        "y": _n(y),
                        "w": _n(w),
                        "value": self.fmt.pct(value),
                        "value_x": _n(name_w + w + 4),
                        "fill": SUBJECT if j == 0 else MUTED,
                    }
                )
                y += bar_h + 2
            items.append(item)
            y += gap
        geometry = {
            "width": width,
            "height": int(y),
            "title": title,
            "font": FONT,
            "x0": _n(name_w),
            "name_x": _n(name_w - 6),
            "bar_h": _n(bar_h),
            "rows": items,
            "colours": self._colours(),
        }
        svg = str(self.macros.pairs(geometry))
        parts = [f"{label}: {hn} {self.fmt.pct(h)}, {ln} {self.fmt.pct(v)}" for label, hn, h, ln, v in rows]
        alt = self.s["alt_pairs"].format(title=title) + " " + "; ".join(parts) + "."
        return self._chart(svg, alt, width, int(y))

    # --- importance × performance -----------------------------------------------------------------

    def drivers(
        self, title: str, dots: list[Dot], x_cut: float, y_cut: float, axes: tuple[str, str], quadrants: dict[str, str]
    ) -> Chart:
        """Importance (x) against performance (y), split into four named quadrants at ``x_cut``/``y_cut``;
        each dot labelled, labels placed so that none overlaps another label or a dot."""
        left, top, plot_w, plot_h = 44, 26, 430, 215
        width, height = left + plot_w + 12, top + plot_h + 40
        xs = [d.x for d in dots] or [0.0, 1.0]
        ys = [d.y for d in dots] or [0.0, 100.0]
        x_max = max(max(xs), x_cut) * 1.1 or 1.0
        y_low = max(0.0, min(min(ys), y_cut) - 8)
        y_high = min(100.0, max(max(ys), y_cut) + 8)

        def px(v: float) -> float:
            return left + plot_w * v / x_max

        def py(v: float) -> float:
            return top + plot_h * (1 - (v - y_low) / max(y_high - y_low, 1e-9))

        placed: list[tuple[float, float, float, float]] = [
            (px(d.x) - 4, py(d.y) - 4, px(d.x) + 4, py(d.y) + 4) for d in dots
        ]
        items = []
        for d in dots:
            cx, cy = px(d.x), py(d.y)
            w, h = 7.2 * len(d.label) + 2, 11.0  # 9 px DejaVu Sans: Q and digits are 5.7-7.1 px wide
            box = _free_box(cx, cy, w, h, placed, (left, top, left + plot_w, top + plot_h))
            placed.append(box)
            items.append(
                {
                    "cx": _n(cx),
                    "cy": _n(cy),
                    "tx": _n(box[0] + 1),
                    "ty": _n(box[3] - 2),
                    "label": d.label,
                    "fill": SUBJECT if d.quadrant == "priority" else INK,
                    "priority": d.quadrant == "priority",
                }
            )
        x_ticks = [{"x": _n(px(x_max * t / 4)), "label": self.fmt.pct(x_max * t / 4, 0)} for t in range(5)]
        y_ticks = []
        for t in range(5):
            v = y_low + (y_high - y_low) * t / 4
            y_ticks.append({"y": _n(py(v)), "label": self.fmt.pct(v, 0)})
        qx, qy = px(x_cut), py(y_cut)
        names = [
            {"x": _n(qx + 6), "y": _n(qy + 14), "anchor": "start", "text": quadrants["priority"]},
            {"x": _n(qx + 6), "y": _n(top + 12), "anchor": "start", "text": quadrants["strength"]},
            {"x": _n(qx - 6), "y": _n(qy + 14), "anchor": "end", "text": quadrants["secondary"]},
            {"x": _n(qx - 6), "y": _n(top + 12), "anchor": "end", "text": quadrants["surplus"]},
        ]
        geometry = {
            "width": width,
            "height": height,
            "title": title,
            "font": FONT,
            "left": _n(left),
            "right": _n(left + plot_w),
            "top": _n(top),
            "bottom": _n(top + plot_h),
            "qx": _n(qx),
            "qy": _n(qy),
            "x_ticks": x_ticks,
            "y_ticks": y_ticks,
            "tick_y": _n(top + plot_h + 13),
            "x_title": axes[0],
            "x_title_x": _n(left + plot_w / 2),
            "x_title_y": _n(top + plot_h + 32),
            "y_title": axes[1],
            "names": names,
            "dots": items,
            "colours": self._colours(),
        }
        svg = str(self.macros.drivers(geometry))
        parts = [
            f"{d.label} {d.name}: {self.fmt.pct(d.x)}, {self.fmt.pct(d.y)} ({quadrants[d.quadrant]})" for d in dots
        ]
        alt = self.s["alt_drivers"].format(title=title) + " " + "; ".join(parts) + "."
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


def _free_box(
    cx: float,
    cy: float,
    w: float,
    h: float,
    taken: list[tuple[float, float, float, float]],
    bounds: tuple[float, float, float, float],
) -> tuple[float, float, float, float]:
    """A w×h label box near (cx, cy) that overlaps none of ``taken`` and stays inside ``bounds``: right,
    left, above, below the dot, then further and further out on those sides until one is free."""
    for reach in range(0, 12):
        d = 6 + 7 * reach
        for ox, oy in ((d, -h / 2), (-d - w, -h / 2), (-w / 2, -d - h), (-w / 2, d), (d, -h - d / 2), (d, d / 2)):
            box = (cx + ox, cy + oy, cx + ox + w, cy + oy + h)
            inside = box[0] >= bounds[0] and box[2] <= bounds[2] and box[1] >= bounds[1] and box[3] <= bounds[3]
            if inside and not any(_boxes_overlap(box, t) for t in taken):
                return box
    return (cx + 6, cy - h / 2, cx + 6 + w, cy + h / 2)  # nowhere free (cannot happen with ~20 dots)


def _polyline(points: list[dict[str, str]]) -> str:
    """An SVG path through consecutive points (a gap where a wave has no estimate is bridged)."""
    if len(points) < 2:
        return ""
    return "M" + " L".join(f"{p['x']} {p['y']}" for p in points)
