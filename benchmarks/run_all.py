"""Run every benchmark in ``benchmarks/`` (each ``*.py`` here except this file), one by one.

Each benchmark is a script with a ``main()`` that writes its JSON under ``benchmarks/results/``
and exits 0 on success. They run as subprocesses with this interpreter so that one benchmark's
memory peak or crash cannot affect another's numbers. Exit code: 0 when all succeeded, else 1.

Usage::

    python benchmarks/run_all.py                # all
    python benchmarks/run_all.py compile_time   # a selection, by file stem
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def discover() -> list[Path]:
    """Benchmark scripts, sorted by name (private ``_*.py`` helpers and this file excluded)."""
    return sorted(
        p for p in HERE.glob("*.py") if p.name != Path(__file__).name and not p.name.startswith("_")
    )


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks and print one status line each."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="benchmark file stems (default: all)")
    args = ap.parse_args(argv)
    scripts = discover()
    if args.names:
        unknown = set(args.names) - {p.stem for p in scripts}
        if unknown:
            print(f"unknown benchmark(s): {sorted(unknown)}; have {[p.stem for p in scripts]}")
            return 2
        scripts = [p for p in scripts if p.stem in args.names]
    failed = []
    for script in scripts:
        print(f"== {script.stem}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.run([sys.executable, str(script)], check=False).returncode
        print(f"== {script.stem}: exit {rc} in {time.perf_counter() - t0:.1f} s", flush=True)
        if rc != 0:
            failed.append(script.stem)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
