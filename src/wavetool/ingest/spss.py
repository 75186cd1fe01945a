"""Decoding SPSS files (.sav, .zsav, .por): the codebook through pyreadstat, the data through the fast
Rust reader (polars-readstat) streamed in batches into staging, with pyreadstat as the fallback.

Both readers give the same table (a test proves it on the sample waves and on real-world files):
user-missing codes as their codes, system-missing as NULL, dates in wavetool's canonical types.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyreadstat

from ..codebook import Codebook, from_pyreadstat
from ..errors import DataError, OutputError
from .labels import UnlabelledCodes
from .por import copy_without_missing, read_por_missing
from .savpatch import copy_for_fast_reader
from .staging import Staged, write_staged

FALLBACK_CHUNK_ROWS = 100_000
BATCH_VALUES = 4_000_000
RowCounter = Callable[[int | None], None]  # rows decoded so far grow by n; None: start again


def read_spss_codebook(path: Path, encoding: str | None = None) -> tuple[Codebook, int | None]:
    """The file's dictionary (labels, formats, measures, user-missing codes, MR sets) and its row count
    as the header declares it (None when the file does not say)."""
    kwargs = {"metadataonly": True, "disable_datetime_conversion": True}
    if encoding:
        kwargs["encoding"] = encoding
    try:
        if path.suffix.lower() == ".por":
            _, meta = pyreadstat.read_por(str(path), **kwargs)
            codebook = from_pyreadstat(meta, por_missing=read_por_missing(path))
        else:
            _, meta = pyreadstat.read_sav(str(path), user_missing=True, **kwargs)
            codebook = from_pyreadstat(meta)
    except pyreadstat.ReadstatError as exc:
        raise unreadable(path, exc) from None
    except UnicodeError as exc:
        raise undecodable(path, encoding, exc) from None
    except (ValueError, OverflowError) as exc:
        raise DataError(
            f"{path}: cannot read the SPSS dictionary: {exc}",
            hint="the file may be damaged; ask the vendor to re-export it",
        ) from None
    if encoding:
        codebook = Codebook(codebook.variables, codebook.mr_sets, encoding)
    rows = meta.number_rows if isinstance(meta.number_rows, int) and meta.number_rows >= 0 else None
    return codebook, rows


def undecodable(path: Path, encoding: str | None, exc: UnicodeError) -> DataError:
    """The error for a file whose text does not decode with the encoding given (or declared)."""
    return DataError(
        f"{path}: cannot decode the file's text with encoding {encoding or 'declared by the file'}: {exc}",
        hint="pass --encoding with the file's real encoding, e.g. --encoding cp1252",
    )


def unreadable(path: Path, exc: BaseException) -> DataError:
    """The error for a file that is not (or no longer) a readable SPSS file."""
    size = path.stat().st_size if path.exists() else 0
    if size == 0:
        return DataError(f"{path}: the file is empty", hint="ask the vendor to re-send the export")
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return DataError(
        f"{path}: not a readable SPSS file ({detail})",
        hint="the file may be truncated or not SPSS at all; ask the vendor to re-export it",
    )


def load_spss(
    target: Path,
    path: Path,
    codebook: Codebook,
    expected_rows: int | None,
    workdir: Path,
    encoding: str | None = None,
    on_rows: RowCounter | None = None,
    counter: UnlabelledCodes | None = None,
    keep: list[str] | None = None,
    only: str | None = None,
) -> tuple[str, Staged]:
    """Stream the file's values into the staged file ``target``; the name of the reader used and the staged
    rows (with the ``keep`` columns in memory).

    The fast reader is tried first (not when ``encoding`` overrides the file's: it cannot); any failure
    of it, or a row count that disagrees with the header, falls back to pyreadstat, whose own errors are
    reported. ``counter`` counts unlabelled codes in the batches of the reader that succeeds. ``only``
    ('polars-readstat' or 'pyreadstat') uses that one reader, failures included (for tests)."""
    count = on_rows or (lambda _n: None)
    observe = counter.observe if counter else None
    keep = keep or []
    if only == "polars-readstat":
        return only, _load_fast(target, path, codebook, workdir, count, observe, keep)
    # A .por goes to pyreadstat: polars-readstat decodes its base-30 numbers to a neighbouring double in
    # about 3 of 10 fractional values (measured on the sample wave 3: 1,219 of 4,200 weights); pyreadstat
    # decodes them exactly.
    if encoding is None and only is None and path.suffix.lower() != ".por":
        try:
            staged = _load_fast(target, path, codebook, workdir, count, observe, keep)
            if expected_rows is None or staged.rows == expected_rows:
                return "polars-readstat", staged
        except (DataError, OutputError):
            raise
        except BaseException as exc:  # any failure of the fast reader, a Rust panic included, falls back
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
        count(None)  # the fallback decodes from the start
        if counter:
            counter.reset()
    staged = _load_pyreadstat(target, path, codebook, workdir, encoding, count, observe, keep)
    if expected_rows is not None and staged.rows != expected_rows:
        raise DataError(
            f"{path}: the header promises {expected_rows} rows but the file holds {staged.rows}",
            hint="the file is truncated; ask the vendor to re-export it",
        )
    return "pyreadstat", staged


def _load_fast(
    target: Path,
    path: Path,
    codebook: Codebook,
    workdir: Path,
    count: RowCounter,
    observe: Callable[[pa.RecordBatch], None] | None,
    keep: list[str],
) -> Staged:
    # lazy: polars and polars_readstat are heavy; only the streamed .sav/.zsav path needs them
    import polars as pl
    import polars_readstat

    source = path
    if path.suffix.lower() in (".sav", ".zsav"):
        # The fast reader would turn user-missing codes into nulls and round times; it reads a copy whose
        # declarations match nothing and whose formats are plain, so every value arrives as stored.
        patched = workdir / f"{target.stem}{path.suffix.lower()}"
        if copy_for_fast_reader(path, patched):
            source = patched
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # Batches of about BATCH_VALUES values: few enough for per-batch work to be cheap, small enough
            # for memory to stay bounded whatever the file's length.
            batch_rows = max(1_000, BATCH_VALUES // max(len(codebook.variables), 1))
            lazy = polars_readstat.scan_readstat(str(source), preserve_order=True, batch_size=batch_rows)
            schema = lazy.collect_schema()
        if list(schema.names()) != list(codebook.variables):
            raise RuntimeError("the fast reader sees different columns than the dictionary")
        frames = iter(lazy.collect_batches())
        first = next(frames, None)
        head = (first if first is not None else pl.DataFrame(schema=schema)).to_arrow()

        def batches() -> Iterator[pa.RecordBatch]:
            count(head.num_rows)
            yield from head.to_batches()
            for frame in frames:
                count(frame.height)
                yield from frame.to_arrow().to_batches()

        return write_staged(target, head.schema, batches(), keep, observe)
    finally:
        if source != path:
            source.unlink(missing_ok=True)


def _load_pyreadstat(
    target: Path,
    path: Path,
    codebook: Codebook,
    workdir: Path,
    encoding: str | None,
    count: RowCounter,
    observe: Callable[[pa.RecordBatch], None] | None,
    keep: list[str],
) -> Staged:
    is_por = path.suffix.lower() == ".por"
    source = path
    if is_por:
        # read_por has no user_missing option: it would turn 8 and 9 into blanks. It reads a copy without
        # the missing-value records instead (the declarations come from the original, see por.py).
        copy = workdir / f"{target.stem}.por"
        if copy_without_missing(path, copy):
            source = copy
    read = pyreadstat.read_por if is_por else pyreadstat.read_sav
    kwargs: dict[str, object] = {"disable_datetime_conversion": True}
    if not is_por:
        kwargs["user_missing"] = True
    if encoding:
        kwargs["encoding"] = encoding
    schema = pa.schema(
        [(n, pa.string() if v.type == "string" else pa.float64()) for n, v in codebook.variables.items()]
    )

    def batches() -> Iterator[pa.RecordBatch]:
        for frame, _ in pyreadstat.read_file_in_chunks(read, str(source), chunksize=FALLBACK_CHUNK_ROWS, **kwargs):
            count(len(frame))
            yield from pa.Table.from_pandas(frame, schema=schema, preserve_index=False).to_batches()

    try:
        return write_staged(target, schema, batches(), keep, observe)
    except pyreadstat.ReadstatError as exc:
        raise unreadable(path, exc) from None
    except UnicodeError as exc:
        raise undecodable(path, encoding, exc) from None
    except (ValueError, OverflowError, pa.ArrowException) as exc:
        raise DataError(
            f"{path}: cannot read the values: {exc}", hint="the file may be damaged; ask the vendor to re-export it"
        ) from None
    finally:
        if source != path:
            source.unlink(missing_ok=True)
