"""Faster drawing of SVG ``<text>`` in WeasyPrint 70, for the report's charts.

WeasyPrint 70 draws every SVG ``<text>`` one letter at a time: for each character it builds a Pango
layout, then builds it again to draw it, and writes a text operation of its own. That exists for
per-character positioning (several ``x``/``y`` values, ``dx``, ``dy``, ``rotate``, ``letter-spacing``,
``textLength``), which the report's charts never use: each of their labels is one run at one position.
The ~2,200 chart characters of a report cost ~10% of its whole render that way.

:func:`install` replaces WeasyPrint's SVG text function by one that lays out and draws such a run in one
piece, and hands every other ``<text>`` (any per-character attribute, baseline alignment, or a version
of WeasyPrint this was not written against) to WeasyPrint's own function. Same glyphs, fonts, colours,
positions and anchors; the only difference is that a whole run is shaped by Pango with the font's
kerning, as browsers do, instead of letter by letter.
"""

from __future__ import annotations

import sys
from math import inf
from typing import Any

import weasyprint

_PER_CHARACTER = ("dx", "dy", "rotate", "letter-spacing", "textLength")
_BASELINE = ("display-anchor", "dominant-baseline", "alignment-baseline")
_original: Any = None


def supported() -> bool:
    """True for the WeasyPrint this was written and tested against (its SVG text internals)."""
    return weasyprint.__version__.split(".")[0] == "70"


def install() -> bool:
    """Use :func:`fast_text` for SVG ``<text>``, ``<tspan>``, ``<textPath>`` and ``<a>`` (idempotent).
    Returns whether it is in use."""
    global _original
    if _original is not None:
        return True
    if not supported():
        return False
    import weasyprint.svg as svg_module

    text_module = sys.modules["weasyprint.svg.text"]
    original = text_module.text
    if svg_module.text is not original or svg_module.TAGS.get("text") is not original:
        return False
    _original = original
    # ``draw_node`` recognises text nodes by comparing with the module-level name ``text``, so both
    # that name and the tag table must point to the new function.
    for tag, function in list(svg_module.TAGS.items()):
        if function is original:
            svg_module.TAGS[tag] = fast_text
    svg_module.text = fast_text
    return True


def _one_value(attrib: dict[str, str], name: str) -> tuple[bool, str | None]:
    """(usable by the fast path, the single value or None) for a coordinate attribute."""
    from weasyprint.svg.utils import normalize

    if name not in attrib:
        return True, None
    values = normalize(attrib[name]).strip().split(" ")
    return len(values) == 1, values[0]


def fast_text(svg: Any, node: Any, font_size: float) -> None:
    """Draw ``node``'s text as one run when it has one position and no per-character attributes, exactly
    as WeasyPrint 70's ``svg.text.text`` does letter by letter otherwise."""
    attrib = node.attrib
    ok_x, x_value = _one_value(attrib, "x")
    ok_y, y_value = _one_value(attrib, "y")
    if (
        not node.text
        or not ok_x
        or not ok_y
        or any(name in attrib for name in _PER_CHARACTER)
        or any(node.get(name) for name in _BASELINE)
    ):
        return _original(svg, node, font_size)

    from weasyprint.css.properties import INITIAL_VALUES
    from weasyprint.draw.text import draw_emojis, draw_first_line
    from weasyprint.matrix import Matrix
    from weasyprint.svg.bounding_box import extend_bounding_box
    from weasyprint.svg.text import Style, TextBox
    from weasyprint.svg.utils import size
    from weasyprint.text.line_break import split_first_line

    # The style exactly as WeasyPrint's own function builds it.
    style = Style()
    style.update(INITIAL_VALUES)
    style.font_config = svg.font_config
    style["font_family"] = [font.strip("\"'") for font in node.get("font-family", "sans-serif").split(",")]
    style["font_style"] = node.get("font-style", "normal")
    style["font_size"] = font_size
    if node.get("direction") in ("ltr", "rtl"):
        style["direction"] = node.get("direction")
    weight = node.get("font-weight", 400)
    if weight == "normal":
        weight = 400
    elif weight == "bold":
        weight = 700
    else:
        try:
            weight = int(weight)
        except ValueError:
            weight = 400
    style["font_weight"] = weight

    layout, _, _, width, height, baseline = split_first_line(node.text, style, svg.context, inf, 0)

    # Position: what the letter loop does for its first letter, then the cursor after the whole run.
    x = size(x_value, font_size, svg.inner_width) if x_value is not None else None
    y = size(y_value, font_size, svg.inner_height) if y_value is not None else None
    if x:
        svg.cursor_d_position[0] = 0
    if y:
        svg.cursor_d_position[1] = 0
    x = svg.cursor_position[0] if x is None else x
    y = svg.cursor_position[1] if y is None else y
    svg.cursor_position = x + width, y
    x_position = x + svg.cursor_d_position[0]
    y_position = y + svg.cursor_d_position[1]
    points = ((x_position, y_position - baseline), (x_position + width, y_position - baseline + height))
    node.text_bounding_box = extend_bounding_box(node.text_bounding_box, points)

    svg.stream.push_state()
    fill, stroke = svg.set_graphical_state(node, font_size)
    svg.stream.begin_text()
    layout.reactivate(style)
    svg.fill_stroke(fill, stroke, text=True)
    text_box = TextBox(layout, style)
    text_box.baseline = baseline
    emojis = draw_first_line(svg.stream, text_box, "none", "none", Matrix(a=1, d=-1, e=x_position, f=y_position))
    svg.stream.end_text()
    svg.stream.pop_state()
    draw_emojis(svg.stream, style, x, y, emojis)
    return None
