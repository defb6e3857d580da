"""DCAT-AP 3.0.1: the catalogue, one dcat:Dataset per experience, as an rdflib graph (Turtle, JSON-LD, RDF/XML).

A page of the catalogue carries Hydra paging in the two shapes harvesters follow: `hydra:next` on a
`hydra:PartialCollectionView` (udata, DCAT-AP) and `hydra:nextPage` on a `hydra:PagedCollection`
(ckanext-dcat), on the page's own URI. Themes are the standard's domains as skos:Concepts of the
standard's own scheme (labels from the schema); formats and media types are the EU and IANA URIs.
Literals go through `clean` (control characters that XML refuses are dropped); rdflib escapes the rest.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF, SKOS, XSD

from registry.catalog_queries import license_info, tags_of
from registry.queries import ExperienceView
from registry.serialize.ckan import clean, urls
from registry.standard import get_standard

HYDRA = Namespace("http://www.w3.org/ns/hydra/core#")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
ADMS = Namespace("http://www.w3.org/ns/adms#")
EU_FILE = "http://publications.europa.eu/resource/authority/file-type/"
EU_LANG = URIRef("http://publications.europa.eu/resource/authority/language/FRA")
EU_FRANCE = URIRef("http://publications.europa.eu/resource/authority/country/FRA")
IANA = "http://www.iana.org/assignments/media-types/"
INSEE_COMMUNE = "http://id.insee.fr/geo/commune/"
THEME_FIELD = "domaine"
FORMATS = {"RDF": ("turtle", "text/turtle"), "JSONLD": ("json-ld", "application/ld+json"),
           "XML": ("xml", "application/rdf+xml")}


@dataclass(frozen=True)
class CatalogPage:
    base: str
    page_url: str  # this page's URL, in the format asked for
    number: int
    size: int
    total: int
    url_of: dict[int, str]  # page number -> URL (first, previous, next, last)


def _lit(text: str | None, lang: str | None = "fr") -> Literal:
    return Literal(clean(text), lang=lang)


def _date(value: str) -> Literal | None:
    try:
        return Literal(dt.date.fromisoformat(value).isoformat(), datatype=XSD.date)
    except ValueError:
        return None


def _stamp(value: dt.datetime) -> Literal:
    return Literal(value.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
                   datatype=XSD.dateTime)


def new_graph() -> Graph:
    g = Graph()
    for prefix, ns in (("dcat", DCAT), ("dct", DCTERMS), ("foaf", FOAF), ("skos", SKOS), ("hydra", HYDRA),
                       ("vcard", VCARD), ("adms", ADMS)):
        g.bind(prefix, ns)
    return g


def _standard_ref(g: Graph) -> URIRef:
    std = get_standard()
    ref = URIRef(std.package["homepage"])
    if (ref, RDF.type, DCTERMS.Standard) in g:  # shared nodes are described once per graph
        return ref
    g.add((ref, RDF.type, DCTERMS.Standard))
    g.add((ref, DCTERMS.title, _lit(std.package["title"])))
    g.add((ref, DCTERMS.identifier, Literal(f"{std.package['name']} {std.version}")))
    return ref


def _license_ref(g: Graph) -> URIRef:
    lic_id, title, url = license_info()
    ref = URIRef(url)
    if (ref, RDF.type, DCTERMS.LicenseDocument) in g:
        return ref
    g.add((ref, RDF.type, DCTERMS.LicenseDocument))
    g.add((ref, DCTERMS.title, _lit(title)))
    g.add((ref, DCTERMS.identifier, Literal(lic_id)))
    return ref


def _theme_scheme(g: Graph, base: str) -> URIRef:
    std = get_standard()
    scheme = URIRef(f"{base.rstrip('/')}/standard/{THEME_FIELD}")
    spec = std.main.by_name[THEME_FIELD]
    g.add((scheme, RDF.type, SKOS.ConceptScheme))
    g.add((scheme, DCTERMS.title, _lit(spec.title)))
    g.add((scheme, SKOS.prefLabel, _lit(spec.title)))
    return scheme


def _theme(g: Graph, base: str, code: str) -> URIRef:
    spec = get_standard().main.by_name[THEME_FIELD]
    scheme = URIRef(f"{base.rstrip('/')}/standard/{THEME_FIELD}")
    ref = URIRef(f"{scheme}/{code}")
    if (ref, RDF.type, SKOS.Concept) in g:
        return ref
    g.add((ref, RDF.type, SKOS.Concept))
    g.add((ref, SKOS.prefLabel, _lit(spec.label(code))))
    if spec.labels_en.get(code):
        g.add((ref, SKOS.prefLabel, _lit(spec.label(code, "en"), "en")))
    g.add((ref, SKOS.inScheme, scheme))
    return ref


def _publisher(g: Graph, base: str, siren: str, name: str) -> URIRef:
    ref = URIRef(f"{base.rstrip('/')}/api/v1/organisations/{siren if siren.isdigit() else 'inconnue'}")
    if (ref, RDF.type, FOAF.Agent) in g:
        return ref
    g.add((ref, RDF.type, FOAF.Agent))
    g.add((ref, FOAF.name, _lit(name)))
    g.add((ref, DCTERMS.identifier, Literal(siren)))
    return ref


def _media(g: Graph, ext: str, mime: str) -> tuple[URIRef, URIRef]:
    fmt, media = URIRef(EU_FILE + ext), URIRef(IANA + mime)
    g.add((fmt, RDF.type, DCTERMS.MediaTypeOrExtent))
    g.add((media, RDF.type, DCTERMS.MediaType))
    return fmt, media


def add_dataset(g: Graph, view: ExperienceView, base: str) -> URIRef:
    """One experience as a dcat:Dataset with its distributions."""
    main = view.main
    u = urls(base, view.id)
    ds = URIRef(u["dataset"])
    g.add((ds, RDF.type, DCAT.Dataset))
    g.add((ds, DCTERMS.identifier, Literal(view.id)))
    g.add((ds, DCTERMS.title, _lit(main.get("intitule"))))
    g.add((ds, DCTERMS.description, _lit(main.get("resume"))))
    standard, licence = _standard_ref(g), _license_ref(g)
    g.add((ds, DCTERMS.conformsTo, standard))
    g.add((ds, DCTERMS.publisher, _publisher(g, base, main.get("siren_porteur", ""), main.get("nom_porteur", ""))))
    g.add((ds, DCTERMS.license, licence))
    g.add((ds, DCTERMS.language, EU_LANG))
    g.add((EU_LANG, RDF.type, DCTERMS.LinguisticSystem))
    if main.get(THEME_FIELD):
        g.add((ds, DCAT.theme, _theme(g, base, main[THEME_FIELD])))
    for tag in tags_of(main):
        g.add((ds, DCAT.keyword, _lit(tag)))
    if view.commune is not None:
        place = URIRef(INSEE_COMMUNE + view.commune.code)
        g.add((place, RDF.type, DCTERMS.Location))
        g.add((place, SKOS.prefLabel, _lit(view.commune.nom)))
        g.add((ds, DCTERMS.spatial, place))
    start, end = _date(main.get("date_debut", "")), _date(main.get("date_fin", ""))
    if start is not None or end is not None:
        period = BNode()
        g.add((period, RDF.type, DCTERMS.PeriodOfTime))
        if start is not None:
            g.add((period, DCAT.startDate, start))
        if end is not None:
            g.add((period, DCAT.endDate, end))
        g.add((ds, DCTERMS.temporal, period))
    g.add((ds, DCTERMS.issued, _stamp(view.created_at)))
    g.add((ds, DCTERMS.modified, _stamp(view.updated_at)))
    g.add((ds, DCAT.landingPage, _page(g, u["page"])))
    g.add((ds, URIRef(str(DCAT) + "version"), Literal(str(view.revision))))
    if main.get("contact_courriel"):
        contact = BNode()
        g.add((contact, RDF.type, VCARD.Kind))
        g.add((contact, VCARD.fn, _lit(main.get("nom_porteur"))))
        g.add((contact, VCARD.hasEmail, URIRef("mailto:" + clean(main["contact_courriel"]).strip())))
        g.add((ds, DCAT.contactPoint, contact))
    for key, title, ext, mime, text in (
            ("json", "Fiche complète (JSON)", "JSON", "application/json",
             "L'expérience et ses tables filles, avec ce que le registre en dérive."),
            ("csv", "Fiche au format du standard (CSV)", "CSV", "text/csv",
             "La ligne de l'expérience dans la table « experiences » du standard."),
            ("datapackage", "Data Package de l'expérience (toutes les tables)", "JSON", "application/json",
             "Les lignes de l'expérience dans chaque table du standard, décrites par son datapackage.json.")):
        dist = URIRef(f"{u['dataset'].split('#')[0]}#{key}")
        fmt, media = _media(g, ext, mime)
        g.add((dist, RDF.type, DCAT.Distribution))
        g.add((dist, DCTERMS.title, _lit(title)))
        g.add((dist, DCTERMS.description, _lit(text)))
        g.add((dist, DCAT.accessURL, URIRef(u[key])))
        g.add((dist, DCAT.downloadURL, URIRef(u[key])))
        g.add((dist, DCAT.mediaType, media))
        g.add((dist, DCTERMS.format, fmt))
        g.add((dist, DCTERMS.conformsTo, standard))
        g.add((dist, DCTERMS.license, licence))
        g.add((dist, DCTERMS.modified, _stamp(view.updated_at)))
        g.add((ds, DCAT.distribution, dist))
    return ds


def _page(g: Graph, url: str) -> URIRef:
    ref = URIRef(url)
    g.add((ref, RDF.type, FOAF.Document))
    return ref


def catalog_graph(views: Iterable[ExperienceView], page: CatalogPage) -> Graph:
    """One page of the catalogue: the catalogue itself, this page's datasets, and Hydra paging."""
    std = get_standard()
    g = new_graph()
    base = page.base.rstrip("/")
    cat = URIRef(f"{base}/catalog")
    g.add((cat, RDF.type, DCAT.Catalog))
    g.add((cat, DCTERMS.title, _lit("Registre des retours d'expérience des territoires connectés")))
    g.add((cat, DCTERMS.description, _lit(std.package.get("description", ""))))
    g.add((cat, FOAF.homepage, _page(g, f"{base}/")))
    g.add((cat, DCTERMS.language, EU_LANG))
    g.add((cat, DCTERMS.license, _license_ref(g)))
    g.add((cat, DCTERMS.spatial, EU_FRANCE))
    g.add((EU_FRANCE, RDF.type, DCTERMS.Location))
    g.add((cat, DCAT.themeTaxonomy, _theme_scheme(g, base)))
    publisher = URIRef(f"{base}/#registre")
    g.add((publisher, RDF.type, FOAF.Agent))
    g.add((publisher, FOAF.name, _lit(std.package["contributors"][0]["title"])))
    g.add((cat, DCTERMS.publisher, publisher))
    for view in views:
        g.add((cat, DCAT.dataset, add_dataset(g, view, base)))
    _hydra(g, page)
    return g


def _hydra(g: Graph, page: CatalogPage) -> None:
    ref = URIRef(page.page_url)
    last = max(1, -(-page.total // page.size)) if page.size else 1
    g.add((ref, RDF.type, HYDRA.PartialCollectionView))
    g.add((ref, RDF.type, HYDRA.PagedCollection))
    g.add((ref, HYDRA.totalItems, Literal(page.total, datatype=XSD.integer)))
    g.add((ref, HYDRA.itemsPerPage, Literal(page.size, datatype=XSD.integer)))
    links = {"first": 1, "last": last}
    if page.number > 1:
        links["previous"] = page.number - 1
    if page.number < last:
        links["next"] = page.number + 1
    old = {"first": "firstPage", "last": "lastPage", "previous": "previousPage", "next": "nextPage"}
    for name, number in links.items():
        target = URIRef(page.url_of[number])
        g.add((ref, HYDRA[name], target))
        g.add((ref, HYDRA[old[name]], target))


def dataset_graph(view: ExperienceView, base: str) -> Graph:
    g = new_graph()
    add_dataset(g, view, base)
    return g


def serialize(g: Graph, fmt: str) -> bytes:
    """`turtle`, `json-ld` or `xml`."""
    data = g.serialize(format=fmt, encoding="utf-8")
    return data if isinstance(data, bytes) else data.encode("utf-8")
