"""Small helpers for tests: rows from the standard's own valid examples, written back as files."""

from __future__ import annotations

import csv
import io
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import Engine

from registry.paths import SCHEMAS_DIR
from registry.standard import get_standard

Row = dict[str, str]


def example_rows(table: str) -> list[Row]:
    with (SCHEMAS_DIR / table / "exemple-valide.csv").open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def example(exp_id: str | None = None) -> Row:
    """One valid experience row (the first of the examples, or the one with this id)."""
    rows = example_rows("experiences")
    return dict(next(r for r in rows if exp_id in (None, r["id_experience"])))


def children(table: str, exp_id: str) -> list[Row]:
    return [r for r in example_rows(table) if r["id_experience"] == exp_id]


def csv_bytes(rows: list[Row], table: str = "experiences", header: list[str] | None = None,
              delimiter: str = ",", encoding: str = "utf-8") -> bytes:
    header = header or list(get_standard().table(table).field_names)
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([row.get(h, "") for h in header])
    return buf.getvalue().encode(encoding)


def write_package(folder: Path, tables: dict[str, list[Row]]) -> Path:
    """A folder of <table>.csv files (what `registry import FOLDER` reads)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        (folder / f"{name}.csv").write_bytes(csv_bytes(rows, name))
    return folder


def in_forked_child(engine: Engine, check: Callable[[], int], seconds: float = 30.0, dispose: bool = True) -> int:
    """Runs `check` in a child process forked now (as gunicorn --preload forks its workers) and returns its exit
    code (what `check` returned; 1 when it raised); the child is killed, and the test fails, after `seconds`.
    `dispose`: the engine's pool emptied first (else the child inherits its connections)."""
    import pytest

    if dispose:
        engine.dispose()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            if dispose:
                engine.dispose(close=False)  # the parent's connections are not the child's
            code = check()
        finally:
            os._exit(code)
    deadline = time.monotonic() + seconds
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0:
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"the forked process did not finish in {seconds:.0f} s")
        time.sleep(0.05)
    return os.waitstatus_to_exitcode(done[1])
