"""The report's faster SVG text drawing (wavetool.report.svgtext): every chart label is still drawn, as the
same text, and anything with per-character positioning still goes through WeasyPrint's own code."""

from __future__ import annotations

import base64
import io

import pytest
import weasyprint.svg as svg_module
from pypdf import PdfReader

from wavetool.report import svgtext
from wavetool.report.render import PDF_VARIANT, Renderer

pytestmark = pytest.mark.skipif(not svgtext.supported(), reason="written against WeasyPrint 70's SVG internals")

SVG = """<svg xmlns="http://www.w3.org/2000/svg" width="300" height="120" font-family="DejaVu Sans" font-size="10">
<text x="150" y="20" text-anchor="end" fill="#1a1a1a">Very dissatisfied</text>
<text x="150" y="40" text-anchor="middle" font-weight="bold">42.5%</text>
<text x="10" y="60" font-style="italic">Suppressed <tspan font-weight="bold">tail</tspan></text>
<text x="10 20 30" y="80">XYZ</text>
<text x="10" y="100" dx="2">Shifted label</text>
</svg>"""


def _pdf_text(renderer: Renderer) -> str:
    uri = "data:image/svg+xml;base64," + base64.b64encode(SVG.encode()).decode()
    html = f'<html lang="en"><title>t</title><body><img src="{uri}" alt="chart" width="300" height="120"></body>'
    pdf = renderer.document(html).write_pdf(pdf_variant=PDF_VARIANT)
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def _use(function) -> None:
    for tag, current in list(svg_module.TAGS.items()):
        if current in (svgtext.fast_text, svgtext._original):
            svg_module.TAGS[tag] = function
    svg_module.text = function


def test_installed_by_the_renderer():
    Renderer()
    assert svgtext.install() is True
    assert svg_module.TAGS["text"] is svgtext.fast_text and svg_module.text is svgtext.fast_text


def test_every_label_drawn_as_with_weasyprints_own_function():
    renderer = Renderer()
    fast = _pdf_text(renderer)
    try:
        _use(svgtext._original)
        original = _pdf_text(renderer)
    finally:
        _use(svgtext.fast_text)
    squashed = fast.replace(" ", "").replace("\n", "")
    for label in ("Verydissatisfied", "42.5%", "Suppressed", "tail", "XYZ", "Shiftedlabel"):
        assert label in squashed
    assert squashed == original.replace(" ", "").replace("\n", "")


def test_per_character_positioning_falls_back(monkeypatch):
    Renderer()
    seen = []
    original = svgtext._original

    def spy(svg, node, font_size):
        seen.append(node.text)
        return original(svg, node, font_size)

    monkeypatch.setattr(svgtext, "_original", spy)
    text = _pdf_text(Renderer())
    assert "XYZ" in text.replace(" ", "")
    assert sorted(seen) == ["Shifted label", "XYZ"]
