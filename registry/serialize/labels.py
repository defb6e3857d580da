"""Labels of the search facets, in French or English: the standard's own for its fields, the geography's
names for régions and départements, a few words of the registry's for what it computes."""

from __future__ import annotations

from registry.geo import get_geography
from registry.search.fields import NO, NONE, YES
from registry.standard import get_standard

COMPUTED_TITLES = {
    "region": ("Région", "Region"), "departement": ("Département", "Département"),
    "annee_debut": ("Année de début", "Start year"),
    "resultats_en_retard": ("Résultats en retard", "Results overdue"),
    "cibles_modifiees": ("Cibles modifiées après le début", "Targets changed after the start"),
}
WORDS = {NONE: ("Non renseigné", "Not given"), YES: ("Oui", "Yes"), NO: ("Non", "No")}


def _pick(pair: tuple[str, str], lang: str) -> str:
    return pair[1] if lang == "en" else pair[0]


def facet_title(name: str, lang: str = "fr") -> str:
    if name in COMPUTED_TITLES:
        return _pick(COMPUTED_TITLES[name], lang)
    return get_standard().main.by_name[name].heading(lang)


def facet_label(name: str, code: str, lang: str = "fr") -> str:
    """A facet value's label; a value the facet does not know (typed into a URL) as it is."""
    if code == NONE or (name in ("resultats_en_retard", "cibles_modifiees") and code in WORDS):
        return _pick(WORDS[code], lang)
    if name == "region":
        region = get_geography().region(code)
        return region.nom if region else code
    if name == "departement":
        dep = get_geography().departement(code)
        return f"{dep.nom} ({dep.code})" if dep else code
    field = get_standard().main.by_name.get(name)  # (the computed facets are no field of the standard)
    return field.label(code, lang) if field is not None else code
