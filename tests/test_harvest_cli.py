"""`registry harvest …` and `registry worker`: the commands, kill -9 in the middle of a harvest, and two workers
on PostgreSQL sharing four scheduled sources."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from harvesters.run import run_source
from harvesters.testing import FaultPortal, experience_id, experiences_csv
from registry.actions import Caller, experiences
from registry.actions import harvest as actions
from registry.cli import cli, load_plugins
from registry.config import load_settings
from registry.store import Registry

OP = Caller.operator("cli")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def portal() -> Iterator[FaultPortal]:
    p = FaultPortal()
    yield p
    p.stop()


def invoke(*args: str) -> tuple[int, str]:
    load_plugins(cli)
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_the_harvest_commands_in_french(tmp_path: Path, portal: FaultPortal) -> None:
    home = str(tmp_path / "i")
    portal.add_dataset("a", [("rex.csv", experiences_csv([1, 2], broken={2}))])
    code, out = invoke("harvest", "source", "add", "portail", portal.url, "--allow-private-network",
                       "--schedule", "daily", "--home", home)
    assert code == 0 and "Source « portail » ajoutée" in out
    assert invoke("harvest", "source", "add", "portail", portal.url, "--home", home)[1].count("existe déjà") == 1
    code, out = invoke("harvest", "source", "list", "--home", home)
    assert "portail" in out and "daily" in out and "active" in out
    assert json.loads(invoke("harvest", "source", "show", "portail", "--home", home)[1])["schedule"] == "daily"
    assert "désactivée" in invoke("harvest", "source", "disable", "portail", "--home", home)[1]
    assert invoke("harvest", "run", "--home", home)[1].startswith("Aucune source")
    assert "activée" in invoke("harvest", "source", "enable", "portail", "--home", home)[1]
    code, out = invoke("harvest", "run", "portail", "--home", home)
    assert code == 0 and "terminé" in out and "1 nouvelles" in out and "1 invalides" in out
    jobs = json.loads(invoke("harvest", "jobs", "portail", "--format", "json", "--home", home)[1])
    assert jobs[0]["status"] == "done" and jobs[0]["counts"]["new"] == 1
    code, out = invoke("harvest", "job", str(jobs[0]["id"]), "--home", home)
    assert "[invalid] a" in out and "ligne 3" in out and "colonne domaine" in out and "enum-mismatch" in out
    report = json.loads(invoke("harvest", "job", str(jobs[0]["id"]), "--format", "json", "--home", home)[1])
    assert report["items"][0]["messages"][0]["experience"] == experience_id(2)
    assert "inconnu" in invoke("harvest", "job", "999", "--home", home)[1]
    invoke("harvest", "source", "add", "prive", portal.url, "--home", home)  # no --allow-private-network
    code, out = invoke("harvest", "run", "portail", "prive", "--home", home)
    assert code == 1 and "réseau privé" in out
    assert "supprimée" in invoke("harvest", "source", "remove", "prive", "--home", home)[1]
    assert "inconnue" in invoke("harvest", "source", "show", "prive", "--home", home)[1]


def test_the_worker_runs_what_is_due_once(tmp_path: Path, portal: FaultPortal) -> None:
    home = str(tmp_path / "i")
    portal.add_dataset("a", [("rex.csv", experiences_csv([1]))])
    invoke("harvest", "source", "add", "quotidien", portal.url, "--schedule", "daily", "--allow-private-network",
           "--home", home)
    invoke("harvest", "source", "add", "manuel", portal.url, "--allow-private-network", "--home", home)
    code, out = invoke("worker", "--once", "--home", home)
    assert code == 0 and out.count("quotidien : n°") == 1 and "manuel" not in out
    assert invoke("worker", "--once", "--home", home)[1] == ""  # not due again before a day


def snapshot(reg: Registry) -> dict[str, tuple[str, int, str]]:
    page = experiences.listing(reg, OP, limit=500)
    out = {}
    for s in page.items:
        view = experiences.get(reg, OP, s.id)
        out[s.id] = (view.status, view.revision, json.dumps(view.record, sort_keys=True))
    return out


def test_kill_9_mid_harvest_then_run_again_gives_the_same_state(tmp_path: Path, portal: FaultPortal,
                                                               clock: object) -> None:
    for n in range(1, 31):
        portal.add_dataset(f"jeu-{n:02d}", [("rex.csv", experiences_csv([n]))], delay=0.15)
    home = tmp_path / "tue"
    reg = Registry(load_settings(home=str(home)))
    reg.migrate()
    actions.add_source(reg, OP, "p", portal.url, allow_private_network=True)
    env = {**os.environ, "REGISTRY_HOME": str(home), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "registry", "harvest", "run", "p"], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        jobs = actions.list_jobs(reg, OP)
        if jobs and len(actions.get_job(reg, OP, jobs[0].id).items) >= 8:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    killed = actions.list_jobs(reg, OP)[0]
    assert killed.status == "failed" and "interrompu" in (killed.message or "")  # its process is gone
    assert 0 < len(snapshot(reg)) < 30
    for f in portal.files.values():
        f.delay = 0
    job = run_source(reg, OP, "p")
    assert job.status == "done"
    assert not any(j.status == "running" for j in actions.list_jobs(reg, OP))
    # the same final state as an uninterrupted run, and no experience written twice
    control = Registry(load_settings(home=str(tmp_path / "temoin")))
    control.migrate()
    actions.add_source(control, OP, "p", portal.url, allow_private_network=True)
    assert run_source(control, OP, "p").counts["new"] == 30
    mine, theirs = snapshot(reg), snapshot(control)
    assert mine.keys() == theirs.keys() and len(mine) == 30
    assert {k: (v[0], v[2]) for k, v in mine.items()} == {k: (v[0], v[2]) for k, v in theirs.items()}
    assert all(v[1] == 1 for v in mine.values())
    reg.close()
    control.close()


@pytest.mark.parametrize("registry", ["postgresql"], indirect=True)
def test_two_workers_on_postgresql_never_harvest_a_source_twice(registry: Registry, portal: FaultPortal) -> None:
    for n in range(1, 5):
        portal.add_dataset(f"jeu-{n}", [("rex.csv", experiences_csv([n]))], delay=0.3)
        actions.add_source(registry, OP, f"s{n}", portal.url, schedule="hourly", allow_private_network=True)
    env = {**os.environ, "REGISTRY_DATABASE_URL": registry.settings.db_url, "PYTHONPATH": str(ROOT),
           "REGISTRY_HOME": str(registry.settings.home)}
    workers = [subprocess.Popen([sys.executable, "-m", "registry", "worker", "--once"], env=env, cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [w.communicate(timeout=180) for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs
    jobs = actions.list_jobs(registry, OP)
    per_source = {}
    for j in jobs:
        per_source.setdefault(j.source, []).append(j)
    # each source harvested once in this tick (4 datasets x 4 sources, each source saw the 4 datasets)
    assert sorted(per_source) == ["s1", "s2", "s3", "s4"] and all(len(v) == 1 for v in per_source.values())
    assert all(v[0].status == "done" for v in per_source.values())
