"""Drafts of the publishing form, uploads checked before they are stored, and the XLSX template.

A draft is what a territory typed, saved on the server as it types: private to its organisation (the
rights of `authz.Permission.PUBLISH` for its SIREN) until published through
`registry.actions.experiences.publish` with the user's Caller, so the revision history records the author.

The form is generated from the standard: every field of every table, in two steps that follow the life of
a prototype (pre-registration, then results: `RESULT_FIELDS`); the bearer's fields, the identifier, the COG
vintage and the update date are filled by the registry (`AUTO_FIELDS`). The commune is typed by name and
resolved with the official geography.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import select

from registry import service
from registry.accounts_db import Draft
from registry.actions import experiences
from registry.actions.accounts import fold
from registry.actions.authz import Caller, Forbidden, Permission, Role, check
from registry.db import Experience
from registry.geo import get_geography
from registry.standard import KEY_FIELD, MAIN_RESOURCE, FieldSpec, get_standard
from registry.store import Registry
from registry.validation import Report, Submission, validate_bytes, validate_tables
from registry.validation.raw import RawTable

FORM_SOURCE = "formulaire"
STEPS = ("preinscription", "resultats")
# Fields of the main table reported once the prototype has run; every other field is pre-registration.
RESULT_FIELDS = ("resultat", "suite_donnee", "motif_arret", "ce_qui_a_fonctionne", "ce_qui_n_a_pas_fonctionne",
                 "recommandations", "impacts_positifs", "impacts_negatifs", "cout_reel", "economies_annuelles")
STEP_TABLES = {"preinscription": ("indicateurs", "acteurs"), "resultats": ("indicateurs", "enseignements",
                                                                          "documents")}
AUTO_FIELDS = {MAIN_RESOURCE: ("id_experience", "siren_porteur", "nom_porteur", "type_porteur", "millesime_cog",
                               "date_maj"),
               "enseignements": ("id_experience", "numero")}
CHILD_AUTO = ("id_experience",)
MAX_CHILD_ROWS = 200
MAX_VALUE = 20_000  # characters of one form value (the standard's longest text is 5,000)
CODE_RE = re.compile(r"(?:^|[\s—(-])((?:0[1-9]|1[0-9]|2[1-9AB]|[3-8][0-9]|9[0-5])[0-9]{3}|9[78][0-9]{3})\)?\s*$")


class DraftNotFound(LookupError):
    pass


@dataclass(frozen=True)
class DraftView:
    id: int
    siren: str
    experience_id: str | None
    data: dict[str, Any]
    updated_at: dt.datetime
    published_at: dt.datetime | None

    @property
    def title(self) -> str:
        return str(self.data.get(MAIN_RESOURCE, {}).get("intitule") or "")


@dataclass
class FormErrors:
    """Per-field French messages: `fields` by form key ("experiences.intitule", "indicateurs.0.valeur"),
    `general` for what belongs to no single field."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)

    def add(self, key: str | None, message: str) -> None:
        if key is None:
            self.general.append(message)
        else:
            self.fields.setdefault(key, []).append(message)

    def __bool__(self) -> bool:
        return bool(self.fields or self.general)


@dataclass(frozen=True)
class UploadCheck:
    token: str | None  # to publish in one click, when valid and allowed
    name: str
    report: Report
    experience_ids: tuple[str, ...]
    refused: str | None  # why this caller may not publish it (another organisation), else None
    removals: tuple[Removal, ...] = ()  # child rows this file deletes (a table in it, empty for a stored record)


@dataclass(frozen=True)
class Removal:
    """A table of the file without any row for an experience that has rows in the registry: publishing the file
    replaces them with none (a submitted table replaces all of a record's rows in it: `records.merge`)."""

    experience_id: str
    table: str
    current: int  # rows the registry holds now


def upload_removals(registry: Registry, sub: Submission) -> tuple[Removal, ...]:
    """What publishing this (valid) submission would delete without the file saying so row by row."""
    tables = [name for name in sub.tables if name != MAIN_RESOURCE]
    if not tables or not sub.valid:
        return ()
    in_file = {(name, row.get(KEY_FIELD, "")) for name in tables for row in sub.tables[name].rows}
    ids = sub.experience_ids()
    out: list[Removal] = []
    with registry.session() as s:
        for start in range(0, len(ids), 500):
            for exp_id, record in s.execute(select(Experience.id, Experience.record)
                                            .where(Experience.id.in_(ids[start:start + 500]))):
                out += [Removal(exp_id, name, len(record.get(name) or [])) for name in tables
                        if (name, exp_id) not in in_file and record.get(name)]
    order = {exp_id: n for n, exp_id in enumerate(ids)}
    return tuple(sorted(out, key=lambda r: (order[r.experience_id], r.table)))


# --- the form's fields, from the standard ------------------------------------------------------------------

def form_fields(table: str, step: str | None = None) -> tuple[FieldSpec, ...]:
    """The fields a person fills in, in the schema's order (a step's share of the main table)."""
    spec = get_standard().table(table)
    auto = AUTO_FIELDS.get(table, CHILD_AUTO)
    fields = tuple(f for f in spec.fields if f.name not in auto)
    if table == MAIN_RESOURCE and step == "resultats":
        return tuple(f for f in fields if f.name in RESULT_FIELDS)
    if table == MAIN_RESOURCE and step == "preinscription":
        return tuple(f for f in fields if f.name not in RESULT_FIELDS)
    return fields


def step_tables(step: str) -> tuple[str, ...]:
    return STEP_TABLES[step]


@cache
def _communes() -> tuple[tuple[str, str, str], ...]:
    """(folded name, code, label) of every current commune and arrondissement."""
    return tuple(sorted((fold(c.nom), c.code, f"{c.nom} ({c.departement_nom}) — {c.code}")
                        for c in get_geography().communes(arrondissements=True)))


def find_communes(text: str, limit: int = 20) -> list[tuple[str, str]]:
    """(code, label) of communes whose name starts with (then contains) the text, or with this code."""
    text = (text or "")[:200].strip()
    if CODE_RE.fullmatch(" " + text):
        code = text.upper()
        return [(c, label) for _, c, label in _communes() if c == code][:1]
    q = fold(text)
    if len(q) < 2:
        return []
    starts = [(c, label) for name, c, label in _communes() if name.startswith(q)]
    if len(starts) < limit:
        starts += [(c, label) for name, c, label in _communes() if q in name and not name.startswith(q)]
    return starts[:limit]


def resolve_commune(text: str) -> tuple[str | None, str | None]:
    """(code, None) for a code, a label from the list or a name that designates one commune; else
    (None, the French message)."""
    text = (text or "").strip()
    if not text:
        return "", None
    found = CODE_RE.search(text)
    if found and get_geography().is_commune(found.group(1).upper()):
        return found.group(1).upper(), None
    if found:
        return found.group(1).upper(), None  # the validator says what this code is (an old commune, unknown)
    q = fold(text)
    exact = [(c, label) for name, c, label in _communes() if name == q]
    if len(exact) == 1:
        return exact[0][0], None
    if exact:
        return None, ("Plusieurs communes portent ce nom : choisissez-la dans la liste ou ajoutez son code INSEE "
                      "(par exemple " + " ; ".join(label for _, label in exact[:4]) + ").")
    return None, (f"Commune introuvable : « {text[:80]} ». Saisissez son nom et choisissez-la dans la liste, "
                  "ou donnez son code INSEE à 5 caractères (et non son code postal).")


def commune_label(code: str) -> str:
    c = get_geography().commune(code) if code else None
    return f"{c.nom} ({c.departement_nom}) — {c.code}" if c else code


# --- drafts ------------------------------------------------------------------------------------------------

def _view(d: Draft) -> DraftView:
    return DraftView(d.id, d.siren, d.experience_id, dict(d.data or {}), d.updated_at, d.published_at)


def _next_id(s: Any, siren: str, year: int) -> str:
    prefix = f"{siren}-{year}-"
    used = set(s.scalars(select(Experience.id).where(Experience.id.like(prefix + "%"))))
    used |= set(s.scalars(select(Draft.experience_id).where(Draft.experience_id.like(prefix + "%"))))
    for n in range(1, 1000):
        if f"{prefix}{n:03d}" not in used:
            return f"{prefix}{n:03d}"
    raise ValueError("plus de 999 expériences cette année pour cette organisation")


def new_draft(registry: Registry, caller: Caller, siren: str, user_id: int | None) -> DraftView:
    """An empty draft for a new experience of this organisation, with its identifier reserved."""
    check(caller, Permission.PUBLISH, [siren])
    if get_geography().organisation(siren) is None and Role.ADMIN not in caller.roles:
        raise Forbidden("Organisation inconnue de la géographie officielle.")
    now = registry.clock()
    with registry.session() as s:
        exp_id = _next_id(s, siren, now.year)
        d = Draft(siren=siren, experience_id=exp_id, created_by=user_id, updated_by=user_id, created_at=now,
                  updated_at=now, data={MAIN_RESOURCE: {"statut": "en_cours", "resultat": "non_evalue"}, "_new": True})
        s.add(d)
        s.flush()
        return _view(d)


def draft_for_experience(registry: Registry, caller: Caller, exp_id: str, user_id: int | None) -> DraftView:
    """The open draft of a published experience, or a new one holding its current record."""
    view = experiences.get(registry, caller, exp_id)
    siren = view.main["siren_porteur"]
    check(caller, Permission.PUBLISH, [siren])
    now = registry.clock()
    with registry.session() as s:
        d = s.scalar(select(Draft).where(Draft.experience_id == exp_id, Draft.published_at.is_(None))
                     .order_by(Draft.id.desc()))
        if d is None:
            data: dict[str, Any] = {t: [dict(r) for r in rows] if isinstance(rows, list) else dict(rows)
                                    for t, rows in view.record.items()}
            d = Draft(siren=siren, experience_id=exp_id, created_by=user_id, updated_by=user_id, created_at=now,
                      updated_at=now, data=data)
            s.add(d)
            s.flush()
        return _view(d)


def get_draft(registry: Registry, caller: Caller, draft_id: int) -> DraftView:
    with registry.session() as s:
        d = s.get(Draft, draft_id)
        if d is None:
            raise DraftNotFound(draft_id)
        check(caller, Permission.PUBLISH, [d.siren])  # private to its organisation
        return _view(d)


def list_drafts(registry: Registry, caller: Caller) -> list[DraftView]:
    """The open drafts of the caller's organisations (all of them for a registry admin)."""
    with registry.session() as s:
        q = select(Draft).where(Draft.published_at.is_(None)).order_by(Draft.updated_at.desc())
        if Role.ADMIN not in caller.roles:
            q = q.where(Draft.siren.in_(sorted(caller.organisations)))
        return [_view(d) for d in s.scalars(q.limit(200))]


def delete_draft(registry: Registry, caller: Caller, draft_id: int) -> None:
    with registry.session() as s:
        d = s.get(Draft, draft_id)
        if d is None:
            raise DraftNotFound(draft_id)
        check(caller, Permission.PUBLISH, [d.siren])
        s.delete(d)


def _clean(value: str) -> str:
    value = value.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    return value[:MAX_VALUE]


def from_form(step: str, form: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """The part of a draft a step's form holds: {"experiences": {...}, "indicateurs": [{...}], ...}.
    `form` maps each name to its values (checkboxes of a list field give several). Empty child rows go."""
    if step not in STEPS:
        raise ValueError(step)
    main: dict[str, str] = {}
    for f in form_fields(MAIN_RESOURCE, step):
        values = [_clean(v) for v in form.get(f"{MAIN_RESOURCE}.{f.name}", [])]
        if f.is_list and f.codes:
            main[f.name] = (f.list_separator or "|").join(v for v in values if v)
        elif f.is_list:
            lines = [x.strip() for v in values for x in re.split(r"[\n|]", v) if x.strip()]
            main[f.name] = "\n".join(lines)
        else:
            main[f.name] = values[-1] if values else ""
    part: dict[str, Any] = {MAIN_RESOURCE: main}
    for table in step_tables(step):
        rows: dict[int, dict[str, str]] = {}
        names = {f.name for f in form_fields(table)}
        for key, values in form.items():
            parts = key.split(".")
            if len(parts) != 3 or parts[0] != table or parts[2] not in names or not parts[1].isdigit():
                continue
            index = int(parts[1])
            if index < MAX_CHILD_ROWS:
                rows.setdefault(index, {})[parts[2]] = _clean(values[-1] if values else "")
        part[table] = [rows[i] for i in sorted(rows) if any(v.strip() for v in rows[i].values())]
    return part


def save_draft(registry: Registry, caller: Caller, draft_id: int, step: str, form: Mapping[str, Sequence[str]],
               user_id: int | None) -> DraftView:
    """Merges what a step's form holds into the draft: nothing typed elsewhere is lost."""
    part = from_form(step, form)
    with registry.session() as s:
        d = s.get(Draft, draft_id)
        if d is None:
            raise DraftNotFound(draft_id)
        check(caller, Permission.PUBLISH, [d.siren])
        data = dict(d.data or {})
        data[MAIN_RESOURCE] = {**data.get(MAIN_RESOURCE, {}), **part[MAIN_RESOURCE]}
        for table in step_tables(step):
            data[table] = part[table]
        d.data = data
        d.updated_at = registry.clock()
        d.updated_by = user_id
        s.flush()
        return _view(d)


def _bearer(siren: str) -> dict[str, str]:
    org = get_geography().organisation(siren)
    if org is None:
        return {"siren_porteur": siren}
    return {"siren_porteur": siren, "nom_porteur": org.nom, "type_porteur": org.kind}


def _rows(registry: Registry, d: DraftView, errors: FormErrors) -> list[RawTable]:
    std = get_standard()
    today = registry.clock().date().isoformat()
    main = {f: "" for f in std.main.field_names}
    main.update({k: v for k, v in d.data.get(MAIN_RESOURCE, {}).items() if k in main})
    existing = {k: main[k] for k in ("nom_porteur", "type_porteur") if main.get(k)}
    main.update(_bearer(d.siren))
    if not d.data.get("_new"):
        main.update(existing)  # an edited record keeps the bearer's name and type it was published with
    main["id_experience"] = d.experience_id or ""
    main["date_maj"] = today
    main["millesime_cog"] = str(get_geography().vintage)
    main["resultat"] = main.get("resultat") or "non_evalue"
    code, problem = resolve_commune(main.get("code_insee_commune", ""))
    if problem:
        errors.add(f"{MAIN_RESOURCE}.code_insee_commune", problem)
    main["code_insee_commune"] = code or ""
    others = []
    for line in re.split(r"[\n|]", main.get("communes_concernees") or ""):
        if line.strip():
            c, problem = resolve_commune(line)
            if problem:
                errors.add(f"{MAIN_RESOURCE}.communes_concernees", problem)
            others.append(c or "")
    main["communes_concernees"] = "|".join(o for o in others if o)
    main["liens"] = "|".join(x.strip() for x in re.split(r"[\n|]", main.get("liens") or "") if x.strip())
    raws = [RawTable(MAIN_RESOURCE, FORM_SOURCE, list(std.main.field_names),
                     iter([[main[f] for f in std.main.field_names]]), decimal_comma=True)]
    for spec in std.children:
        rows = d.data.get(spec.name)
        if rows is None:
            continue
        out = []
        for i, row in enumerate(rows):
            full = {f: str(row.get(f, "") or "") for f in spec.field_names}
            full[KEY_FIELD] = d.experience_id or ""
            if spec.name == "enseignements":
                full["numero"] = str(i + 1)
            out.append([full[f] for f in spec.field_names])
        raws.append(RawTable(spec.name, f"{FORM_SOURCE}/{spec.name}", list(spec.field_names), iter(out),
                             decimal_comma=True))
    return raws


def _map_issues(report: Report, errors: FormErrors) -> None:
    std = get_standard()
    for issue in report.errors():
        table = issue.resource or MAIN_RESOURCE
        key = None
        if issue.field and table in std.tables and issue.field in std.table(table).by_name:
            auto = issue.field in AUTO_FIELDS.get(table, CHILD_AUTO)
            if table == MAIN_RESOURCE and not auto:
                key = f"{MAIN_RESOURCE}.{issue.field}"
            elif table != MAIN_RESOURCE and not auto and issue.row is not None:
                key = f"{table}.{issue.row - 2}.{issue.field}"
        message = issue.message("fr")
        if key is None and table != MAIN_RESOURCE:
            message = f"{std.table(table).title} : {message}"
        errors.add(key, message)


def check_draft(registry: Registry, caller: Caller, draft_id: int) -> tuple[FormErrors, Submission | None]:
    """The validator's findings on a draft, field by field, in French; the submission when all is valid."""
    d = get_draft(registry, caller, draft_id)
    errors = FormErrors()
    raws = _rows(registry, d, errors)
    sub = validate_tables(raws, known_ids=service.known_ids(registry), limits=service.default_limits(registry))
    _map_issues(sub.report, errors)
    return errors, (sub if sub.valid and not errors else None)


def publish_draft(registry: Registry, caller: Caller, draft_id: int, comment: str | None = None
                  ) -> tuple[FormErrors, service.PublishResult | None]:
    """Publishes a valid draft through the one write path, with the caller as the revision's author."""
    errors, sub = check_draft(registry, caller, draft_id)
    if sub is None:
        return errors, None
    result = experiences.publish(registry, caller, sub, source_name=FORM_SOURCE, comment=comment)
    if result.accepted:
        with registry.session() as s:
            d = s.get(Draft, draft_id)
            if d is not None:
                d.published_at = registry.clock()
                d.data = {k: v for k, v in (d.data or {}).items() if k != "_new"}
    return errors, result


# --- uploads -----------------------------------------------------------------------------------------------

def _upload_dir(registry: Registry) -> Path:
    path = Path(registry.settings.home) / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _upload_sirens(registry: Registry, sub: Submission) -> set[str]:
    sirens = {r["siren_porteur"] for r in sub.tables[MAIN_RESOURCE].rows} if MAIN_RESOURCE in sub.tables else set()
    with registry.session() as s:
        ids = sub.experience_ids()
        sirens |= set(s.scalars(select(Experience.siren_porteur).where(Experience.id.in_(ids))))
    return sirens


def check_upload(registry: Registry, caller: Caller, data: bytes, name: str, user_id: int | None) -> UploadCheck:
    """Validates an uploaded file without storing anything in the registry; when it is valid and the caller
    may publish every organisation it names, the file is kept aside for a one-click publish."""
    if Role.ADMIN not in caller.roles and not caller.organisations:
        raise Forbidden("Votre compte n'est encore rattaché à aucune organisation active.")
    name = re.sub(r"[^\w.\- ]", "_", Path(name or "fichier").name)[:200] or "fichier"
    sub = validate_bytes(data, name, known_ids=service.known_ids(registry), limits=service.default_limits(registry))
    ids = tuple(sub.experience_ids())
    refused = None
    token = None
    if sub.valid:
        bad = sorted(s for s in _upload_sirens(registry, sub) if not _may_publish(caller, s))
        if bad:
            refused = ("Ce fichier publie pour des organisations dont vous n'êtes pas membre (SIREN "
                       + ", ".join(bad[:10]) + ") : rien ne sera enregistré.")
        else:
            token = f"{user_id or 0}-{secrets.token_urlsafe(16)}"
            (_upload_dir(registry) / token).write_bytes(data)
            (_upload_dir(registry) / f"{token}.name").write_text(name, encoding="utf-8")
    return UploadCheck(token, name, sub.report, ids, refused, upload_removals(registry, sub))


def _may_publish(caller: Caller, siren: str) -> bool:
    from registry.actions.authz import allowed

    return allowed(caller, Permission.PUBLISH, siren)


def publish_upload(registry: Registry, caller: Caller, token: str, user_id: int | None) -> service.PublishResult:
    """Publishes a checked upload (checked again: the registry may have changed meanwhile)."""
    if not re.fullmatch(r"[0-9]+-[A-Za-z0-9_-]{10,40}", token or "") or not token.startswith(f"{user_id or 0}-"):
        raise DraftNotFound(token)
    path = _upload_dir(registry) / token
    if not path.exists():
        raise DraftNotFound(token)
    name = (_upload_dir(registry) / f"{token}.name").read_text(encoding="utf-8")
    result = experiences.publish_upload(registry, caller, path.read_bytes(), name)
    if result.accepted:
        path.unlink(missing_ok=True)
        (_upload_dir(registry) / f"{token}.name").unlink(missing_ok=True)
    return result


# --- the XLSX template -------------------------------------------------------------------------------------

def xlsx_template() -> bytes:
    """A workbook generated from the standard: one sheet per table named like it, its columns in order, a
    comment on each header with the field's title and help text, drop-down lists for coded fields."""
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter, quote_sheetname
    from openpyxl.worksheet.datavalidation import DataValidation

    std = get_standard()
    book = Workbook()
    first = book.active
    lists = book.create_sheet("listes")
    lists.sheet_state = "hidden"
    list_col = 0
    for n, spec in enumerate(std.tables.values()):
        ws = first if n == 0 else book.create_sheet()
        ws.title = spec.name
        for col, f in enumerate(spec.fields, start=1):
            cell = ws.cell(row=1, column=col, value=f.name)
            cell.font = Font(bold=True)
            text = f"{f.title}{' (obligatoire)' if f.required else ''}\n\n{f.description}"
            if f.example:
                text += f"\n\nExemple : {f.example}"
            if f.codes:
                text += "\n\nCodes : " + " ; ".join(f"{c} = {f.label(c)}" for c in f.codes)
            cell.comment = Comment(text[:2000], "Registre")
            cell.comment.width, cell.comment.height = 400, 240
            ws.column_dimensions[get_column_letter(col)].width = max(14, min(40, len(f.name) + 4))
            if f.enum:  # a single code: a drop-down list read from the hidden sheet
                list_col += 1
                letter = get_column_letter(list_col)
                lists.cell(row=1, column=list_col, value=f"{spec.name}.{f.name}")
                for i, code in enumerate(f.enum, start=2):
                    lists.cell(row=i, column=list_col, value=code)
                ref = f"{quote_sheetname('listes')}!${letter}$2:${letter}${len(f.enum) + 1}"
                dv = DataValidation(type="list", formula1=ref, allow_blank=not f.required, showErrorMessage=True,
                                    errorTitle="Code inconnu", error=f"Choisissez un code de la liste ({f.title}).",
                                    promptTitle=f.title[:32], prompt=f.description[:250], showInputMessage=True)
                ws.add_data_validation(dv)
                dv.add(f"{get_column_letter(col)}2:{get_column_letter(col)}1000")
        ws.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


__all__ = [
    "STEPS",
    "DraftNotFound",
    "DraftView",
    "FormErrors",
    "UploadCheck",
    "check_draft",
    "check_upload",
    "commune_label",
    "delete_draft",
    "draft_for_experience",
    "find_communes",
    "form_fields",
    "from_form",
    "get_draft",
    "list_drafts",
    "new_draft",
    "publish_draft",
    "publish_upload",
    "resolve_commune",
    "save_draft",
    "step_tables",
    "xlsx_template",
]
