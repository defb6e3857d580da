"""The CKAN Action API driven by the real `ckanapi.RemoteCKAN` client against a running server on 127.0.0.1:
every action and parameter harvesters and portals use, CKAN's envelope and HTTP codes, hostile content.
The query language on SQL is also run on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import ckanapi
import pytest

from registry.actions import Caller, catalog, experiences
from registry.actions.catalog import CatalogError, SearchRequest
from registry.store import Registry
from tests.helpers import csv_bytes, example, example_rows
from tests.test_opendata import DEMO_COUNT, DEMO_ID, HOSTILE, PARIS, LiveServer, serve

ALL = DEMO_COUNT + 1


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Registry, LiveServer]]:
    yield from serve(None, tmp_path_factory.mktemp("ckan") / "instance")


@pytest.fixture(scope="module")
def ckan(live: tuple[Registry, LiveServer]) -> ckanapi.RemoteCKAN:
    return ckanapi.RemoteCKAN(live[1].url, user_agent="registre-tests/1.0")


@pytest.fixture(scope="module")
def ckan_get(live: tuple[Registry, LiveServer]) -> ckanapi.RemoteCKAN:
    return ckanapi.RemoteCKAN(live[1].url, user_agent="registre-tests/1.0", get_only=True)


def raw(url: str, data: bytes | None = None, method: str | None = None,
        headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_status_lists_and_licences(ckan: ckanapi.RemoteCKAN) -> None:
    assert ckan.action.status_show()["ckan_version"].startswith("2.")
    names = ckan.action.package_list()
    assert len(names) == ALL and names == sorted(names)
    assert ckan.action.package_list(limit=5, offset=5) == names[5:10]
    assert ckan.action.package_list(limit=5, offset=1000) == []
    licences = ckan.action.license_list()
    assert licences[0]["id"] == "etalab-2.0" and "Licence Ouverte" in licences[0]["title"]
    tags = ckan.action.tag_list()
    assert "Capteurs et objets connectés IoT" in tags and tags == sorted(tags)
    assert ckan.action.tag_list(query="capteurs") == ["Capteurs et objets connectés IoT"]


def test_package_show_is_a_complete_ckan_dataset(ckan: ckanapi.RemoteCKAN, ckan_get: ckanapi.RemoteCKAN) -> None:
    for client in (ckan, ckan_get):
        ds = client.action.package_show(id=DEMO_ID)
        assert ds["id"] == ds["name"] == DEMO_ID and ds["type"] == "dataset" and ds["private"] is False
        assert ds["license_id"] == "etalab-2.0" and ds["license_title"] and ds["state"] == "active"
        assert ds["organization"]["type"] == "organization" and ds["organization"]["approval_status"] == "approved"
        assert ds["owner_org"] == ds["organization"]["id"] == DEMO_ID[:9]
        for key in ("title", "notes", "metadata_created", "metadata_modified", "author", "maintainer", "extras"):
            assert ds[key], key
        dt.datetime.fromisoformat(ds["metadata_modified"])
        assert {t["name"] for t in ds["tags"]} and all(t["name"].replace(" ", "").replace("-", "").replace(".", "")
                                                       .replace("_", "").isalnum() for t in ds["tags"])
        formats = [r["format"] for r in ds["resources"]]
        assert formats == ["JSON", "CSV", "JSON", "HTML"]
        for res in ds["resources"]:
            for key in ("id", "name", "description", "format", "mimetype", "url", "created", "last_modified"):
                assert res[key], key
            assert res["schema"]["name"] == "rex-territoires-connectes"
    with pytest.raises(ckanapi.NotFound):
        ckan.action.package_show(id="000000000-0000-000")
    with pytest.raises(ckanapi.ValidationError):
        ckan.action.package_show()


def test_resources_resolve(live: tuple[Registry, LiveServer], ckan: ckanapi.RemoteCKAN) -> None:
    ds = ckan.action.package_show(id=DEMO_ID)
    for res in ds["resources"]:
        assert res["url"].startswith(live[1].url)
        with urllib.request.urlopen(res["url"], timeout=30) as resp:
            assert resp.status == 200 and resp.headers.get_content_type() == res["mimetype"], res["url"]


def ids(result: dict[str, Any]) -> set[str]:
    return {d["id"] for d in result["results"]}


def test_package_search_query_language(ckan: ckanapi.RemoteCKAN, ckan_get: ckanapi.RemoteCKAN) -> None:
    s = ckan.action.package_search
    everything = s(rows=1000)
    assert everything["count"] == ALL and len(everything["results"]) == ALL
    assert all(d["resources"] and d["organization"] for d in everything["results"])  # complete datasets
    assert s(q="*:*", rows=0)["count"] == ALL
    lyon = s(q="organization:242900074")
    assert lyon["count"] >= 1 and all(d["owner_org"] == "242900074" for d in lyon["results"])
    both = s(fq="organization:242900074 OR organization:213105554", rows=100)
    assert {d["owner_org"] for d in both["results"]} == {"242900074", "213105554"}
    assert s(fq="organization:(242900074 OR 213105554)")["count"] == both["count"]
    assert s(fq="-organization:242900074", rows=0)["count"] == ALL - lyon["count"]
    assert s(q="-organization:242900074 NOT organization:213105554", rows=0)["count"] == ALL - both["count"]
    iot = s(q='tags:"Capteurs et objets connectés IoT"', rows=100)
    assert 0 < iot["count"] < ALL
    assert all("Capteurs et objets connectés IoT" in {t["name"] for t in d["tags"]} for d in iot["results"])
    assert s(q='-tags:"Capteurs et objets connectés IoT"', rows=0)["count"] == ALL - iot["count"]
    assert s(q="res_format:CSV", rows=0)["count"] == ALL and s(q="res_format:SHP", rows=0)["count"] == 0
    assert s(q="-res_format:SHP", rows=0)["count"] == ALL
    words = s(q="stationnement", rows=100)
    assert 0 < words["count"] < ALL
    assert s(q="stationnement capteurs", rows=0)["count"] <= words["count"]
    assert s(q="-stationnement", rows=0)["count"] == ALL - words["count"]
    assert s(q="stationnement organization:242900074", rows=0)["count"] <= lyon["count"]
    assert s(fq="+dataset_type:dataset", rows=0)["count"] == ALL
    assert s(fq="dataset_type:harvest", rows=0)["count"] == 0
    assert s(q=f"name:{DEMO_ID}")["results"][0]["id"] == DEMO_ID
    assert ckan_get.action.package_search(q="organization:242900074")["count"] == lyon["count"]


def test_package_search_paging_sorting_and_dates(live: tuple[Registry, LiveServer], ckan: ckanapi.RemoteCKAN) -> None:
    s = ckan.action.package_search
    by_name = [d["name"] for d in s(rows=1000, sort="name asc")["results"]]
    assert by_name == sorted(by_name) and len(by_name) == ALL
    assert [d["name"] for d in s(rows=1000, sort="name desc")["results"]] == by_name[::-1]
    paged: list[str] = []
    start = 0
    while True:  # the way ckanext-harvest's ckan harvester pages
        page = s(rows=10, start=start, sort="id asc")["results"]
        if not page:
            break
        paged += [d["id"] for d in page]
        start += 10
    assert paged == by_name
    assert s(rows=10, start=ALL + 5)["results"] == []
    modified = [d["metadata_modified"] for d in s(rows=1000, sort="metadata_modified desc")["results"]]
    assert modified == sorted(modified, reverse=True)
    assert s(rows=5, sort="score desc, metadata_modified desc")["count"] == ALL
    newest = modified[0]
    assert s(fq=f"metadata_modified:[{newest}Z TO *]", rows=0)["count"] >= 1
    later = (dt.datetime.fromisoformat(newest) + dt.timedelta(microseconds=1)).isoformat(timespec="microseconds")
    assert s(fq=f"metadata_modified:[{later}Z TO *]", rows=0)["count"] == 0
    assert s(fq=f"metadata_modified:[* TO {later}Z]", rows=0)["count"] == ALL
    assert len(s(rows=5000)["results"]) == ALL  # capped at 1000, silently, as CKAN does
    assert s(rows=0, start=0)["results"] == []


def test_package_search_facets(ckan: ckanapi.RemoteCKAN, ckan_get: ckanapi.RemoteCKAN) -> None:
    for client in (ckan, ckan_get):
        r = client.action.package_search(rows=0, **{"facet.field": json.dumps(["organization", "tags", "res_format",
                                                                                 "license_id"]), "facet.limit": 5})
        assert set(r["facets"]) == set(r["search_facets"]) == {"organization", "tags", "res_format", "license_id"}
        assert len(r["search_facets"]["tags"]["items"]) == 5
        assert r["facets"]["res_format"] == {"JSON": ALL, "CSV": ALL, "HTML": ALL}
        item = r["search_facets"]["organization"]["items"][0]
        assert set(item) == {"name", "display_name", "count"} and item["count"] >= 1
    assert ckan.action.package_search(rows=0)["facets"] == {}


def test_organisations(ckan: ckanapi.RemoteCKAN) -> None:
    names = ckan.action.organization_list()
    assert "242900074" in names and len(names) == len(set(names))
    full = ckan.action.organization_list(all_fields=True)
    assert {o["name"] for o in full} == set(names)
    lyon = next(o for o in full if o["name"] == "242900074")
    assert lyon["title"] == "Communauté de communes du Pays d'Iroise" and lyon["type"] == "organization"
    assert lyon["package_count"] >= 1
    shown = ckan.action.organization_show(id="242900074", include_datasets=True)
    assert shown["package_count"] == len(shown["packages"]) >= 1
    with pytest.raises(ckanapi.NotFound):
        ckan.action.organization_show(id="999999999")
    with_resources = ckan.action.current_package_list_with_resources(limit=3, offset=1)
    assert len(with_resources) == 3 and all(d["resources"] for d in with_resources)


@pytest.mark.parametrize("params", [{"q": "((("}, {"q": "tags:"}, {"fq": "metadata_modified:[yesterday TO *]"},
                                    {"sort": "nope asc"}, {"sort": "name sideways"}, {"rows": "abc"}, {"rows": -1},
                                    {"start": "-3"}, {"q": "OR"}, {"fq": "organization:a OR tags:b"},
                                    {"q": "unknownfield:x"}, {"facet.field": '["nope"]'}, {"q": '"unclosed'},
                                    {"fq": "metadata_modified:[2020 TO"}, {"facet.field": "{"}])
def test_malformed_search_parameters_are_ckan_validation_errors(ckan: ckanapi.RemoteCKAN,
                                                                params: dict[str, Any]) -> None:
    with pytest.raises(ckanapi.ValidationError):
        ckan.action.package_search(**params)


def test_envelope_and_http_codes(live: tuple[Registry, LiveServer]) -> None:
    url = live[1].url
    for prefix in ("/api/3/action", "/api/action"):
        status, body = raw(f"{url}{prefix}/package_show?id={DEMO_ID}")
        assert status == 200 and body["success"] is True and body["help"].endswith("name=package_show")
    status, body = raw(f"{url}/api/3/action/package_show?id=nope")
    assert status == 404 and body["success"] is False and body["error"]["__type"] == "Not Found Error"
    status, body = raw(f"{url}/api/3/action/no_such_action")
    assert status == 400 and body["error"]["__type"] == "Bad Request" and "Action name not known" in \
        body["error"]["message"]
    status, body = raw(f"{url}/api/3/action/package_search", data=b"{not json", method="POST",
                       headers={"Content-Type": "application/json"})
    assert status == 400 and "JSON" in body["error"]["message"]
    status, body = raw(f"{url}/api/3/action/package_search", data=b"[1, 2]", method="POST",
                       headers={"Content-Type": "application/json"})
    assert status == 400 and body["success"] is False
    status, body = raw(f"{url}/api/3/action/package_search", data=b"rows=2", method="POST",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200 and len(body["result"]["results"]) == 2
    status, body = raw(f"{url}/api/3/action/package_search", data=b"\xff\xfe", method="POST",
                       headers={"Content-Type": "text/plain"})
    assert status == 400 and body["success"] is False
    status, body = raw(f"{url}/api/3/action/package_list", data=b"{}", method="PUT")
    assert status == 405 and body["success"] is False
    status, body = raw(f"{url}/api/3/action/package_search?q=%00%01<script>")
    assert status == 200 and [d["id"] for d in body["result"]["results"]] == [PARIS]
    status, body = raw(f"{url}/api/3/action/package_search?rows=99999999999999999999")
    assert status == 409 and body["error"]["__type"] == "Validation Error"


def test_hostile_content_is_data_in_json(ckan: ckanapi.RemoteCKAN) -> None:
    ds = ckan.action.package_show(id=PARIS)
    assert ds["title"] == HOSTILE["intitule"]  # JSON carries it as text; pages escape it when they show it
    assert "\x07" not in ds["notes"] and "\x1b" not in ds["notes"] and ds["notes"].startswith("=HYPERLINK")


def test_the_query_language_on_both_backends(registry: Registry) -> None:
    rows = example_rows("experiences")[:2]
    assert experiences.publish_upload(registry, Caller.operator(), csv_bytes(rows), "two.csv").accepted
    anon = Caller.anonymous()
    first, second = rows[0]["id_experience"], rows[1]["id_experience"]

    def count(**kw: Any) -> int:
        return catalog.package_search(registry, anon, SearchRequest(**kw)).count

    assert count() == 2
    assert count(q=f"organization:{first[:9]}") == 1 and count(fq=f"-organization:{first[:9]}") == 1
    assert count(q=f"organization:{first[:9]} OR organization:{second[:9]}") == 2
    tags = catalog.package_show(registry, anon, first)
    from registry.catalog_queries import tags_of

    tag = tags_of(tags.main)[-1]
    assert count(q=f'tags:"{tag}"') >= 1 and count(q=f'-tags:"{tag}"') <= 1
    assert count(q="capteurs") >= 1 and count(q="%") == 0 and count(q="_") == 0
    assert count(fq="metadata_modified:[2000-01-01T00:00:00.000001Z TO *]") == 2
    assert count(fq="metadata_modified:[2999-01-01T00:00:00Z TO *]") == 0
    found = catalog.package_search(registry, anon, SearchRequest(rows=1, start=1, sort="name desc",
                                                                 facet_fields=("tags", "organization")))
    assert [v.id for v in found.views] == sorted([first, second])[:1] and found.facets["organization"]
    with pytest.raises(CatalogError):
        count(q="x\x00y OR")
    assert count(q="\x00") == 2
    assert experiences.publish_upload(registry, Caller.operator(), csv_bytes([{**example(first), "intitule": "Autre"}]),
                                      "v2.csv").accepted

