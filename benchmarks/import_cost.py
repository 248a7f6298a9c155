"""Import cost: what ``import anytcpip`` and its pytest plugin add to start-up.

Each figure is the best of ``--runs`` fresh interpreters (the minimum is the
least disturbed by other work on the machine), measured from outside:

- ``python -c pass``, ``import anyio``, ``import anyio, asyncio`` (the floor:
  anytcpip's exceptions subclass asyncio's, on trio too) and
  ``import anytcpip``;
- what the auto-loaded pytest plugin adds to every pytest start in an
  environment where anytcpip is installed: importing the plugin module once
  pytest is imported, against importing anytcpip (what the plugin cost while
  it lived in the package). Measured in-process, since a whole pytest
  start-up around it is far noisier than the difference.

It also checks that loading the plugin imports no anytcpip module, and which
heavy modules a bare ``import anytcpip`` pulls in.

    python benchmarks/import_cost.py [--runs 7] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import time

HEAVY = ("ssl", "asyncio", "trio", "uvloop", "ctypes", "json", "socket")


def best_of(runs: int, command: list[str], cwd: str | None = None) -> float:
    """Return the shortest wall time of ``runs`` runs of ``command``, in ms."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=cwd)
        times.append(time.perf_counter() - start)
    return min(times) * 1000


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", type=pathlib.Path, help="also write figures here")
    args = parser.parse_args()

    results: dict[str, float] = {}
    for label, code in [
        ("python -c pass", "pass"),
        ("import anyio", "import anyio"),
        ("import anyio, asyncio", "import anyio, asyncio"),
        ("import anytcpip", "import anytcpip"),
    ]:
        results[label] = best_of(args.runs, python(code))
    base = results["python -c pass"]
    print(f"{'start-up':34} {'total':>9} {'added':>9}")
    for label, ms in results.items():
        print(f"{label:34} {ms:7.1f}ms {ms - base:7.1f}ms")

    # In-process, after pytest is imported: what loading the plugin costs,
    # against importing anytcpip (what the plugin cost while it lived in
    # the package).
    timing = (
        "import pytest, time; start = time.perf_counter(); import {}; "
        "print((time.perf_counter() - start) * 1000)"
    )
    for label, module in [
        ("plugin load, after pytest", "_anytcpip_pytestplugin"),
        ("import anytcpip, after pytest", "anytcpip"),
    ]:
        runs = [
            float(
                subprocess.run(
                    python(timing.format(module)),
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
            )
            for _ in range(args.runs)
        ]
        results[label] = min(runs)
        print(f"{label:34} {min(runs):7.1f}ms")

    check = (
        "import sys, _anytcpip_pytestplugin; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'anytcpip'))"
    )
    loaded = subprocess.run(python(check), check=True, capture_output=True, text=True)
    print(f"anytcpip modules the plugin imports: {loaded.stdout.strip()}")
    check = f"import sys, anytcpip; print([m for m in {HEAVY!r} if m in sys.modules])"
    heavy = subprocess.run(python(check), check=True, capture_output=True, text=True)
    print(f"heavy modules after import anytcpip: {heavy.stdout.strip()}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
