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
    # update: only what is given changes; another query reads everything again at the next run
    code, out = invoke("harvest", "source", "update", "portail", "--query", "rex", "--schedule", "manual",
                       "--home", home)
    assert code == 0 and "Source « portail » modifiée" in out
    shown = json.loads(invoke("harvest", "source", "show", "portail", "--home", home)[1])
    assert (shown["url"], shown["query"], shown["schedule"], shown["allow_private_network"]) == (
        portal.url, "rex", None, True) and shown["last_success_at"] is None
    code, out = invoke("harvest", "source", "update", "portail", "--url", "ftp://x", "--home", home)
    assert code == 1 and "Adresse invalide" in out
    assert json.loads(invoke("harvest", "source", "show", "portail", "--home", home)[1])["url"] == portal.url


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
    actions.add_source(reg, OP, "p", portal.url, allow_private_network=True, schedule="daily")
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
    # the worker (SQLite: its own loop) runs the source again at once, though it is not due before a day:
    # a job whose process died does not count as a run
    code, out = invoke("worker", "--once", "--home", str(home))
    assert code == 0 and out.count("p : n°") == 1, out
    job = actions.list_jobs(reg, OP)[0]
    assert job.status == "done" and job.id == killed.id + 1
    assert invoke("worker", "--once", "--home", str(home))[1] == ""  # and then not before a day
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


def _wait(what: str, check, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {seconds} s: {what}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.mark.parametrize("registry", ["postgresql"], indirect=True)
def test_two_workers_on_postgresql_share_the_queue_and_finish_a_killed_workers_job(
        registry: Registry, tmp_path: Path) -> None:
    """Two `registry worker` processes on the procrastinate queue, four hourly sources: each source is
    harvested once in the tick; one worker is killed (-9) in the middle of a harvest, and its source is
    harvested again, by the other worker, promptly (within seconds, not at the next hourly due time)."""
    portals = [FaultPortal() for _ in range(4)]
    try:
        for n, portal in enumerate(portals):
            for d in range(6):  # ~0.4 s a dataset: a harvest lasts ~2.5 s, long enough to be killed in
                k = 10 * n + d
                portal.add_dataset(f"jeu-{k}", [("rex.csv", experiences_csv([k]))], delay=0.4)
            actions.add_source(registry, OP, f"s{n}", portal.url, schedule="hourly", allow_private_network=True)
        env = {**os.environ, "REGISTRY_DATABASE_URL": registry.settings.db_url, "PYTHONPATH": str(ROOT),
               "REGISTRY_HOME": str(registry.settings.home)}
        cmd = [sys.executable, "-m", "registry", "worker", "--interval", "2", "--heartbeat", "1",
               "--stalled-after", "4"]
        logs = [(tmp_path / f"w{i}.log").open("w") for i in range(2)]
        workers = [subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT) for log in logs]
        try:
            def running_with_items() -> bool:
                for j in actions.list_jobs(registry, OP):
                    if j.status == "running" and actions.get_job(registry, OP, j.id).items:
                        return True
                return False

            _wait("a harvest in progress", running_with_items, 60)
            victim_job = next(j for j in actions.list_jobs(registry, OP) if j.status == "running")
            owner_pid = int(victim_job.owner.split(":")[1])
            victim = next(w for w in workers if w.pid == owner_pid)
            survivor = next(w for w in workers if w is not victim)
            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
            killed_at = time.monotonic()

            def all_done() -> bool:
                jobs = actions.list_jobs(registry, OP)
                return {j.source for j in jobs if j.status == "done"} == {"s0", "s1", "s2", "s3"} and \
                    not any(j.status == "running" for j in jobs)

            _wait("every source harvested", all_done, 90)
            assert time.monotonic() - killed_at < 60  # promptly, not at the next hourly tick
            jobs = actions.list_jobs(registry, OP)
            per_source: dict[str, list[actions.JobView]] = {}
            for j in sorted(jobs, key=lambda j: j.id):
                per_source.setdefault(j.source, []).append(j)
            for name, views in per_source.items():
                if name == victim_job.source:  # the killed job, closed as failed, then run again to the end
                    assert [v.status for v in views] == ["failed", "done"], views
                    assert "interrompu" in (views[0].message or "")
                    assert int(views[1].owner.split(":")[1]) == survivor.pid
                    assert views[1].counts["new"] + views[1].counts["unchanged"] == 6
                else:  # once in this tick
                    assert [v.status for v in views] == ["done"], (name, views)
                    assert views[0].counts["new"] == 6
            # every experience published once, none twice
            ids = [s.id for s in experiences.listing(registry, OP, limit=100).items]
            assert sorted(ids) == sorted(experience_id(10 * n + d) for n in range(4) for d in range(6))
            assert all(experiences.get(registry, OP, i).revision == 1 for i in ids)
            time.sleep(3)  # more ticks: nothing is harvested again before the next hour
            assert len(actions.list_jobs(registry, OP)) == len(jobs)
        finally:
            for w in workers:
                _stop(w)
            for log in logs:
                log.close()
    finally:
        for p in portals:
            p.stop()


@pytest.mark.parametrize("registry", ["postgresql"], indirect=True)
def test_worker_once_on_postgresql_runs_the_due_sources_through_the_queue(registry: Registry,
                                                                          portal: FaultPortal) -> None:
    portal.add_dataset("a", [("rex.csv", experiences_csv([1]))])
    actions.add_source(registry, OP, "due", portal.url, schedule="daily", allow_private_network=True)
    actions.add_source(registry, OP, "manual", portal.url, allow_private_network=True)
    env = {**os.environ, "REGISTRY_DATABASE_URL": registry.settings.db_url, "PYTHONPATH": str(ROOT),
           "REGISTRY_HOME": str(registry.settings.home)}
    cmd = [sys.executable, "-m", "registry", "worker", "--once"]
    first = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr[-2000:]
    assert [(j.source, j.status) for j in actions.list_jobs(registry, OP)] == [("due", "done")]
    again = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and len(actions.list_jobs(registry, OP)) == 1  # not due before a day


@pytest.mark.parametrize("registry", ["postgresql"], indirect=True)
def test_the_queue_lives_in_its_own_schema_applied_once(registry: Registry) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import text

    from harvesters import queue
    from registry.db import Base

    assert queue.ensure_schema(registry, OP) is True
    assert queue.ensure_schema(registry, OP) is False  # once
    with registry.engine.connect() as conn:
        body = conn.scalar(text("SELECT prosrc FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                                "WHERE n.nspname = 'procrastinate' AND proname = 'procrastinate_retry_job_v1' "
                                "LIMIT 1"))
        assert body and "(job id: %)" in body  # the DDL as procrastinate wrote it (no doubled %)
        assert conn.scalar(text("SELECT to_regclass('public.procrastinate_jobs')")) is None
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []  # the registry's own
