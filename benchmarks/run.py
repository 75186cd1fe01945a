"""Run every benchmark in this folder: each ``bench_*.py`` module's ``main()``, in name order.

Usage: ``python benchmarks/run.py [NAME ...]`` (e.g. ``tables import``; default: all). Each benchmark
prints its own timings and ratios against a baseline measured in the same run. The exit status is
non-zero if a benchmark raised or returned non-zero.
"""

from __future__ import annotations

import importlib.util
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent


def discover(names: list[str]) -> list[Path]:
    found = sorted(HERE.glob("bench_*.py"))
    if names:
        found = [p for p in found if p.stem.removeprefix("bench_") in names or p.stem in names]
    return found


def run(path: Path) -> int:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    saved = sys.argv
    sys.argv = [str(path)]  # a benchmark parsing sys.argv sees no options
    try:
        result = module.main()
    finally:
        sys.argv = saved
    return int(result or 0)


def main(argv: list[str] | None = None) -> int:
    paths = discover(list(sys.argv[1:] if argv is None else argv))
    if not paths:
        print("no benchmark matches", file=sys.stderr)
        return 2
    failed = []
    for path in paths:
        print(f"== {path.name}", flush=True)
        start = time.perf_counter()
        try:
            status = run(path)
        except Exception:  # report it and go on with the other benchmarks
            traceback.print_exc()
            status = 1
        print(
            f"== {path.name}: {'ok' if status == 0 else f'FAILED ({status})'} in {time.perf_counter() - start:.1f} s\n",
            flush=True,
        )
        if status:
            failed.append(path.name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
