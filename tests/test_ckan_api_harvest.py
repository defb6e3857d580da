"""The proof with a real portal: CKAN 2.12 with ckanext-harvest and ckanext-dcat (../shared/tools/ckan-peer.sh,
CKAN_PEER_HARVEST=1, all on 127.0.0.1) harvests the registry, once through our CKAN API with its `ckan`
harvester (then again, incrementally, with its `fq=metadata_modified:[... TO *]`), and once through our DCAT
catalogue, every Hydra page, with its `dcat_rdf` harvester. Both jobs must finish without errors and leave
one dataset per experience with title, description, licence, tags and resources intact.

A peer that cannot start FAILS these tests (it is part of the suite in CI); it runs on its own base and
ports (CKAN_PEER_BASE, default /tmp/ckan-peer-opendata; 5075, 5453, 6400) so as not to meet other tests' peers.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ckanapi
import pytest

from registry.actions import Caller, catalog, experiences
from registry.catalog_queries import license_info
from registry.serialize import dataset_dict
from registry.store import Registry
from tests.helpers import csv_bytes, example
from tests.test_opendata import DEMO_COUNT, HOSTILE, PARIS, LiveServer, serve

pytestmark = pytest.mark.xdist_group("ckan-harvest")

TOOL = Path(__file__).resolve().parents[2] / "shared" / "tools" / "ckan-peer.sh"
ENV = {"CKAN_PEER_HARVEST": "1", "CKAN_PEER_BASE": os.environ.get("REGISTRY_OPENDATA_PEER_BASE",
                                                                  "/tmp/ckan-peer-opendata"),
       "CKAN_PEER_PORT": "5075", "CKAN_PEER_PG_PORT": "5453", "CKAN_PEER_REDIS_PORT": "6400"}
ALL = DEMO_COUNT + 1


def tool(*args: str, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(TOOL), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **ENV})


@pytest.fixture(scope="module")
def peer() -> Iterator[ckanapi.RemoteCKAN]:
    """The peer, ours alone while the tests run: an exclusive lock next to its base keeps out another run of
    these tests (another worker, another session) that would clean it under our feet."""
    assert TOOL.exists(), f"{TOOL} is missing"
    with Path(ENV["CKAN_PEER_BASE"] + ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield _start()
        finally:
            tool("stop", timeout=120)  # no CKAN, Redis or PostgreSQL left running after the tests
            fcntl.flock(lock, fcntl.LOCK_UN)


def _start() -> ckanapi.RemoteCKAN:
    started = tool("start")
    if started.returncode != 0:
        pytest.fail(f"the CKAN peer did not start:\n{started.stdout[-3000:]}\n{started.stderr[-3000:]}")
    values = dict(line.split("=", 1) for line in
                  (Path(ENV["CKAN_PEER_BASE"]) / "ckan-peer.env").read_text(encoding="utf-8").splitlines()
                  if "=" in line)
    ckan = ckanapi.RemoteCKAN(values["CKAN_URL"], apikey=values["CKAN_TOKEN"])
    _clean(ckan)
    return ckan


def _clean(ckan: ckanapi.RemoteCKAN) -> None:
    """Nothing left from an earlier run: harvest sources cleared and purged, then every dataset purged."""
    for source in ckan.action.harvest_source_list():
        with contextlib.suppress(ckanapi.NotFound):
            ckan.action.harvest_source_clear(id=source["id"])
        with contextlib.suppress(ckanapi.NotFound):
            ckan.action.dataset_purge(id=source["id"])
    for name in ckan.action.package_list():
        with contextlib.suppress(ckanapi.NotFound):
            ckan.action.dataset_purge(id=name)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Registry, LiveServer]]:
    yield from serve(None, tmp_path_factory.mktemp("harvested") / "instance")


def _org(ckan: ckanapi.RemoteCKAN, name: str) -> str:
    with contextlib.suppress(ckanapi.CKANAPIError):  # without Solr: an error, but the organisation is saved
        ckan.action.organization_create(name=name)
    return str(next(o for o in ckan.action.organization_list(all_fields=False) if o == name))


def _source(ckan: ckanapi.RemoteCKAN, name: str, url: str, kind: str, org: str) -> None:
    ckan.action.harvest_source_create(name=name, url=url, source_type=kind, owner_org=org, frequency="MANUAL")


def _harvest(name: str) -> str:
    run = tool("harvest", name, timeout=600)
    assert run.returncode == 0, f"harvest {name} failed:\n{run.stdout[-4000:]}\n{run.stderr[-2000:]}"
    assert '"errored": 0' in run.stdout and '"object_errors": []' in run.stdout, run.stdout[-4000:]
    return run.stdout


def _ours(reg: Registry, base: str) -> dict[str, dict[str, Any]]:
    total, views = catalog.packages(reg, Caller.anonymous(), 1000, 0)
    assert total == ALL
    return {v.id: dataset_dict(v, base) for v in views}


def _harvested(ckan: ckanapi.RemoteCKAN, org: str) -> list[dict[str, Any]]:
    found = []
    for name in ckan.action.package_list():
        ds = ckan.action.package_show(id=name)
        if ds.get("type") == "dataset" and ds["organization"] and ds["organization"]["name"] == org:
            found.append(ds)
    return found


def test_a_real_ckan_harvests_the_registry_through_its_ckan_api_and_its_dcat_catalogue(
        peer: ckanapi.RemoteCKAN, live: tuple[Registry, LiveServer]) -> None:
    """One test, so that both harvests share one worker and one peer (pytest 9 ignores xdist_group: the
    suffix pytest-xdist 3.8 writes to `item._nodeid` is no longer read)."""
    dcat_rdf_harvester_walks_every_page_of_the_catalogue(peer, live)
    ckan_harvester_imports_every_experience_then_follows_changes(peer, live)


def ckan_harvester_imports_every_experience_then_follows_changes(peer: ckanapi.RemoteCKAN,
                                                                 live: tuple[Registry, LiveServer]) -> None:
    reg, server = live
    org = _org(peer, "registre-par-api-ckan")
    name = f"registre-api-ckan-{uuid.uuid4().hex[:8]}"  # a name never used before on this peer
    _source(peer, name, server.url + "/", "ckan", org)
    out = _harvest(name)
    assert f'"added": {ALL}' in out, out[-3000:]
    ours = _ours(reg, server.url)
    got = {d["name"]: d for d in _harvested(peer, org)}
    assert set(got) == set(ours)
    for exp_id, mine in ours.items():
        theirs = got[exp_id]
        assert theirs["title"] == mine["title"] and theirs["notes"] == mine["notes"], exp_id
        assert theirs["license_id"] == mine["license_id"] == license_info()[0], exp_id
        assert sorted(t["name"] for t in theirs["tags"]) == sorted(t["name"] for t in mine["tags"]), exp_id
        assert [(r["name"], r["format"], r["url"]) for r in theirs["resources"]] == \
            [(r["name"], r["format"], r["url"]) for r in mine["resources"]], exp_id
    assert got[PARIS]["title"] == HOSTILE["intitule"]  # hostile text arrives as text, not markup

    # the second run asks only for what changed: fq=metadata_modified:[<last run>Z TO *]
    changed = {**example(PARIS), **HOSTILE, "intitule": "Capteurs de qualité de l'air, deuxième version"}
    assert experiences.publish_upload(reg, Caller.operator("upload"), csv_bytes([changed]), "v2.csv").accepted
    out = _harvest(name)
    assert '"updated": 1' in out, out[-3000:]
    assert peer.action.package_show(id=PARIS)["title"] == "Capteurs de qualité de l'air, deuxième version"


def dcat_rdf_harvester_walks_every_page_of_the_catalogue(peer: ckanapi.RemoteCKAN,
                                                        live: tuple[Registry, LiveServer]) -> None:
    reg, server = live
    org = _org(peer, "registre-par-dcat")
    name = f"registre-dcat-{uuid.uuid4().hex[:8]}"
    _source(peer, name, server.url + "/catalog.ttl?page_size=10", "dcat_rdf", org)  # 5 pages
    out = _harvest(name)
    assert f'"added": {ALL}' in out, out[-3000:]
    ours = {f"{d['url']}#dataset": d for d in _ours(reg, server.url).values()}
    got = {next(e["value"] for e in d["extras"] if e["key"] == "uri"): d for d in _harvested(peer, org)}
    assert set(got) == set(ours)
    lic_url = license_info()[2]
    for uri, mine in ours.items():
        theirs = got[uri]
        assert theirs["title"] == mine["title"] and theirs["notes"] == mine["notes"], uri
        assert sorted(t["name"] for t in theirs["tags"]) == sorted(t["name"] for t in mine["tags"]), uri
        assert sorted(r["url"] for r in theirs["resources"]) == sorted(r["url"] for r in mine["resources"]
                                                                      if r["format"] != "HTML"), uri
        # ckanext-dcat keeps the licence URI on every resource; the dataset's license_id is set only when
        # the portal's licence register knows that URI (the peer's default register has no Etalab licence)
        assert {r.get("license") for r in theirs["resources"]} == {lic_url}, uri
        assert theirs["url"] == mine["url"], uri
