"""Counting instructions with valgrind's callgrind: a cost that does not move with the load.

A shared machine makes CPU time vary by more than a few microseconds of guard cost; the
instructions a piece of Python executes vary by well under one percent. ``run_under_callgrind``
starts this same script again under ``valgrind --tool=callgrind`` with instrumentation off,
and the child counts only what it brackets with :meth:`Counter.count`, which switches
instrumentation on, zeroes the counters, runs the code and dumps them (``callgrind_control``).

Counts are of the whole process while instrumented (the interpreter, Django, SQLite in
process, the cryptography library), so they compare the libraries' Python and C work alike;
a database server's work (PostgreSQL, MariaDB) is not counted. Objects' addresses differ
from one build of the code to the next, which moves a count by up to about 1% (dict and
method-cache collisions): compare libraries within one run, or one run's paired figures.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ENV = "BENCH_CALLGRIND_OUT"


def output_path() -> str | None:
    """The callgrind output file when this process runs under callgrind for counting."""
    return os.environ.get(ENV)


def run_under_callgrind(script: str, argv: Sequence[str]) -> int:
    """Run ``script argv`` again under callgrind, with its output; its exit status."""
    valgrind = shutil.which("valgrind")
    if valgrind is None or shutil.which("callgrind_control") is None:
        print("--count-instructions needs valgrind (apt-get install valgrind)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-callgrind-") as folder:
        command = [
            valgrind,
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={Path(folder) / 'callgrind.out'}",
            "--log-file=" + str(Path(folder) / "valgrind.log"),
            sys.executable,
            script,
            *argv,
        ]
        setarch = shutil.which("setarch")
        if setarch is not None:
            command = [setarch, "-R", *command]  # the same addresses on every run
        env = {
            **os.environ,
            ENV: str(Path(folder) / "callgrind.out"),
            "PYTHONHASHSEED": "0",
        }
        return subprocess.run(command, env=env, check=False).returncode


class Counter:
    """Instructions of the code it is handed, counted in this callgrind process."""

    def __init__(self, out: str) -> None:
        self.out = out
        self.dumps = 0
        self.pid = str(os.getpid())
        self._control("--instr=on")

    def _control(self, option: str) -> None:
        subprocess.run(["callgrind_control", option, self.pid], check=True, capture_output=True)

    def count(self, run: Callable[[], None]) -> int:
        """Instructions executed by ``run()`` (and the two control calls around it)."""
        self._control("--zero")
        run()
        self._control("--dump")
        self.dumps += 1
        dump = Path(f"{self.out}.{self.dumps}")
        for _ in range(200):  # the dump is written by valgrind, a moment after the request
            if dump.exists() and "\ntotals:" in dump.read_text():
                break
            time.sleep(0.05)
        for line in dump.read_text().splitlines():
            if line.startswith("totals:"):
                dump.unlink()
                return int(line.split()[1])
        raise RuntimeError(f"callgrind wrote no totals to {dump}")
