"""Writes of programs (the REST API): one experience as JSON, or a file, through the one write path.

A record is sent in the shape the API gives it back (`{"experiences": {...}, "indicateurs": [...], ...}`, or a
whole `GET /api/v1/experiences/<id>` answer, whose `record` is used), or nested (the experience's fields with
its child rows under the child tables' names, as a JSON upload). Three ways to write one:

- `create`: a new experience; refused when its identifier exists (withdrawn ones included);
- `replace` (PUT): the record becomes exactly what was sent: a field or a child table left out is emptied;
- `merge` (PATCH): fields sent replace, fields left out are kept, a child table sent (even empty) replaces
  that table, a child table left out is kept. It is laid over the stored record before validation (the
  validator sees the whole record); a client that must not overwrite a concurrent change sends If-Match.

`expected_revision` (the API's If-Match) refuses a write made on a revision that is no longer the current one
(checked early, and again under the write's row lock: of two writers with the same revision, only the first wins).
`dry_run` validates and checks the rights, and stores nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from registry import service
from registry.actions import experiences
from registry.actions.authz import Caller, Permission, Role, check
from registry.db import Experience
from registry.queries import NotFound
from registry.service import InvalidProvenance, WithdrawError
from registry.standard import KEY_FIELD, MAIN_RESOURCE, Standard, get_standard
from registry.store import Registry
from registry.validation import Submission, validate_bytes, validate_tables
from registry.validation.raw import RawTable
from registry.validation.tabular import cell_text

Mode = Literal["create", "replace", "merge"]
SOURCE = "API REST"
MAX_CHILD_ROWS = 1000  # rows of one child table in one record


class InvalidDocument(ValueError):
    """The JSON sent is not a record at all (the validator's report covers everything else)."""


class WriteConflict(Exception):
    """The write contradicts the stored state: `code` says how (already_exists, revision_mismatch)."""

    def __init__(self, code: str, message: str, current_revision: int | None = None) -> None:
        super().__init__(message)
        self.code, self.current_revision = code, current_revision


@dataclass
class WriteResult:
    report: Any  # registry.validation.report.Report
    dry_run: bool
    experience_ids: list[str] = field(default_factory=list)
    outcomes: list[service.Outcome] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return bool(self.report.valid)


def _cell(table: str, name: str, value: Any) -> str:
    try:
        text = cell_text(value)
    except TypeError as exc:
        raise InvalidDocument(f"« {table}.{name} » : {exc} au lieu d'un texte, d'un nombre ou d'une liste de "
                              f"textes.") from None
    if "\x00" in text:
        raise InvalidDocument(f"« {table}.{name} » contient un caractère nul (\\u0000), refusé dans un texte.")
    return text


def _split(std: Standard, doc: Any) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """(main fields, child tables) of a record in any of the accepted shapes."""
    if not isinstance(doc, dict):
        raise InvalidDocument("Un objet JSON est attendu : l'expérience (ses champs, et ses tableaux enfants).")
    if isinstance(doc.get("record"), dict):
        doc = doc["record"]
    if isinstance(doc.get(MAIN_RESOURCE), dict):
        main = doc[MAIN_RESOURCE]
        others = [k for k in doc if k != MAIN_RESOURCE and k not in std.tables]
        if others:
            raise InvalidDocument(f"Clé inconnue à côté de « {MAIN_RESOURCE} » : « {others[0][:80]} » (attendu : "
                                  f"les tableaux du standard, {', '.join(std.tables)}).")
        children_doc = {k: v for k, v in doc.items() if k != MAIN_RESOURCE}
    else:
        main = {k: v for k, v in doc.items() if k not in std.tables}
        children_doc = {k: v for k, v in doc.items() if k in std.tables}
    children: dict[str, list[Any]] = {}
    for name, rows in children_doc.items():
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise InvalidDocument(f"« {name} » doit être une liste d'objets (une ligne du tableau chacun).")
        if len(rows) > MAX_CHILD_ROWS:
            raise InvalidDocument(f"« {name} » : {len(rows)} lignes, {MAX_CHILD_ROWS} au plus par expérience.")
        children[name] = rows
    return main, children


def record_tables(doc: Any, exp_id: str | None, mode: Mode, std: Standard | None = None,
                  current: dict[str, Any] | None = None) -> tuple[str, list[RawTable]]:
    """The identifier and the raw tables of one record sent as JSON, for the validator. A merge is laid over
    the `current` record (as stored), so that the validator always sees the whole record it will store."""
    std = std or get_standard()
    main, children = _split(std, doc)
    if mode == "merge" and current is not None:
        main = {**current[MAIN_RESOURCE], **main}
        children = {t.name: children.get(t.name, current.get(t.name, [])) for t in std.children}
        mode = "replace"
    sent_id = _cell(MAIN_RESOURCE, KEY_FIELD, main.get(KEY_FIELD)).strip()
    if exp_id is not None and sent_id and sent_id != exp_id:
        raise InvalidDocument(f"« {KEY_FIELD} » vaut « {sent_id[:40]} » dans le corps et « {exp_id} » dans "
                              f"l'adresse : ils doivent être égaux.")
    exp_id = exp_id or sent_id
    if not exp_id:
        raise InvalidDocument(f"« {KEY_FIELD} » manque : l'identifiant de l'expérience (SIREN-année-numéro).")
    main = {**main, KEY_FIELD: exp_id}
    names = std.table(MAIN_RESOURCE).field_names
    header = [n for n in names if n in main] if mode == "merge" else list(names)
    header += [k for k in main if k not in names]  # unknown fields: the validator reports them
    tables = [RawTable(MAIN_RESOURCE, SOURCE, header, iter([[_cell(MAIN_RESOURCE, k, main.get(k)) for k in header]]))]
    for child in std.children:
        if child.name not in children and mode == "merge":
            continue
        rows = [{**r, KEY_FIELD: exp_id} for r in children.get(child.name, [])]
        extra = [k for r in rows for k in r if k not in child.field_names]
        cols = list(child.field_names) + list(dict.fromkeys(extra))
        cells = [[_cell(child.name, k, r.get(k)) for k in cols] for r in rows]
        tables.append(RawTable(child.name, SOURCE, cols, iter(cells)))
    return exp_id, tables


def _current_revision(registry: Registry, exp_id: str) -> int | None:
    with registry.session() as s:
        exp = s.get(Experience, exp_id)
        return None if exp is None else exp.revision


def _current_record(registry: Registry, exp_id: str | None, mode: Mode) -> dict[str, Any] | None:
    if mode != "merge" or exp_id is None:
        return None
    with registry.session() as s:
        exp = s.get(Experience, exp_id)
        return None if exp is None else exp.record


def _check_rights(registry: Registry, caller: Caller, sub: Submission) -> None:
    if sub.valid and Role.ADMIN not in caller.roles:
        check(caller, Permission.PUBLISH, sorted(experiences.owners(registry, sub)))


def write_record(registry: Registry, caller: Caller, doc: Any, mode: Mode, exp_id: str | None = None,
                 expected_revision: int | None = None, dry_run: bool = False,
                 comment: str | None = None) -> WriteResult:
    """One experience, sent as JSON (see the module's docstring for the shapes and the modes)."""
    service.Provenance("api", caller.actor, None, SOURCE, comment)  # a bad comment: refused before anything else
    std = get_standard()
    exp_id, raws = record_tables(doc, exp_id, mode, std, _current_record(registry, exp_id, mode))
    current = _current_revision(registry, exp_id)
    if mode == "create" and current is not None:
        raise WriteConflict("already_exists", f"L'expérience {exp_id} existe déjà : modifiez-la (PUT ou PATCH) "
                                              f"au lieu de la créer.", current)
    if mode != "create" and current is None:
        raise NotFound(exp_id)
    if expected_revision is not None and current != expected_revision:
        raise WriteConflict("revision_mismatch", f"L'expérience {exp_id} est à la révision {current}, pas "
                                                 f"{expected_revision} : relisez-la avant de la modifier.", current)
    sub = validate_tables(raws, std=std, known_ids=service.known_ids(registry),
                          limits=service.default_limits(registry))
    expected = None if expected_revision is None else {exp_id: expected_revision}
    return _finish(registry, caller, sub, dry_run, comment, expected=expected)


def write_file(registry: Registry, caller: Caller, data: bytes, name: str, dry_run: bool = False,
               comment: str | None = None) -> WriteResult:
    """A CSV, XLSX, JSON file or a zipped Data Package, with the validator's report."""
    sub = validate_bytes(data, name, known_ids=service.known_ids(registry), limits=service.default_limits(registry))
    return _finish(registry, caller, sub, dry_run, comment, name)


def _finish(registry: Registry, caller: Caller, sub: Submission, dry_run: bool, comment: str | None,
            source_name: str = SOURCE, expected: dict[str, int] | None = None) -> WriteResult:
    service.Provenance("api", caller.actor, None, source_name, comment)  # a bad comment: refused before writing
    _check_rights(registry, caller, sub)
    ids = sub.experience_ids() if sub.valid else []
    if dry_run or not sub.valid:
        return WriteResult(sub.report, dry_run, ids)
    try:  # If-Match was checked above for a clear early answer, and again under the write's row lock
        result = experiences.publish(registry, caller, sub, source_name=source_name, comment=comment,
                                     expected=expected)
    except service.RevisionChanged as exc:
        raise WriteConflict("revision_mismatch", f"L'expérience {exc.exp_id} a changé pendant l'écriture (révision "
                                                 f"{exc.current}) : relisez-la avant de la modifier.",
                            exc.current) from None
    return WriteResult(result.report, False, ids, result.outcomes)


__all__ = ["InvalidDocument", "InvalidProvenance", "Mode", "WithdrawError", "WriteConflict", "WriteResult",
           "record_tables", "write_file", "write_record"]
