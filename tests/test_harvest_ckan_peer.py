"""The CKAN harvester against a REAL CKAN 2.12 (../shared/tools/ckan-peer.sh, on 127.0.0.1, without Solr: the
harvester falls back to package_list + package_show). Datasets are published there with ckanapi, harvested,
then changed, deleted and renamed, and harvested again. A peer that cannot start FAILS the test."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import ckanapi
import pytest

from harvesters.run import run_source
from harvesters.testing import experience_id, experiences_csv
from registry.actions import Caller, experiences
from registry.actions import harvest as actions
from registry.queries import NotFound
from registry.store import Registry

ROOT = Path(__file__).resolve().parents[1]
PEER = ROOT.parent / "shared" / "tools" / "ckan-peer.sh"
PEER_ENV = {"CKAN_PEER_BASE": "/tmp/harvest-ckan-peer", "CKAN_PEER_PORT": "5065", "CKAN_PEER_PG_PORT": "5443",
            "CKAN_PEER_REDIS_PORT": "6390"}
OP = Caller.operator("cli")
ORG = "territoire-test"

pytestmark = pytest.mark.xdist_group("ckan")


@pytest.fixture(scope="module")
def ckan() -> Iterator[ckanapi.RemoteCKAN]:
    env = {**os.environ, **PEER_ENV}
    proc = subprocess.run(["bash", str(PEER), "start"], env=env, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        pytest.fail(f"the real CKAN peer did not start:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    values = dict(line.split("=", 1) for line in
                  (Path(PEER_ENV["CKAN_PEER_BASE"]) / "ckan-peer.env").read_text().split("\n") if "=" in line)
    api = ckanapi.RemoteCKAN(values["CKAN_URL"], apikey=values["CKAN_TOKEN"])
    for name in api.action.package_list():  # a clean portal: what earlier runs left is purged
        api.action.dataset_purge(id=name)
    with contextlib.suppress(ckanapi.CKANAPIError):  # without Solr: an error answer, but the org is saved
        api.action.organization_create(name=ORG)
    assert ORG in api.action.organization_list()
    yield api
    for name in api.action.package_list():
        api.action.dataset_purge(id=name)
    subprocess.run(["bash", str(PEER), "stop"], env=env, capture_output=True, timeout=120)


def publish(api: ckanapi.RemoteCKAN, name: str, files: dict[str, bytes], schema: bool = True) -> dict:
    d = api.action.package_create(name=name, title=name.replace("-", " "), owner_org=ORG)
    for fname, body in files.items():
        extra = {"schema": "rex-territoires-connectes"} if schema else {}
        api.action.resource_create(package_id=d["id"], name=fname, format=fname.rsplit(".")[-1].upper(),
                                   upload=(fname, io.BytesIO(body)), **extra)
    return api.action.package_show(id=d["id"])


def state(reg: Registry, n: int) -> str | None:
    try:
        return experiences.get(reg, OP, experience_id(n)).status
    except NotFound:
        return None


def test_harvest_a_real_ckan_then_change_delete_rename(ckan: ckanapi.RemoteCKAN, sqlite_registry: Registry) -> None:
    reg = sqlite_registry
    a = publish(ckan, "rex-ville-a", {"rex.csv": experiences_csv([101, 102])})
    publish(ckan, "rex-ville-b", {"experiences.csv": experiences_csv([103])}, schema=False)
    publish(ckan, "budget-ville", {"budget.csv": b"annee,montant\n2024,12\n"}, schema=False)
    ckan.action.package_create(name="sans-ressource", owner_org=ORG)
    actions.add_source(reg, OP, "pair", ckan.address, allow_private_network=True)

    job = run_source(reg, OP, "pair")
    assert job.status == "done", job.message
    assert "package_list" in (job.message or "")  # no Solr: the fallback
    assert job.counts["new"] == 3 and job.counts["failed"] == 0
    items = {i.dataset_name: i for i in actions.get_job(reg, OP, job.id).items}
    assert items["budget ville"].status == "ignored" and items["sans-ressource"].status == "ignored"
    revision = experiences.history(reg, OP, experience_id(101))[0]
    assert revision.channel == "harvest" and revision.actor == "moissonnage:pair"
    assert "/download/rex.csv" in (revision.source_url or "")

    # change A (new file: 101 retitled, 102 gone), rename A, delete B
    res = a["resources"][0]
    ckan.action.resource_patch(id=res["id"], upload=("rex.csv", io.BytesIO(
        experiences_csv([101], change={"intitule": "Capteurs d'air, deuxième saison"}))))
    ckan.action.package_patch(id=a["id"], name="rex-ville-a-renommee", title="Ville A renommée")
    ckan.action.package_delete(id="rex-ville-b")

    job = run_source(reg, OP, "pair")  # incremental: updates, never withdraws
    assert job.status == "done" and job.counts["updated"] == 1 and job.counts["withdrawn"] == 0
    assert [state(reg, n) for n in (101, 102, 103)] == ["published"] * 3

    job = run_source(reg, OP, "pair", full=True)
    assert job.status == "done" and job.counts["withdrawn"] == 2, actions.get_job(reg, OP, job.id)
    assert [state(reg, n) for n in (101, 102, 103)] == ["published", "withdrawn", "withdrawn"]
    view = experiences.get(reg, OP, experience_id(101))
    assert view.record["experiences"]["intitule"] == "Capteurs d'air, deuxième saison"
    assert [r.action for r in experiences.history(reg, OP, experience_id(101))] == ["create", "update"]

    # B published again under a new name: 103 comes back, no duplicate
    publish(ckan, "rex-ville-b-bis", {"rex.csv": experiences_csv([103])})
    job = run_source(reg, OP, "pair", full=True)
    assert job.counts["updated"] == 1 and state(reg, 103) == "published"
    assert [r.action for r in experiences.history(reg, OP, experience_id(103))] == ["create", "withdraw", "restore"]
    assert not any(j.status == "running" for j in actions.list_jobs(reg, OP))
