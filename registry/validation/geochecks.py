"""Checks against the official geography (COG and SIREN of communes and EPCI), per the schema's
`registryChecks`: `commune_exists` and `siren_exists`."""

from __future__ import annotations

import dataclasses
from typing import Any

from registry.geo import Geography
from registry.standard import FieldSpec, TableSpec
from registry.validation.report import Issue

KIND_FIELD = "type_porteur"  # the bearer's type, that says which SIRENs the geography can confirm
VINTAGE_FIELD = "millesime_cog"  # an old vintage turns a merged commune code into a warning
CACHE_LIMIT = 200_000
KINDS_FR = {"commune": "commune", "epci": "intercommunalité (EPCI)"}
KINDS_EN = {"commune": "commune", "epci": "intercommunality (EPCI)"}


class GeoChecker:
    def __init__(self, geo: Geography, tables: dict[str, TableSpec]) -> None:
        self.geo = geo
        self.fields = {
            name: [f for f in t.fields if {"commune_exists", "siren_exists"} & set(f.checks)]
            for name, t in tables.items()
        }
        self.has_kind = {name for name, t in tables.items() if KIND_FIELD in t.by_name}
        self._seen: dict[tuple[Any, ...], list[Issue]] = {}

    def screen_rows(self, resource: str, columns: dict[str, tuple[str, ...]], typed: dict[str, list[Any]]) -> set[int]:
        """Positions of the rows of a batch (given column by column) this check may have something to say
        about; each distinct code or (SIREN, bearer type) pair is looked up once."""
        flagged: set[int] = set()
        for spec in self.fields.get(resource, ()):
            col = columns.get(spec.name)
            if col is None:
                continue
            if "commune_exists" in spec.checks:
                sep = spec.list_separator if spec.is_list else None
                bad = {v for v in set(col) if v and not all(map(self.geo.is_commune, v.split(sep) if sep else (v,)))}
                if bad:
                    flagged.update(i for i, v in enumerate(col) if v in bad)
            if "siren_exists" in spec.checks:
                kinds = columns.get(KIND_FIELD) or ("",) * len(col)  # raw codes: an invalid one flags the row anyway
                bad_pairs = {(v, k) for v, k in set(zip(col, kinds, strict=True)) if v and not self._siren_ok(v, k)}
                if bad_pairs:
                    flagged.update(i for i, pair in enumerate(zip(col, kinds, strict=True)) if pair in bad_pairs)
        return flagged

    def _siren_ok(self, siren: str, declared: Any) -> bool:
        kind = self.geo.siren_kind(siren)
        return kind == (declared or None) or (kind is None and declared not in KINDS_FR)

    def __call__(self, resource: str, row: int, values: dict[str, Any], cells: dict[str, str]) -> list[Issue]:
        """The issues of one row; rows with the same territory cells get the same answer, computed once."""
        fields = self.fields.get(resource)
        if not fields:
            return []
        key = (resource, values.get(KIND_FIELD), values.get(VINTAGE_FIELD), *(cells.get(f.name) for f in fields))
        found = self._seen.get(key)
        if found is None:
            found = self._check(resource, values, cells)
            if len(self._seen) < CACHE_LIMIT:
                self._seen[key] = found
        return [dataclasses.replace(i, row=row) for i in found] if found else []

    def _check(self, resource: str, values: dict[str, Any], cells: dict[str, str]) -> list[Issue]:
        row = 0  # set by the caller
        found: list[Issue] = []
        for spec in self.fields.get(resource, ()):
            text = cells.get(spec.name)
            if not text:
                continue
            if "commune_exists" in spec.checks:
                items = text.split(spec.list_separator) if spec.is_list and spec.list_separator else [text]
                for code in items:
                    found.extend(self._commune(resource, row, spec, code, values))
            if "siren_exists" in spec.checks and (values.get(KIND_FIELD) is not None or resource not in self.has_kind):
                found.extend(self._siren(resource, row, spec, text, values))  # needs a valid bearer type
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
        vintage = values.get(VINTAGE_FIELD)
        older = isinstance(vintage, int) and vintage < self.geo.vintage
        return [self._issue("commune-merged", resource, row, spec, code, "warning" if older else "error",
                            former=former.nom or "ancien code", name=former.nom_actuel,
                            current=former.code_actuel)]

    def _siren(self, resource: str, row: int, spec: FieldSpec, siren: str,
               values: dict[str, Any]) -> list[Issue]:
        declared = values.get(KIND_FIELD)
        kind = self.geo.siren_kind(siren)
        if kind == declared:
            return []
        org = self.geo.organisation(siren) if kind else None
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
