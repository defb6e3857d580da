"""The CKAN harvester against a CKAN-compatible fault server of our own on 127.0.0.1 (harvesters/testing.py):
paging, search fallback, every download fault, the private-network rule, identity, deletions, conflicts."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import urllib3.util.connection

from harvesters import net
from harvesters.net import HarvestFetchError, NetworkRefused, Options, check_url
from harvesters.run import run_source
from harvesters.testing import FaultPortal, File, experience_id, experiences_csv
from registry.actions import Caller, Forbidden, Role, experiences
from registry.actions import harvest as actions
from registry.queries import NotFound
from registry.store import Registry

OP = Caller.operator("cli")
FAST = Options(connect_timeout=2, read_timeout=1, total_timeout=4, retries=1, backoff=0.01, page_size=100)
LOOPBACK = ("127.0.0.1", "::1")


@pytest.fixture
def portal() -> Iterator[FaultPortal]:
    p = FaultPortal(stall_seconds=2.5)
    yield p
    p.stop()


@pytest.fixture
def only_loopback(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every connection the HTTP stack opens is recorded; one to anything but loopback fails the test."""
    seen: list[str] = []
    real = urllib3.util.connection.create_connection

    def guarded(address, *args, **kwargs):
        seen.append(address[0])
        if address[0] not in LOOPBACK:
            raise AssertionError(f"connection attempted to {address[0]}")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", guarded)
    monkeypatch.setattr("urllib3.connection.connection.create_connection", guarded)
    return seen


def status(reg: Registry, n: int) -> str | None:
    try:
        return experiences.get(reg, OP, experience_id(n)).status
    except NotFound:
        return None


def items_by_name(reg: Registry, job_id: int) -> dict[str, actions.ItemView]:
    return {i.dataset_name or i.dataset_id or "": i for i in actions.get_job(reg, OP, job_id).items}


def test_private_addresses_refused_before_any_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_socket(*args, **kwargs):
        raise AssertionError("a socket was opened")

    monkeypatch.setattr(socket, "create_connection", no_socket)
    monkeypatch.setattr(urllib3.util.connection, "create_connection", no_socket)
    stub = Options(resolver=lambda host, port: {"intranet.example": ["10.20.30.40"],
                                                 "mixte.example": ["93.184.216.34", "169.254.169.254"],
                                                 "v6.example": ["fd00::1"]}[host])
    for url in ("http://intranet.example/rex.csv", "http://mixte.example/", "http://v6.example/x",
                "http://127.0.0.1:9/", "http://[::1]/", "http://[::ffff:10.0.0.1]/", "http://0.0.0.0/",
                "http://224.0.0.1/"):
        with pytest.raises(NetworkRefused, match="réseau privé ou local"):
            check_url(url, stub)
    with pytest.raises(HarvestFetchError, match="http:// et https://"):
        check_url("file:///etc/passwd", stub)
    session = net.GuardedSession(stub)
    with pytest.raises(NetworkRefused):
        session.get("http://intranet.example/rex.csv")
    check_url("http://10.0.0.1/", Options(allow_private_network=True))  # the source's choice


def test_the_checked_address_is_the_one_connected_to(portal: FaultPortal, only_loopback: list[str],
                                                     monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """DNS rebinding: the rule's resolver answers 127.0.0.1 (allowed here), the system's DNS would answer a
    private address at connection time; the connection goes to the checked address, the name is never
    resolved again, and nothing but 127.0.0.1 is connected to."""
    portal.files["/rex.csv"] = net_file = File(experiences_csv([1]))
    real = socket.getaddrinfo
    second_answers: list[str] = []

    def rebinding_dns(host, *args, **kwargs):
        if host == "rebind.invalid":
            second_answers.append(host)
            return real("10.20.30.40", *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_dns)
    checked: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        checked.append(host)
        return ["127.0.0.1"]

    options = Options(connect_timeout=2, read_timeout=2, retries=0, resolver=resolver,
                      allowed_addresses=frozenset({"127.0.0.1"}))
    session = net.GuardedSession(options)
    port = portal.server.server_address[1]
    got = net.download(session, f"http://rebind.invalid:{port}/rex.csv", tmp_path / "rex.csv")
    assert got.path.read_bytes() == net_file.body and checked == ["rebind.invalid"]
    assert second_answers == [] and set(only_loopback) == {"127.0.0.1"}
    assert net_file.hits == 1
    # a host the rule never checked is not connected to, even through the pinned pool
    with pytest.raises(NetworkRefused, match="vérifiée"):
        session.get_adapter("http://x").send(
            session.prepare_request(requests.Request("GET", f"http://other.invalid:{port}/")),
            timeout=2)


def test_a_private_portal_is_refused_without_a_request(sqlite_registry: Registry, portal: FaultPortal) -> None:
    portal.add_dataset("a", [("rex.csv", experiences_csv([1]))])
    actions.add_source(sqlite_registry, OP, "prive", portal.url)
    job = run_source(sqlite_registry, OP, "prive", options=FAST)
    assert job.status == "failed" and "--allow-private-network" in (job.message or "")
    assert portal.requests == []


def test_paging_past_1000_with_a_capped_page_size(sqlite_registry: Registry, portal: FaultPortal) -> None:
    portal.rows_cap = 70  # asks for 100, gets 70: start advances by what came, nothing is lost
    for n in range(1, 1051):
        portal.add_dataset(f"jeu-{n:04d}", [("rex.csv", experiences_csv([n]))] if n % 350 == 0 else [])
    actions.add_source(sqlite_registry, OP, "grand", portal.url, allow_private_network=True)
    job = run_source(sqlite_registry, OP, "grand", options=FAST)
    assert job.status == "done", job.message
    items = actions.get_job(sqlite_registry, OP, job.id).items
    assert len({i.dataset_id for i in items}) == 1050
    assert job.counts["new"] == 3
    searches = [r for r in portal.requests if r.endswith("package_search")]
    assert len(searches) == 15  # 1050 / 70, stopped at count


def test_a_page_repeated_forever_stops_and_infers_no_withdrawal(sqlite_registry: Registry,
                                                                 portal: FaultPortal) -> None:
    portal.add_dataset("a", [("rex.csv", experiences_csv([1]))])
    portal.add_dataset("b", [("rex.csv", experiences_csv([2]))])
    actions.add_source(sqlite_registry, OP, "boucle", portal.url, allow_private_network=True)
    assert run_source(sqlite_registry, OP, "boucle", options=FAST).counts["new"] == 2
    portal.search = "repeat"
    portal.datasets.pop("id-b")
    job = run_source(sqlite_registry, OP, "boucle", full=True, options=FAST)
    assert job.status == "done" and "page déjà vue" in (job.message or "") and "aucun retrait" in job.message
    assert len([r for r in portal.requests if r.endswith("package_search")]) == 1 + 2
    assert status(sqlite_registry, 2) == "published"


def test_search_down_falls_back_to_package_list_and_show(sqlite_registry: Registry, portal: FaultPortal) -> None:
    portal.search = "down"
    portal.add_dataset("a", [("rex.csv", experiences_csv([1, 2]))])
    actions.add_source(sqlite_registry, OP, "sans-solr", portal.url, allow_private_network=True)
    job = run_source(sqlite_registry, OP, "sans-solr", options=FAST)
    assert job.status == "done" and "package_list" in (job.message or "")
    assert job.counts["new"] == 2
    assert "/api/action/package_show" in portal.requests


def test_every_fault_is_one_item_and_the_others_are_published(sqlite_registry: Registry, portal: FaultPortal,
                                                              only_loopback: list[str]) -> None:
    good = experiences_csv
    portal.add_dataset("ok", [("rex.csv", good([1, 2]))], schema=True)
    portal.add_dataset("erreur-500", [("rex.csv", good([3]))], fault="500")
    portal.add_dataset("erreur-500-une-fois", [("rex.csv", good([4]))], fault="500-once")
    portal.add_dataset("bloque", [("rex.csv", good([5]))], fault="stall")
    portal.add_dataset("tronque", [("rex.csv", good([6]))], fault="truncated")
    portal.add_dataset("lent", [("rex.csv", good([7]))], fault="slow")
    portal.add_dataset("boucle", [("rex.csv", good([8]))], fault="redirect-loop")
    portal.add_dataset("html", [("rex.csv", b"<!DOCTYPE html><html><body>Connexion</body></html>")])
    portal.files["/files/html/rex.csv"].content_type = "text/html"
    portal.add_dataset("enorme", [("rex.csv", good(list(range(10, 60))))])
    portal.add_dataset("windows", [("rex.csv", good([9], delimiter=";", encoding="cp1252"))])
    portal.add_dataset("autre-schema", [("budget.csv", b"annee,montant\n2024,12\n")])
    portal.add_dataset("sans-ressource")
    portal.add_dataset("en-partie", [("rex.csv", good([60, 61, 62], broken={61}))], schema=True)
    d = portal.add_dataset("intranet")
    d["resources"] = [{"id": "r", "url": "http://intranet.example/rex.csv", "format": "CSV",
                       "schema": "rex-territoires-connectes"}]
    options = Options(connect_timeout=2, read_timeout=1, total_timeout=4, retries=1, backoff=0.01,
                      max_bytes=20_000, allowed_addresses=frozenset({"127.0.0.1"}),
                      resolver=lambda host, port: ["10.20.30.40"])
    actions.add_source(sqlite_registry, OP, "pannes", portal.url)
    job = run_source(sqlite_registry, OP, "pannes", options=options)
    assert job.status == "done", job.message
    items = items_by_name(sqlite_registry, job.id)
    text = {k: " ".join(m["message"] for m in v.messages) for k, v in items.items()}
    assert items["ok"].status == "new" and items["windows"].status == "new"
    assert items["erreur-500-une-fois"].status == "new"  # retried after the 500
    assert portal.files["/files/erreur-500/rex.csv"].hits == 2  # one retry, then given up
    assert "erreur 500" in text["erreur-500"]
    assert "Délai de réponse dépassé" in text["bloque"] and "Délai de réponse dépassé" in text["lent"]
    assert "incomplet" in text["tronque"]
    assert "redirections" in text["boucle"]
    assert "page HTML" in text["html"]
    assert "trop volumineux" in text["enorme"]
    assert items["autre-schema"].status == "ignored" and "autre schéma" in text["autre-schema"]
    assert items["sans-ressource"].status == "ignored" and "aucune ressource" in text["sans-ressource"]
    assert items["intranet"].status == "failed" and "10.20.30.40" in text["intranet"]
    partial = items["en-partie"]
    assert partial.status == "invalid" and partial.counts["new"] == 2 and partial.counts["invalid"] == 1
    bad = [m for m in partial.messages if m.get("experience") == experience_id(61)]
    assert bad and bad[0]["code"] == "enum-mismatch" and bad[0]["field"] == "domaine" and bad[0]["row"] == 3
    assert [status(sqlite_registry, n) for n in (1, 2, 4, 9, 60, 61, 62)] == \
        ["published", "published", "published", "published", "published", None, "published"]
    assert [status(sqlite_registry, n) for n in (3, 5, 6, 7, 8)] == [None] * 5
    assert job.counts == {"new": 6, "updated": 0, "unchanged": 0, "withdrawn": 0, "invalid": 1 + 0, "failed": 8}
    assert set(only_loopback) == {"127.0.0.1"}
    assert not any(a.status == "running" for a in actions.list_jobs(sqlite_registry, OP))


def test_deletions_only_after_a_full_run_and_records_come_back(registry: Registry, portal: FaultPortal) -> None:
    portal.add_dataset("a", [("rex.csv", experiences_csv([1, 2]))])
    portal.add_dataset("b", [("rex.csv", experiences_csv([3]))])
    actions.add_source(registry, OP, "p", portal.url, allow_private_network=True)
    assert run_source(registry, OP, "p", options=FAST).counts["new"] == 3
    # a row disappears, a dataset disappears, a dataset is renamed: incremental runs withdraw nothing
    portal.files["/files/a/rex.csv"].body = experiences_csv([1])
    portal.touch("id-a")
    del portal.datasets["id-b"]
    job = run_source(registry, OP, "p", options=FAST)
    assert job.counts["withdrawn"] == 0 and status(registry, 2) == "published"
    portal.datasets["id-a"]["name"] = portal.datasets["id-a"]["title"] = "a-renomme"
    job = run_source(registry, OP, "p", full=True, options=FAST)
    assert job.counts["withdrawn"] == 2 and job.counts["new"] == 0
    assert [status(registry, n) for n in (1, 2, 3)] == ["published", "withdrawn", "withdrawn"]
    view = experiences.get(registry, OP, experience_id(3))
    assert "moissonnage" in (view.withdrawn_reason or "") and "n'existe plus" in view.withdrawn_reason
    # published again: it comes back, with the same id (no duplicate)
    portal.add_dataset("b", [("rex.csv", experiences_csv([3]))])
    job = run_source(registry, OP, "p", full=True, options=FAST)
    assert job.counts["updated"] == 1 and status(registry, 3) == "published"
    assert [r.action for r in experiences.history(registry, OP, experience_id(3))] == ["create", "withdraw",
                                                                                       "restore"]
    assert len(experiences.history(registry, OP, experience_id(1))) == 1  # the rename made no new revision
    job = run_source(registry, OP, "p", full=True, options=FAST)
    assert job.counts == {"new": 0, "updated": 0, "unchanged": 2, "withdrawn": 0, "invalid": 0, "failed": 0}


def test_two_sources_one_id_the_first_keeps_it_and_both_jobs_say_so(sqlite_registry: Registry,
                                                                      portal: FaultPortal) -> None:
    reg = sqlite_registry
    portal.add_dataset("a", [("rex.csv", experiences_csv([1]))])
    other = FaultPortal()
    try:
        other.add_dataset("copie", [("rex.csv", experiences_csv([1], change={"intitule": "Copie"}))])
        actions.add_source(reg, OP, "premier", portal.url, allow_private_network=True)
        actions.add_source(reg, OP, "second", other.url, allow_private_network=True)
        first = run_source(reg, OP, "premier", options=FAST)
        second = run_source(reg, OP, "second", options=FAST)
    finally:
        other.stop()
    assert first.counts["new"] == 1 and second.counts["new"] == 0
    assert "Copie" not in experiences.get(reg, OP, experience_id(1)).record["experiences"]["intitule"]
    mine = actions.get_job(reg, OP, second.id).items
    theirs = actions.get_job(reg, OP, first.id).items
    assert mine[0].status == "conflict" and "premier" in mine[0].messages[0]["message"]
    assert any(i.status == "conflict" and "second" in i.messages[0]["message"] for i in theirs)


def test_a_source_publishes_only_for_its_organisations(sqlite_registry: Registry, portal: FaultPortal) -> None:
    portal.add_dataset("a", [("rex.csv", experiences_csv([1]))])
    actions.add_source(sqlite_registry, OP, "limitee", portal.url, organisations=["213105554"],
                       allow_private_network=True)
    job = run_source(sqlite_registry, OP, "limitee", options=FAST)
    item = actions.get_job(sqlite_registry, OP, job.id).items[0]
    assert item.status == "invalid" and "217500016" in item.messages[0]["message"]
    assert status(sqlite_registry, 1) is None


def test_only_the_operator_manages_sources(sqlite_registry: Registry) -> None:
    publisher = Caller("api", "agent", frozenset({Role.PUBLISHER}), frozenset({"217500016"}))
    with pytest.raises(Forbidden, match="exploitant"):
        actions.add_source(sqlite_registry, publisher, "x", "https://example.org/")
    with pytest.raises(Forbidden):
        actions.list_jobs(sqlite_registry, publisher)
    with pytest.raises(actions.HarvestError, match="Nom de source invalide"):
        actions.add_source(sqlite_registry, OP, "Avec Espace", "https://example.org/")


def test_url_source_skips_unchanged_content(sqlite_registry: Registry, portal: FaultPortal) -> None:
    reg = sqlite_registry
    portal.add_dataset("f", [("rex.csv", experiences_csv([1, 2]))])
    f = portal.files["/files/f/rex.csv"]
    f.etag = '"v1"'
    actions.add_source(reg, OP, "fichier", portal.url + "/files/f/rex.csv", type="url", allow_private_network=True)
    assert run_source(reg, OP, "fichier", options=FAST).counts["new"] == 2
    job = run_source(reg, OP, "fichier", options=FAST)
    assert job.counts["unchanged"] == 2 and "ETag" in actions.get_job(reg, OP, job.id).items[0].messages[0]["message"]
    f.etag = '"v2"'  # a new ETag, the same bytes: not validated again
    job = run_source(reg, OP, "fichier", options=FAST)
    assert "empreinte" in actions.get_job(reg, OP, job.id).items[0].messages[0]["message"]
    f.body, f.etag = experiences_csv([1, 2], change={"intitule": "Nouveau titre"}), '"v3"'
    assert run_source(reg, OP, "fichier", options=FAST).counts["updated"] == 2
    f.fault = "500"
    job = run_source(reg, OP, "fichier", options=FAST)
    assert job.status == "failed" and "500" in (job.message or "")
