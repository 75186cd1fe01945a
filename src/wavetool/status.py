"""What is in a study: waves imported with their provenance, respondents per jurisdiction, subscribers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .config import CONFIG_NAME, StudyConfig, example_config
from .deliver import delivery_status
from .errors import OutputError
from .pipeline import run_history
from .store import create_database, db_path, read_store


def init_study(folder: Path) -> dict[str, Any]:
    """Create ``folder`` with a commented example config (never overwritten) and an empty database."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        config_path = folder / CONFIG_NAME
        wrote_config = not config_path.exists()
        if wrote_config:
            config_path.write_text(example_config(), encoding="utf-8")
        had_db = db_path(folder).exists()
        create_database(folder)
    except OSError as exc:
        raise OutputError(
            f"{folder}: cannot create the study: {exc.strerror}", hint="check the folder is writable"
        ) from None
    return {
        "study": str(folder),
        "config": str(config_path),
        "config_created": wrote_config,
        "database": str(db_path(folder)),
        "database_created": not had_db,
    }


def study_status(config: StudyConfig) -> dict[str, Any]:
    """Waves (files, sha256, rows, when, review state), respondents per jurisdiction per wave, subscribers."""
    with read_store(config.root) as con:
        waves = [
            dict(
                zip(
                    (
                        "wave",
                        "rows",
                        "columns",
                        "reader",
                        "encoding",
                        "imported_at",
                        "review_status",
                        "wavetool_version",
                    ),
                    row,
                    strict=True,
                )
            )
            for row in con.execute(
                "SELECT wave, rows, columns, reader, encoding, imported_at, review_status, wavetool_version FROM waves ORDER BY wave"
            ).fetchall()
        ]
        files = con.execute(
            "SELECT wave, file_name, format, size, sha256, rows, columns FROM wave_files ORDER BY wave, position"
        ).fetchall()
        for wave in waves:
            wave["label"] = config.waves[wave["wave"]].label if wave["wave"] in config.waves else None
            wave["files"] = [
                dict(zip(("file_name", "format", "size", "sha256", "rows", "columns"), f[1:], strict=True))
                for f in files
                if f[0] == wave["wave"]
            ]
        counts: dict[str, dict[str, int]] = {}
        if waves:
            union = " UNION ALL ".join(
                f"SELECT {w['wave']} AS wave, _jurisdiction AS code, count(*) AS n FROM wave_{w['wave']} GROUP BY 2"
                for w in waves
            )
            for wave, code, n in con.execute(f"SELECT wave, code, n FROM ({union}) ORDER BY code, wave").fetchall():
                counts.setdefault(code, {})[str(wave)] = n
    respondents = [
        {
            "jurisdiction": code,
            "name": config.jurisdictions[code].en if code in config.jurisdictions else None,
            "waves": by_wave,
        }
        for code, by_wave in sorted(counts.items())
    ]
    subscribers = [
        {
            "id": s.id,
            "name": s.name,
            "jurisdictions": list(s.jurisdictions),
            "language": s.language,
            "contacts": list(s.contacts),
        }
        for s in config.subscribers.values()
    ]

    return {
        "study": config.name,
        "folder": str(config.root),
        "waves": waves,
        "respondents": respondents,
        "subscribers": subscribers,
        "runs": run_history(config),
        "deliveries": delivery_status(config),
    }
