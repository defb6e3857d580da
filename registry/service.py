"""The single write path. Form, upload, API, harvest and CLI all call `publish` (or `withdraw`).

publish = validate the whole submission, then in ONE transaction, for each experience: merge with
its current record, add an immutable revision (unless the content is unchanged), update the current
state, and add an outbox event. Invalid input is refused whole with its report; nothing stored changes.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import insert, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from registry.db import PROJECTED_FIELDS, Experience, Organisation, OutboxEvent, Revision, Status
from registry.geo import Geography, get_geography
from registry.records import Record, content_hash, merge
from registry.standard import KEY_FIELD, MAIN_RESOURCE, Standard, get_standard
from registry.store import Registry
from registry.validation import KnownIds, Limits, Submission, validate_bytes, validate_path, validate_tables
from registry.validation.report import Report
from registry.validation.sources import RawTable

Channel = Literal["form", "upload", "api", "harvest", "cli"]
CHANNELS: tuple[str, ...] = ("form", "upload", "api", "harvest", "cli")
ATTEMPTS = 3  # a transaction that lost a race with another writer is redone on the new state
CHUNK = 500  # experiences written per batch of statements (and kept in the session at once)


# Sizes match the columns of `revisions` (db.py); checked before any write, on every channel.
PROVENANCE_LIMITS = {"actor": 200, "source_url": 2000, "source_name": 1000, "comment": 2000}
PROVENANCE_LABELS = {"actor": "Auteur (--actor)", "source_url": "Adresse de la source",
                     "source_name": "Nom de la source", "comment": "Commentaire"}


class InvalidProvenance(ValueError):
    """Who/where/why of a change that cannot be stored (too long, control characters)."""


@dataclass(frozen=True)
class Provenance:
    channel: Channel
    actor: str | None = None
    source_url: str | None = None
    source_name: str | None = None
    comment: str | None = None

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise ValueError(f"unknown channel {self.channel!r}")
        for name, limit in PROVENANCE_LIMITS.items():
            value = getattr(self, name)
            if value is None:
                continue
            if len(value) > limit:
                raise InvalidProvenance(f"{PROVENANCE_LABELS[name]} trop long : {len(value)} caractères, "
                                        f"{limit} au plus.")
            if any(ord(c) < 32 and c not in "\t\n" for c in value):
                raise InvalidProvenance(f"{PROVENANCE_LABELS[name]} contient un caractère de contrôle interdit.")


@dataclass(frozen=True)
class Outcome:
    id: str
    action: Literal["created", "updated", "unchanged", "withdrawn", "restored"]
    revision: int


@dataclass
class PublishResult:
    report: Report
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.report.valid

    def count(self, action: str) -> int:
        return sum(1 for o in self.outcomes if o.action == action)


class WithdrawError(ValueError):
    pass


def known_ids(registry: Registry) -> KnownIds:
    def lookup(ids: set[str]) -> set[str]:
        wanted, found = sorted(ids), set()
        with registry.session() as s:
            for start in range(0, len(wanted), CHUNK):  # bounded statements (SQLite caps bound parameters)
                found |= set(s.scalars(select(Experience.id).where(Experience.id.in_(wanted[start:start + CHUNK]),
                                                                   Experience.status == Status.PUBLISHED)))
        return found

    return lookup


def default_limits(registry: Registry) -> Limits:
    """The limits for input from others (uploads, API, harvest): the instance's settings."""
    return Limits(max_bytes=registry.settings.max_upload_bytes, max_rows=registry.settings.max_rows)


def publish_path(registry: Registry, target: str | Path, prov: Provenance, report: Report | None = None,
                 limits: Limits | None = None) -> PublishResult:
    limits = limits or default_limits(registry)
    sub = validate_path(target, known_ids=known_ids(registry), limits=limits, report=report)
    return publish(registry, sub, prov)


def publish_bytes(registry: Registry, data: bytes, name: str, prov: Provenance) -> PublishResult:
    sub = validate_bytes(data, name, known_ids=known_ids(registry), limits=default_limits(registry))
    return publish(registry, sub, prov)


def publish_tables(registry: Registry, raws: list[RawTable], prov: Provenance) -> PublishResult:
    sub = validate_tables(raws, known_ids=known_ids(registry), limits=default_limits(registry))
    return publish(registry, sub, prov)


class RevisionChanged(Exception):
    """The experience is no longer at the revision the writer read (checked under the write's row lock)."""

    def __init__(self, exp_id: str, current: int | None) -> None:
        super().__init__(exp_id)
        self.exp_id, self.current = exp_id, current


def publish(registry: Registry, sub: Submission, prov: Provenance, std: Standard | None = None,
            expected: dict[str, int] | None = None) -> PublishResult:
    """Stores a checked submission in one transaction (all or nothing). `expected`: experience id -> the
    revision the writer read (an API's If-Match); checked under the row lock, RevisionChanged otherwise."""
    std = std or get_standard()
    result = PublishResult(sub.report)
    if not sub.valid:
        return result
    main = {r[KEY_FIELD]: r for r in sub.tables[MAIN_RESOURCE].rows} if MAIN_RESOURCE in sub.tables else {}
    grouped: dict[str, dict[str, list[dict[str, str]]]] = {}
    for name, table in sub.tables.items():
        if name == MAIN_RESOURCE:
            continue
        for row in table.rows:
            grouped.setdefault(row[KEY_FIELD], {}).setdefault(name, []).append(row)
    child_tables = [n for n in sub.tables if n != MAIN_RESOURCE]
    ids = sub.experience_ids()
    for attempt in range(ATTEMPTS):
        try:
            with registry.session() as s:
                outcomes: list[Outcome] = []
                for start in range(0, len(ids), CHUNK):
                    changes = [(exp_id, main.get(exp_id), {t: grouped.get(exp_id, {}).get(t, []) for t in child_tables})
                               for exp_id in ids[start:start + CHUNK]]
                    outcomes += _write_chunk(registry, s, std, changes, prov, expected or {})
        except DBAPIError as exc:
            # another writer committed the same experience first (or SQLite's snapshot went stale):
            # the whole transaction is redone on the new state
            if attempt == ATTEMPTS - 1 or not _conflict(exc):
                raise
            time.sleep(0.05 * (attempt + 1))
            continue
        result.outcomes = outcomes
        return result
    raise AssertionError("unreachable")


# PostgreSQL: serialization_failure, deadlock_detected, unique_violation (another writer created it first).
PG_CONFLICTS = frozenset({"40001", "40P01", "23505"})
# SQLite primary result codes: SQLITE_BUSY, SQLITE_LOCKED, SQLITE_CONSTRAINT (extended codes keep them in the low byte).
SQLITE_CONFLICTS = frozenset({5, 6, 19})


def _conflict(exc: DBAPIError) -> bool:
    """A lost race with another writer, recognised by the database's error code, never by its words."""
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if sqlstate is not None:
        return sqlstate in PG_CONFLICTS
    code = getattr(orig, "sqlite_errorcode", None)
    return code is not None and (code & 0xFF) in SQLITE_CONFLICTS


Change = tuple[str, dict[str, str] | None, dict[str, list[dict[str, str]]]]  # id, main row, child rows


def _write_chunk(registry: Registry, s: Session, std: Standard, changes: list[Change],
                 prov: Provenance, expected: dict[str, int]) -> list[Outcome]:
    """One slice of a submission: a fixed number of statements whatever the registry's size.

    One locking read of the slice's current rows (in id order, so two writers lock in the same order), one read
    of their organisations, then batched inserts: experiences, revisions, outbox.
    """
    ids = sorted(exp_id for exp_id, _, _ in changes)
    current = {e.id: e for e in s.scalars(select(Experience).where(Experience.id.in_(ids))
                                          .order_by(Experience.id).with_for_update())}
    for exp_id in ids:
        found = current[exp_id].revision if exp_id in current else None
        if exp_id in expected and found != expected[exp_id]:
            raise RevisionChanged(exp_id, found)
    outcomes: list[Outcome] = []
    pending: list[tuple[int, str, Experience, Record, str]] = []  # position, action, row, record, hash
    for exp_id, main_row, children in changes:
        exp = current.get(exp_id)
        record = merge(std, exp.record if exp else None, main_row, children)
        digest = content_hash(record)
        if exp is not None and exp.status == Status.PUBLISHED and exp.content_hash == digest:
            outcomes.append(Outcome(exp_id, "unchanged", exp.revision))
            continue
        action = "create" if exp is None else "restore" if exp.status == Status.WITHDRAWN else "update"
        pending.append((len(outcomes), action, exp or Experience(id=exp_id, revision=0), record, digest))
        outcomes.append(Outcome(exp_id, "unchanged", 0))  # replaced below, once the revision is numbered
    if pending:
        orgs = _organisations(registry, s, [record for _, _, _, record, _ in pending])
        revisions: list[dict[str, Any]] = []
        geo = get_geography()
        for _, action, exp, record, digest in pending:
            now = registry.clock()
            if action == "create":
                exp.created_at = now
                s.add(exp)
            _project(exp, record, digest, orgs, now, geo)
            revisions.append(_revision_row(registry, std, exp, action, prov, record, digest))
        s.flush()  # the experiences, in batched statements (their keys are known)
        # revisions in batched multi-row inserts that return each new id with its experience (the unit of
        # work would insert them one by one on SQLite, where it cannot match ids to rows by order)
        numbered = dict(s.execute(insert(Revision).returning(Revision.experience_id, Revision.id), revisions).all())
        s.execute(insert(OutboxEvent), [{"experience_id": r["experience_id"], "event": "upsert",
                                         "revision_id": numbered[r["experience_id"]], "created_at": r["created_at"]}
                                        for r in revisions])
        labels = {"create": "created", "update": "updated", "restore": "restored"}
        for (pos, action, exp, _, _), rev in zip(pending, revisions, strict=True):
            outcomes[pos] = Outcome(exp.id, labels[action], rev["number"])  # type: ignore[arg-type]
    return outcomes


def _organisations(registry: Registry, s: Session, records: list[Record]) -> dict[str, Organisation]:
    """The bearers of these records, created when new (and flushed before the experiences that name them)."""
    sirens = sorted({r[MAIN_RESOURCE]["siren_porteur"] for r in records})
    orgs = {o.siren: o for o in s.scalars(select(Organisation).where(Organisation.siren.in_(sirens)))}
    created = False
    for record in records:
        row = record[MAIN_RESOURCE]
        if row["siren_porteur"] not in orgs:
            orgs[row["siren_porteur"]] = org = Organisation(siren=row["siren_porteur"], created_at=registry.clock())
            s.add(org)
            created = True
        orgs[row["siren_porteur"]].nom = row["nom_porteur"]
        orgs[row["siren_porteur"]].type_porteur = row["type_porteur"]
    if created:
        s.flush()
    return orgs


def _project(exp: Experience, record: Record, digest: str, orgs: dict[str, Organisation], now: dt.datetime,
             geo: Geography) -> None:
    """The current-state row, rebuilt from the record (and the geography it derives from)."""
    row = record[MAIN_RESOURCE]
    commune = geo.commune(row["code_insee_commune"])
    exp.siren_porteur = orgs[row["siren_porteur"]].siren
    exp.status, exp.withdrawn_reason = Status.PUBLISHED.value, None
    for name in PROJECTED_FIELDS:
        setattr(exp, name, row[name] or None)
    exp.departement = commune.departement if commune else None
    exp.region = commune.region if commune else None
    exp.content_hash, exp.record, exp.updated_at = digest, record, now


def _revision_row(registry: Registry, std: Standard, exp: Experience, action: str, prov: Provenance,
                  record: Record, digest: str) -> dict[str, Any]:
    """The next revision of `exp` (its number counted on the experience), as the columns to insert."""
    exp.revision += 1
    return {"experience_id": exp.id, "number": exp.revision, "action": action, "channel": prov.channel,
            "actor": prov.actor, "source_url": prov.source_url, "source_name": prov.source_name,
            "comment": prov.comment, "standard_version": std.version, "content_hash": digest, "record": record,
            "created_at": registry.clock()}


def withdraw(registry: Registry, exp_id: str, reason: str, prov: Provenance) -> Outcome:
    """A tombstone with a reason: the experience leaves the published set, its history stays."""
    reason = reason.strip()
    if len(reason) < 10:
        raise WithdrawError("Indiquez la raison du retrait (10 caractères au moins).")
    std = get_standard()
    with registry.session() as s:
        exp = s.get(Experience, exp_id, with_for_update=True)
        if exp is None:
            raise WithdrawError(f"L'expérience {exp_id} n'existe pas dans le registre.")
        if exp.status == Status.WITHDRAWN:
            raise WithdrawError(f"L'expérience {exp_id} est déjà retirée.")
        prov = Provenance(prov.channel, prov.actor, prov.source_url, prov.source_name, reason)
        exp.status, exp.withdrawn_reason, exp.updated_at = Status.WITHDRAWN.value, reason, registry.clock()
        rev = Revision(**_revision_row(registry, std, exp, "withdraw", prov, exp.record, exp.content_hash))
        s.add(rev)
        s.flush()
        s.add(OutboxEvent(experience_id=exp_id, revision_id=rev.id, event="withdraw", created_at=rev.created_at))
        return Outcome(exp_id, "withdrawn", rev.number)
