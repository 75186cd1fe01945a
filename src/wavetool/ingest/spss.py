"""Decoding SPSS files (.sav, .zsav, .por): the codebook through pyreadstat, the data through the
fast Rust reader (polars-readstat) into Arrow, with pyreadstat as the fallback."""

from __future__ import annotations

import warnings
from pathlib import Path

import pyarrow as pa
import pyreadstat

from ..codebook import Codebook, from_pyreadstat
from ..errors import DataError
from .por import read_por_missing

_NULL_SUFFIX = "__wavetool_missing"


def read_spss_codebook(path: Path, encoding: str | None = None) -> Codebook:
    """The file's dictionary: labels, formats, measures, user-missing codes and MR sets."""
    kwargs = {"metadataonly": True, "disable_datetime_conversion": True}
    if encoding:
        kwargs["encoding"] = encoding
    try:
        if path.suffix.lower() == ".por":
            _, meta = pyreadstat.read_por(str(path), **kwargs)
            return from_pyreadstat(meta, por_missing=read_por_missing(path))
        _, meta = pyreadstat.read_sav(str(path), user_missing=True, **kwargs)
    except pyreadstat.ReadstatError as exc:
        raise _unreadable(path, exc) from None
    except UnicodeError as exc:
        raise DataError(f"{path}: cannot decode text with encoding {encoding or meta_encoding(path)}: {exc}",
                        hint="pass --encoding with the file's real encoding, e.g. --encoding cp1252") from None
    return from_pyreadstat(meta)


def meta_encoding(path: Path) -> str:
    return "declared by the file"


def _unreadable(path: Path, exc: Exception) -> DataError:
    size = path.stat().st_size if path.exists() else 0
    if size == 0:
        return DataError(f"{path}: the file is empty", hint="ask the vendor to re-send the export")
    return DataError(
        f"{path}: not a readable SPSS file ({exc})",
        hint="the file may be truncated or not SPSS at all; ask the vendor to re-export it",
    )


def read_spss_data(path: Path, codebook: Codebook, encoding: str | None = None) -> tuple[pa.Table, str]:
    """The file's values as an Arrow table, user-missing codes kept as their codes; and the reader used."""
    if encoding is None:
        try:
            return _read_fast(path, codebook), "polars-readstat"
        except Exception:  # noqa: BLE001 - any failure of the fast reader falls back to pyreadstat
            pass
    return _read_pyreadstat(path, encoding), "pyreadstat"


def _read_fast(path: Path, codebook: Codebook) -> pa.Table:
    import polars as pl
    import polars_readstat

    is_por = path.suffix.lower() == ".por"
    with_missing = [n for n, v in codebook.variables.items() if v.missing]
    options = None
    if with_missing and not is_por:
        # The fast reader turns user-missing codes into nulls; the indicator column gives the code back.
        options = polars_readstat.InformativeNullOpts(
            columns=with_missing, suffix=_NULL_SUFFIX, use_value_labels=False
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = polars_readstat.read_readstat(str(path), informative_nulls=options)
    if options is not None:
        restored = []
        for name in with_missing:
            flag = name + _NULL_SUFFIX
            if flag not in frame.columns:
                continue
            dtype = frame.schema[name]
            code = pl.col(flag) if dtype == pl.String else pl.col(flag).cast(dtype, strict=False)
            restored.append(pl.coalesce(pl.col(name), code).alias(name))
        frame = frame.with_columns(restored).drop([c for c in frame.columns if c.endswith(_NULL_SUFFIX)])
    if list(frame.columns) != list(codebook.variables):
        raise DataError(f"{path}: fast reader returned different columns")
    return frame.to_arrow()


def _read_pyreadstat(path: Path, encoding: str | None) -> pa.Table:
    kwargs = {"disable_datetime_conversion": True}
    if encoding:
        kwargs["encoding"] = encoding
    try:
        if path.suffix.lower() == ".por":
            frame, _ = pyreadstat.read_por(str(path), **kwargs)
        else:
            frame, _ = pyreadstat.read_sav(str(path), user_missing=True, **kwargs)
    except pyreadstat.ReadstatError as exc:
        raise _unreadable(path, exc) from None
    return pa.Table.from_pandas(frame, preserve_index=False)
