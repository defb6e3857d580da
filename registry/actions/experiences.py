"""Experiences: every read and write of the CLI, the pages, the APIs and the harvesters goes through here."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from registry import queries, service
from registry.actions import index
from registry.actions.authz import Caller, Permission, Role, check
from registry.db import Experience
from registry.queries import ExperienceView, NotFound, Page, RevisionInfo, Summary
from registry.records import Change
from registry.standard import MAIN_RESOURCE
from registry.store import Registry
from registry.validation import Limits, Submission, validate_bytes, validate_path
from registry.validation.report import Report

MAX_PAGE = 500
MAX_OFFSET = 10_000_000


class InvalidRequest(ValueError):
    """A read asked with impossible parameters: the message says which, in French."""


def _provenance(caller: Caller, source_name: str | None = None, source_url: str | None = None,
                comment: str | None = None) -> service.Provenance:
    return service.Provenance(caller.channel, caller.actor, source_url, source_name, comment)


def _sirens(registry: Registry, sub: Submission) -> set[str]:
    """Every organisation a submission writes for: those it names, and those owning the experiences it changes."""
    sirens = {r["siren_porteur"] for r in sub.tables[MAIN_RESOURCE].rows} if MAIN_RESOURCE in sub.tables else set()
    ids = sub.experience_ids()
    with registry.session() as s:
        for start in range(0, len(ids), service.CHUNK):  # bounded statements (SQLite caps bound parameters)
            chunk = ids[start:start + service.CHUNK]
            sirens |= set(s.scalars(select(Experience.siren_porteur).where(Experience.id.in_(chunk))))
    return sirens


def owners(registry: Registry, sub: Submission) -> set[str]:
    """The organisations (SIREN) a valid submission writes for: what the rights are checked against."""
    return _sirens(registry, sub)


def publish(registry: Registry, caller: Caller, sub: Submission, source_name: str | None = None,
            source_url: str | None = None, comment: str | None = None,
            index_now: bool = True, expected: dict[str, int] | None = None) -> service.PublishResult:
    """Stores a checked submission (all or nothing), then brings the search index up to date (`index_now=False`:
    a batch writer, the harvest, calls `index.after_write` itself once per batch; the outbox keeps every change)."""
    prov = _provenance(caller, source_name, source_url, comment)
    if sub.valid and Role.ADMIN not in caller.roles:
        check(caller, Permission.PUBLISH, sorted(_sirens(registry, sub)))
    result = service.publish(registry, sub, prov, expected=expected)
    if result.outcomes and index_now:
        index.after_write(registry)
    return result


def publish_file(registry: Registry, caller: Caller, target: str | Path, comment: str | None = None,
                 report: Report | None = None, limits: Limits | None = None) -> service.PublishResult:
    _provenance(caller, str(target), comment=comment)  # refuse a bad actor/comment before reading anything
    limits = limits or service.default_limits(registry)
    sub = validate_path(target, known_ids=service.known_ids(registry), limits=limits, report=report)
    return publish(registry, caller, sub, source_name=str(target), comment=comment)


def publish_upload(registry: Registry, caller: Caller, data: bytes, name: str,
                   comment: str | None = None) -> service.PublishResult:
    _provenance(caller, name, comment=comment)
    sub = validate_bytes(data, name, known_ids=service.known_ids(registry), limits=service.default_limits(registry))
    return publish(registry, caller, sub, source_name=name, comment=comment)


def withdraw(registry: Registry, caller: Caller, exp_id: str, reason: str, index_now: bool = True) -> service.Outcome:
    if Role.ADMIN not in caller.roles:
        with registry.session() as s:
            exp = s.get(Experience, exp_id)
        check(caller, Permission.WITHDRAW, [exp.siren_porteur if exp else None])
    out = service.withdraw(registry, exp_id, reason, _provenance(caller))
    if index_now:
        index.after_write(registry)
    return out


def get(registry: Registry, caller: Caller, exp_id: str) -> ExperienceView:
    """One experience (a withdrawn one too: its tombstone and history stay public)."""
    check(caller, Permission.READ)
    return queries.get_experience(registry, exp_id)


def get_with_history(registry: Registry, caller: Caller, exp_id: str) -> tuple[ExperienceView, list[RevisionInfo]]:
    """One experience and its revisions (a record page), read together."""
    check(caller, Permission.READ)
    return queries.get_with_history(registry, exp_id)


def history(registry: Registry, caller: Caller, exp_id: str) -> list[RevisionInfo]:
    check(caller, Permission.READ)
    return queries.history(registry, exp_id)


def diff(registry: Registry, caller: Caller, exp_id: str, old: int, new: int) -> list[Change]:
    check(caller, Permission.READ)
    return queries.compare(registry, exp_id, old, new)


def listing(registry: Registry, caller: Caller, limit: int = 50, offset: int = 0) -> Page[Summary]:
    check(caller, Permission.READ)
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidRequest(f"« limit » doit être un entier entre 1 et {MAX_PAGE}.")
    if not 0 <= offset <= MAX_OFFSET:
        raise InvalidRequest(f"« offset » doit être un entier entre 0 et {MAX_OFFSET}.")
    total, items = queries.list_experiences(registry, limit, offset)
    return Page(total, offset, limit, items)


__all__ = ["InvalidRequest", "NotFound", "diff", "get", "get_with_history", "history", "listing", "publish",
           "publish_file", "publish_upload", "withdraw"]
