"""Where wavetool's own files are: the top-level ``templates/`` ships inside the wheel as
``wavetool/templates``; in a source checkout (editable install) it is the checkout's ``templates/``."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def templates_root() -> Path:
    """The templates folder (report, charts, strings, e-mail), installed or in the checkout."""
    packaged = files("wavetool") / "templates"
    if packaged.is_dir() and (packaged / "report.html.j2").is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "templates"
