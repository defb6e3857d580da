"""Keeping the index in step, as it runs for real: a background syncer, rebuilds built aside and swapped in,
writers killed with SIGKILL, two rebuilds at once, processes writing while another searches."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from registry import search
from registry.actions import Caller
from registry.actions import index as search_index
from registry.config import load_settings
from registry.jobs import Background
from registry.service import Provenance, publish_bytes, publish_path
from registry.store import Registry
from tests.helpers import csv_bytes, example

ROOT = Path(__file__).resolve().parents[1]
N = 400
pytestmark = pytest.mark.xdist_group("search-index")


def cli(home: Path, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REGISTRY_HOME": str(home)}
    env.pop("REGISTRY_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "registry", *args], env=env, capture_output=True, text=True,
                          timeout=300, **kw)  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synthetic")
    subprocess.run([sys.executable, str(ROOT / "data" / "synthetic.py"), str(out), "--experiences", str(N)],
                   check=True, capture_output=True, timeout=300)
    return out


@pytest.fixture
def loaded(tmp_path: Path, synthetic: Path) -> Registry:
    """A registry of N experiences whose index has never been written (the outbox holds them all)."""
    reg = Registry(load_settings(home=str(tmp_path / "instance")))
    reg.migrate()
    assert publish_path(reg, synthetic, Provenance("cli")).accepted
    return reg


def total(reg: Registry) -> int:
    return search_index.search(reg, Caller.anonymous(), search_index.request()).total


def test_the_background_syncer_applies_a_commit_within_two_seconds(loaded: Registry) -> None:
    worker = Background(loaded, interval=0.2)
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while total(loaded) != N:  # the first round builds the index
            assert time.monotonic() < deadline
            time.sleep(0.1)
        row = {**example("217500016-2023-001"), "intitule": "Hydroliennes fluviales expérimentales"}
        assert publish_bytes(loaded, csv_bytes([row]), "x.csv", Provenance("api")).accepted  # no sync here
        committed = time.monotonic()
        while not search_index.search(loaded, Caller.anonymous(), search_index.request("hydroliennes")).total:
            assert time.monotonic() - committed < 2.0, "not searchable within 2 s of the commit"
            time.sleep(0.05)
    finally:
        worker.stop()
        worker.join(10)
    assert search.check(loaded) == (set(), set(), set())


def test_readers_never_see_a_half_built_index_during_a_rebuild(loaded: Registry) -> None:
    search.sync(loaded)
    seen: list[int] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            seen.append(total(loaded))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        assert search.rebuild(loaded) == N
        assert search.rebuild(loaded) == N
    finally:
        done.set()
        reader.join(30)
    assert seen and set(seen) == {N}


def test_two_rebuilds_at_once_never_duplicate(loaded: Registry) -> None:
    home = loaded.settings.home
    procs = [subprocess.Popen([sys.executable, "-m", "registry", "index", "rebuild"], cwd=ROOT,
                              env={**os.environ, "REGISTRY_HOME": str(home)}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert total(loaded) == N
    assert len(search.backend(loaded).indexed()) == N  # one document per experience
    assert cli(home, "index", "check").returncode == 0


def test_a_rebuild_killed_at_any_point_leaves_no_lock_and_no_damage(loaded: Registry) -> None:
    home = loaded.settings.home
    search.sync(loaded)
    for delay in (0.5, 1.0, 2.0):
        proc = subprocess.Popen([sys.executable, "-m", "registry", "index", "rebuild"], cwd=ROOT,
                                env={**os.environ, "REGISTRY_HOME": str(home)}, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert total(loaded) == N  # the current generation is untouched
        started = time.monotonic()
        assert search.sync(loaded, wait=5.0) == 0  # the writers' lock died with the process
        assert time.monotonic() - started < 5.0
    assert cli(home, "index", "rebuild").returncode == 0
    assert [p.name for p in (home / "index").glob("g*")].__len__() <= 2  # abandoned generations removed
    assert cli(home, "index", "check").returncode == 0


def test_two_processes_write_while_a_third_searches(loaded: Registry, tmp_path: Path) -> None:
    search.sync(loaded)
    home = loaded.settings.home
    files = []
    for i in range(2):
        rows = [{**example("217500016-2023-001"), "id_experience": f"217500016-2026-{i}{n:02d}",
                 "intitule": f"Essai concurrent {i} numéro {n}"} for n in range(30)]
        path = tmp_path / f"lot{i}.csv"
        path.write_bytes(csv_bytes(rows))
        files.append(path)
    procs = [subprocess.Popen([sys.executable, "-m", "registry", "import", str(f)], cwd=ROOT,
                              env={**os.environ, "REGISTRY_HOME": str(home)}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for f in files]
    totals = []
    while any(p.poll() is None for p in procs):
        totals.append(total(loaded))
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert totals and all(N <= t <= N + 60 for t in totals)
    time.sleep(0.6)  # past the searchers' re-check delay
    assert total(loaded) == N + 60
    assert cli(home, "index", "check").returncode == 0
