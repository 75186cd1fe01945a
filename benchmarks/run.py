"""Run every benchmark in this folder: each ``bench_*.py`` script, in name order, each in its own process.

Usage: ``python benchmarks/run.py [NAME ...]`` (e.g. ``tables import``; default: all). Each benchmark
prints its own timings and ratios against a baseline measured in the same run. The exit status is
non-zero if a benchmark raised or returned non-zero.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def discover(names: list[str]) -> list[Path]:
    found = sorted(HERE.glob("bench_*.py"))
    if names:
        found = [p for p in found if p.stem.removeprefix("bench_") in names or p.stem in names]
    return found


def run(path: Path) -> int:
    """One benchmark in a process of its own: what an earlier one left in memory (and in the peak RSS that
    Linux hands down to every child a big process starts, which bench_import measures) cannot skew it."""
    return subprocess.run([sys.executable, str(path)], check=False).returncode


def main(argv: list[str] | None = None) -> int:
    paths = discover(list(sys.argv[1:] if argv is None else argv))
    if not paths:
        print("no benchmark matches", file=sys.stderr)
        return 2
    failed = []
    for path in paths:
        print(f"== {path.name}", flush=True)
        start = time.perf_counter()
        status = run(path)  # a failure is reported and the other benchmarks still run
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
