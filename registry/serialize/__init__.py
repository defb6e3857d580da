"""One function per output shape, each fed by the same typed read views (registry.queries)."""

from registry.serialize.atom import atom_entry, atom_feed, sitemap_index, sitemap_xml
from registry.serialize.ckan import ckan_time, clean, dataset_dict, license_dict, organization_dict, urls
from registry.serialize.datapackage import (
    TableWriter,
    csv_line,
    experience_csv,
    experience_package,
    package_descriptor,
)
from registry.serialize.dcat import CatalogPage, catalog_graph, dataset_graph
from registry.serialize.dcat import serialize as serialize_rdf
from registry.serialize.registry_json import (
    change_json,
    experience_json,
    page_json,
    revision_json,
    search_json,
    summary_json,
)
from registry.serialize.schemaorg import dataset_ld, script_json

__all__ = ["CatalogPage", "TableWriter", "atom_entry", "atom_feed", "catalog_graph", "change_json", "ckan_time",
           "clean", "csv_line", "dataset_dict", "dataset_graph", "dataset_ld", "experience_csv", "experience_json",
           "experience_package",
           "license_dict", "organization_dict", "package_descriptor", "page_json", "revision_json", "script_json",
           "search_json", "serialize_rdf", "sitemap_index", "sitemap_xml", "summary_json", "urls"]
