"""The DCAT-AP catalogue: pyshacl against the official DCAT-AP 3.0.1 shapes in ../shared/dcat-ap/ (no
violation), the three serialisations and content negotiation, Hydra paging in both shapes harvesters follow,
the properties each dataset must carry, and hostile text that stays text in Turtle, RDF/XML and JSON-LD."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, RDF

from tests.test_opendata import DEMO_COUNT, DEMO_ID, HOSTILE, PARIS, add_hostile, demo_registry

SHAPES = Path(__file__).resolve().parents[2] / "shared" / "dcat-ap" / "3.0.1"
HYDRA = Namespace("http://www.w3.org/ns/hydra/core#")
SH = Namespace("http://www.w3.org/ns/shacl#")
ALL = DEMO_COUNT + 1


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlaskClient]:
    from web.app import create_app

    reg = demo_registry(tmp_path_factory.mktemp("dcat") / "instance")
    add_hostile(reg)
    yield create_app(reg, dev=True).test_client()
    reg.close()


def graph(web: FlaskClient, url: str, fmt: str = "turtle", **headers: str) -> Graph:
    answer = web.get(url, headers=headers)
    assert answer.status_code == 200, (url, answer.status_code)
    return Graph().parse(data=answer.data, format=fmt)


def test_the_catalogue_has_no_violation_of_the_dcat_ap_3_shapes(web: FlaskClient) -> None:
    from pyshacl import validate

    assert SHAPES.is_dir(), f"DCAT-AP shapes missing: {SHAPES}"
    shapes = Graph()
    for name in ("shapes.ttl", "shapes_recommended.ttl", "range.ttl", "deprecateduris.ttl"):
        shapes.parse(SHAPES / name, format="turtle")
    data = graph(web, "/catalog.ttl?page_size=1000")
    conforms, report, text = validate(data, shacl_graph=shapes, inference="none", allow_warnings=True)
    violations = list(report.subjects(SH.resultSeverity, SH.Violation))
    assert conforms and not violations, text[:3000]


def test_each_dataset_carries_what_harvesters_read(web: FlaskClient) -> None:
    g = graph(web, "/catalog.ttl?page_size=1000")
    datasets = list(g.subjects(RDF.type, DCAT.Dataset))
    assert len(datasets) == ALL
    ds = next(d for d in datasets if g.value(d, DCTERMS.identifier) == Literal(DEMO_ID))
    for prop in (DCTERMS.title, DCTERMS.description, DCTERMS.conformsTo, DCTERMS.publisher, DCTERMS.license,
                 DCAT.theme, DCAT.keyword, DCTERMS.spatial, DCTERMS.temporal, DCTERMS.issued, DCTERMS.modified,
                 DCAT.landingPage, DCAT.distribution):
        assert g.value(ds, prop) is not None, prop
    assert g.value(ds, DCTERMS.spatial) == URIRef("http://id.insee.fr/geo/commune/31555")
    dists = list(g.objects(ds, DCAT.distribution))
    assert len(dists) == 3
    for dist in dists:
        assert g.value(dist, DCAT.downloadURL) and g.value(dist, DCAT.mediaType) and g.value(dist, DCTERMS.conformsTo)
    medias = {str(g.value(d, DCAT.mediaType)) for d in dists}
    assert medias == {"http://www.iana.org/assignments/media-types/application/json",
                      "http://www.iana.org/assignments/media-types/text/csv"}


def test_three_serialisations_say_the_same_and_content_negotiation(web: FlaskClient) -> None:
    ttl = graph(web, "/catalog.ttl?page_size=1000")
    jsonld = graph(web, "/catalog.jsonld?page_size=1000", "json-ld")
    rdfxml = graph(web, "/catalog.rdf?page_size=1000", "xml")
    assert len(ttl) == len(jsonld) == len(rdfxml) > 0
    assert set(ttl.subjects(RDF.type, DCAT.Dataset)) == set(rdfxml.subjects(RDF.type, DCAT.Dataset)) \
        == set(jsonld.subjects(RDF.type, DCAT.Dataset))
    for accept, mime in (("text/turtle", "text/turtle"), ("application/ld+json", "application/ld+json"),
                         ("application/rdf+xml", "application/rdf+xml"), ("*/*", "text/turtle"),
                         ("text/html;q=0.9, application/rdf+xml", "application/rdf+xml")):
        answer = web.get("/catalog", headers={"Accept": accept})
        assert answer.status_code == 200 and answer.mimetype == mime, accept
        assert "Accept" in {v.strip() for v in answer.headers["Vary"].split(",")}
    assert web.head("/catalog.ttl").status_code == 200


def test_hydra_paging_in_both_shapes_walks_every_dataset(web: FlaskClient) -> None:
    seen: list[str] = []
    url: str | None = "/catalog.ttl?page_size=10"
    pages = 0
    while url:  # hydra:next on a PartialCollectionView (udata)
        g = graph(web, url.replace("http://localhost", ""))
        seen += [str(s) for s in g.subjects(RDF.type, DCAT.Dataset)]
        views = list(g.subjects(RDF.type, HYDRA.PartialCollectionView))
        assert len(views) == 1
        assert int(g.value(views[0], HYDRA.totalItems)) == ALL
        nxt = g.value(views[0], HYDRA.next)
        old = [g.value(c, HYDRA.nextPage) for c in g.subjects(RDF.type, HYDRA.PagedCollection)]
        assert old == [nxt]  # hydra:nextPage on a PagedCollection (ckanext-dcat) says the same
        url = str(nxt) if nxt else None
        pages += 1
    assert pages == -(-ALL // 10) and len(seen) == len(set(seen)) == ALL
    assert web.get("/catalog.ttl?page=99").status_code == 404
    assert web.get("/catalog.ttl?page=0").status_code == 400
    assert web.get("/catalog.ttl?page_size=5000").status_code == 400
    assert web.get("/catalog.ttl?page=abc").status_code == 400


@pytest.mark.parametrize(("ext", "fmt"), [("ttl", "turtle"), ("rdf", "xml"), ("jsonld", "json-ld")])
def test_hostile_text_stays_text(web: FlaskClient, ext: str, fmt: str) -> None:
    answer = web.get(f"/catalog.{ext}?page_size=1000")
    assert b"\x07" not in answer.data and b"\x1b" not in answer.data
    if ext == "rdf":
        assert b"<script>" not in answer.data
    g = Graph().parse(data=answer.data, format=fmt)
    ds = next(g.subjects(DCTERMS.identifier, Literal(PARIS)))
    assert str(g.value(ds, DCTERMS.title)) == HOSTILE["intitule"]
    assert str(g.value(ds, DCTERMS.description)).startswith("=HYPERLINK")
