"""What is searched and what is counted, read from the standard: never a hand-written list of fields."""

from __future__ import annotations

from dataclasses import dataclass

from registry.standard import KEY_FIELD, Standard, TableSpec

NONE = "_vide"  # the bucket of records where a facet field is empty ("Non renseigné")
YES, NO = "oui", "non"
OVERDUE = "resultats_en_retard"  # derived: results due before today and not published


def overdue(results_due: str | None, published: bool, today: str) -> str:
    """A record's value of OVERDUE on `today` (ISO dates): « oui » when its results were due before and are not
    published."""
    return YES if results_due and results_due < today and not published else NO


@dataclass(frozen=True)
class Facet:
    name: str
    multi: bool  # several values per record (a list field of the standard), each counted
    source: str  # "enum": a field of the standard; "territory", "year", "derived": computed by the registry


def text_fields(table: TableSpec) -> list[str]:
    """Free text of a table: strings without codes and without a pattern (ids, SIRENs, links, e-mails are not
    words to search)."""
    return [f.name for f in table.fields if f.type == "string" and not f.codes and not f.pattern
            and not f.item_pattern and f.name != KEY_FIELD]


def facets(std: Standard) -> list[Facet]:
    enum = [Facet(f.name, f.is_list, "enum") for f in std.main.fields if f.codes]
    computed = [Facet("region", False, "territory"), Facet("departement", False, "territory"),
                Facet("annee_debut", False, "year"), Facet(OVERDUE, False, "derived"),
                Facet("cibles_modifiees", False, "derived")]
    return enum + computed


def facet_names(std: Standard) -> list[str]:
    return [f.name for f in facets(std)]


SORTS = ("pertinence", "date_maj", "date_debut", "cout")
