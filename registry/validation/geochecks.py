"""Checks against the official geography (COG and SIREN of communes and EPCI), per the schema's
`registryChecks`: `commune_exists` and `siren_exists`."""

from __future__ import annotations

from typing import Any

from registry.geo import Geography
from registry.standard import FieldSpec, TableSpec
from registry.validation.report import Issue

KIND_FIELD = "type_porteur"  # the bearer's type, that says which SIRENs the geography can confirm
KINDS_FR = {"commune": "commune", "epci": "intercommunalité (EPCI)"}
KINDS_EN = {"commune": "commune", "epci": "intercommunality (EPCI)"}


class GeoChecker:
    def __init__(self, geo: Geography, tables: dict[str, TableSpec]) -> None:
        self.geo = geo
        self.fields = {
            name: [f for f in t.fields if {"commune_exists", "siren_exists"} & set(f.checks)]
            for name, t in tables.items()
        }

    def __call__(self, resource: str, row: int, values: dict[str, Any], cells: dict[str, str]) -> list[Issue]:
        found: list[Issue] = []
        for spec in self.fields.get(resource, ()):
            text = cells.get(spec.name)
            if not text:
                continue
            if "commune_exists" in spec.checks:
                items = text.split(spec.list_separator) if spec.is_list and spec.list_separator else [text]
                for code in items:
                    found.extend(self._commune(resource, row, spec, code, values))
            if "siren_exists" in spec.checks:
                found.extend(self._siren(resource, row, spec, text, values))
        return found

    def _issue(self, code: str, resource: str, row: int, spec: FieldSpec, value: str,
               severity: str = "error", **params: str) -> Issue:
        base = {"field": spec.title, "field_en": spec.title_en, "vintage": str(self.geo.vintage)}
        return Issue(code, severity, resource=resource, row=row, field=spec.name, value=value,  # type: ignore[arg-type]
                     params=base | params)

    def _commune(self, resource: str, row: int, spec: FieldSpec, code: str,
                 values: dict[str, Any]) -> list[Issue]:
        if self.geo.is_commune(code):
            return []
        former = self.geo.former_commune(code)
        if former is None:
            return [self._issue("commune-unknown", resource, row, spec, code)]
        vintage = values.get("millesime_cog")
        older = isinstance(vintage, int) and vintage < self.geo.vintage
        return [self._issue("commune-merged", resource, row, spec, code, "warning" if older else "error",
                            former=former.nom or "ancien code", name=former.nom_actuel,
                            current=former.code_actuel)]

    def _siren(self, resource: str, row: int, spec: FieldSpec, siren: str,
               values: dict[str, Any]) -> list[Issue]:
        declared = values.get(KIND_FIELD)
        org = self.geo.organisation(siren)
        if org is None:
            if declared in KINDS_FR:
                return [self._issue("siren-unknown", resource, row, spec, siren,
                                    kind=KINDS_FR[declared], kind_en=KINDS_EN[declared])]
            return []  # départements, régions, syndicats: not in the geography, checksum only
        if declared != org.kind:
            return [self._issue("siren-kind-mismatch", resource, row, spec, siren, name=org.nom,
                                actual=KINDS_FR[org.kind], actual_en=KINDS_EN[org.kind],
                                declared=str(declared))]
        return []
