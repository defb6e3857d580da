"""Harvest sources and jobs: the typed actions `harvesters/` and the `registry harvest` commands call.

Only the operator (Role.ADMIN: the CLI, the worker) may manage sources and run them (Permission.HARVEST);
what a harvest *publishes* is checked again, record by record, with the source's own harvester `Caller`
(`harvest_caller`). Every query of the harvest tables (registry/harvest_db.py) lives here.

Times here are the real UTC time (leases, heartbeats, the portal's `metadata_modified`), not the
registry's clock, which stamps revisions.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, or_, select, text, update
from sqlalchemy.engine import make_url

from registry import service
from registry.actions.authz import Caller, Permission, Role, check
from registry.harvest_db import HarvestDataset, HarvestItem, HarvestJob, HarvestRecord, HarvestSource, JobStatus
from registry.store import Registry
from registry.validation import KnownIds, Limits

TYPES = ("ckan", "url")
SCHEDULES = {"hourly": dt.timedelta(hours=1), "daily": dt.timedelta(days=1), "weekly": dt.timedelta(weeks=1)}
LEASE = dt.timedelta(seconds=60)  # renewed by every heartbeat (10 s); a holder silent for this long is dead
INTERRUPTED = "Moissonnage interrompu"  # the message of a job whose process died (it does not count as a run)
RERUNS = 3  # a source whose last jobs were all interrupted this many times waits for its next due time
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
SIREN_RE = re.compile(r"^[0-9]{9}$")
ITEM_STATUSES = ("new", "updated", "unchanged", "withdrawn", "invalid", "failed", "ignored", "conflict")
COUNTS = ("new", "updated", "unchanged", "withdrawn", "invalid", "failed")


class HarvestError(ValueError):
    """A request about sources or jobs that cannot be done; the message says why, in French."""


class SourceBusy(HarvestError):
    """Another process is harvesting this source right now."""


class NotDue(HarvestError):
    """A scheduled run found its source harvested since it was planned (by another worker): nothing to do."""


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite gives back naive datetimes: they are UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def process_owner() -> str:
    """host:pid:random, the holder of a lease and the runner of a job."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _owner_dead(owner: str | None) -> bool:
    """True when the owner ran on this host and its process no longer exists."""
    if not owner:
        return True
    parts = owner.split(":")
    if len(parts) < 2 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass(frozen=True)
class SourceView:
    id: int
    name: str
    url: str
    type: str
    organisations: tuple[str, ...]
    query: str | None
    schedule: str | None
    enabled: bool
    allow_private_network: bool
    created_at: dt.datetime
    last_success_at: dt.datetime | None
    running: bool

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "type": self.type, "organisations": list(self.organisations),
                "query": self.query, "schedule": self.schedule, "enabled": self.enabled,
                "allow_private_network": self.allow_private_network, "created_at": _iso(self.created_at),
                "last_success_at": _iso(self.last_success_at), "running": self.running}


@dataclass(frozen=True)
class ItemView:
    id: int
    dataset_id: str | None
    dataset_name: str | None
    url: str | None
    status: str
    experience_ids: tuple[str, ...]
    counts: dict[str, int]
    messages: tuple[dict[str, Any], ...]

    def to_dict(self) -> dict[str, Any]:
        return {"dataset_id": self.dataset_id, "dataset_name": self.dataset_name, "url": self.url,
                "status": self.status, "experience_ids": list(self.experience_ids), "counts": self.counts,
                "messages": list(self.messages)}


@dataclass(frozen=True)
class JobView:
    id: int
    source: str
    status: str
    full: bool
    started_at: dt.datetime
    finished_at: dt.datetime | None
    heartbeat_at: dt.datetime
    counts: dict[str, int]
    message: str | None
    items: tuple[ItemView, ...] = ()
    owner: str = ""  # host:pid:… of the process that ran it

    def to_dict(self, items: bool = True) -> dict[str, Any]:
        out = {"id": self.id, "source": self.source, "status": self.status, "full": self.full,
               "started_at": _iso(self.started_at), "finished_at": _iso(self.finished_at),
               "heartbeat_at": _iso(self.heartbeat_at), "counts": self.counts, "message": self.message,
               "owner": self.owner}
        if items:
            out["items"] = [i.to_dict() for i in self.items]
        return out


def _iso(value: dt.datetime | None) -> str | None:
    value = _aware(value)
    return value.isoformat(timespec="seconds") if value else None


def _source_view(src: HarvestSource) -> SourceView:
    until = _aware(src.lease_until)
    running = bool(src.lease_owner and until and until > now() and not _owner_dead(src.lease_owner))
    return SourceView(src.id, src.name, src.url, src.type, tuple(src.organisations or ()), src.query, src.schedule,
                      src.enabled, src.allow_private_network, _aware(src.created_at),  # type: ignore[arg-type]
                      _aware(src.last_success_at), running)


def _job_view(job: HarvestJob, items: Iterable[HarvestItem] = ()) -> JobView:
    return JobView(job.id, job.source_name, job.status, job.full, _aware(job.started_at),  # type: ignore[arg-type]
                   _aware(job.finished_at), _aware(job.heartbeat_at), dict(job.counts or {}),  # type: ignore[arg-type]
                   job.message, tuple(ItemView(i.id, i.dataset_id, i.dataset_name, i.url, i.status,
                                               tuple(i.experience_ids or ()), dict(i.counts or {}),
                                               tuple(i.messages or ())) for i in items), job.owner)


def _admin(caller: Caller) -> None:
    check(caller, Permission.HARVEST)


def known_ids(registry: Registry) -> KnownIds:
    """The lookup the validator uses for references to experiences already published."""
    return service.known_ids(registry)


def default_limits(registry: Registry) -> Limits:
    """The limits for harvested files: those of any input from others (the instance's settings)."""
    return service.default_limits(registry)


# -- sources ---------------------------------------------------------------------------------------------------

def add_source(registry: Registry, caller: Caller, name: str, url: str, type: str = "ckan",
               organisations: Iterable[str] = (), query: str | None = None, schedule: str | None = None,
               allow_private_network: bool = False) -> SourceView:
    _admin(caller)
    if not NAME_RE.match(name):
        raise HarvestError(f"Nom de source invalide : « {name} ». Utilisez des minuscules sans accent, des chiffres, "
                           "« - » ou « _ » (100 caractères au plus).")
    orgs = _settings(url, type, organisations, schedule)
    with registry.session() as s:
        if s.scalar(select(HarvestSource.id).where(HarvestSource.name == name)) is not None:
            raise HarvestError(f"La source « {name} » existe déjà.")
        src = HarvestSource(name=name, url=url, type=type, organisations=orgs, query=query, schedule=schedule,
                            enabled=True, allow_private_network=allow_private_network, created_at=now())
        s.add(src)
        s.flush()
        return _source_view(src)


def update_source(registry: Registry, caller: Caller, name: str, url: str, type: str = "ckan",
                  organisations: Iterable[str] = (), query: str | None = None, schedule: str | None = None,
                  allow_private_network: bool = False) -> SourceView:
    """New settings for a source; its jobs, reports and claims stay. What it no longer publishes (another
    address, query or organisation) is withdrawn by the next full run, as for a dataset deleted at the source."""
    _admin(caller)
    orgs = _settings(url, type, organisations, schedule)
    with registry.session() as s:
        src = _get(s, name)
        if (src.url, src.type, src.query) != (url, type, query):
            src.last_success_at = None  # another portal or selection: the next run lists everything, not the changes
        src.url, src.type, src.organisations, src.query, src.schedule = url, type, orgs, query, schedule
        src.allow_private_network = allow_private_network
        s.flush()
        return _source_view(src)


def _settings(url: str, type: str, organisations: Iterable[str], schedule: str | None) -> list[str]:
    """Checks a source's settings (French messages); its organisations, sorted."""
    if not re.match(r"^https?://[^\s/]+", url) or len(url) > 2000:
        raise HarvestError(f"Adresse invalide : « {url[:200]} ». Elle doit commencer par http:// ou https://.")
    if type not in TYPES:
        raise HarvestError(f"Type de source inconnu : « {type} » (attendu : {', '.join(TYPES)}).")
    if schedule is not None and schedule not in SCHEDULES:
        raise HarvestError(f"Fréquence inconnue : « {schedule} » (attendu : {', '.join(SCHEDULES)}).")
    orgs = sorted(set(organisations))
    for siren in orgs:
        if not SIREN_RE.match(siren):
            raise HarvestError(f"SIREN invalide : « {siren} » (9 chiffres attendus).")
    return orgs


def _get(s: Any, name: str) -> HarvestSource:
    src = s.scalar(select(HarvestSource).where(HarvestSource.name == name))
    if src is None:
        raise HarvestError(f"Source de moissonnage inconnue : « {name} ».")
    return src


def list_sources(registry: Registry, caller: Caller) -> list[SourceView]:
    _admin(caller)
    with registry.session() as s:
        return [_source_view(src) for src in s.scalars(select(HarvestSource).order_by(HarvestSource.name))]


def get_source(registry: Registry, caller: Caller, name: str) -> SourceView:
    _admin(caller)
    with registry.session() as s:
        return _source_view(_get(s, name))


def remove_source(registry: Registry, caller: Caller, name: str) -> None:
    """Forgets the source, its jobs and its claims; the experiences it published stay, with their history."""
    _admin(caller)
    with registry.session() as s:
        src = _get(s, name)
        view = _source_view(src)
        if view.running:
            raise SourceBusy(f"La source « {name} » est en cours de moissonnage : réessayez quand il sera fini.")
        jobs = select(HarvestJob.id).where(HarvestJob.source_id == src.id)
        s.execute(delete(HarvestItem).where(HarvestItem.job_id.in_(jobs)))
        for table in (HarvestJob, HarvestDataset, HarvestRecord):
            s.execute(delete(table).where(table.source_id == src.id))
        s.delete(src)


def set_enabled(registry: Registry, caller: Caller, name: str, enabled: bool) -> SourceView:
    _admin(caller)
    with registry.session() as s:
        src = _get(s, name)
        src.enabled = enabled
        return _source_view(src)


def harvest_caller(source: SourceView) -> Caller:
    """Who a harvest of this source publishes as: a harvester restricted to the source's organisations, or,
    for a source the operator added without organisations, the operator itself (channel harvest)."""
    actor = f"moissonnage:{source.name}"
    if source.organisations:
        return Caller("harvest", actor, frozenset({Role.HARVESTER}), frozenset(source.organisations))
    return Caller.operator("harvest", actor)


def _is_due(s: Any, src: HarvestSource) -> bool:
    """Due when the last job that ran its course (a job whose process died does not count, up to RERUNS
    times in a row: its source is run again at once) started longer ago than the source's period."""
    if src.schedule not in SCHEDULES:
        return False
    recent = s.execute(select(HarvestJob.started_at, HarvestJob.status, HarvestJob.message)
                       .where(HarvestJob.source_id == src.id).order_by(HarvestJob.id.desc()).limit(RERUNS)).all()
    interrupted = [r for r in recent if r.status == JobStatus.FAILED and (r.message or "").startswith(INTERRUPTED)]
    if recent and len(interrupted) == len(recent) == RERUNS:
        last = recent[0].started_at  # interrupted again and again: back to the schedule
    else:
        last = next((r.started_at for r in recent if r not in interrupted), None)
    return last is None or _aware(last) + SCHEDULES[src.schedule] <= now()  # type: ignore[operator,index]


def due_sources(registry: Registry, caller: Caller) -> list[SourceView]:
    """Enabled sources with a schedule that are due (`_is_due`) and not being harvested."""
    _admin(caller)
    out = []
    with registry.session() as s:
        for src in s.scalars(select(HarvestSource).where(HarvestSource.enabled.is_(True),
                                                         HarvestSource.schedule.is_not(None))
                             .order_by(HarvestSource.name)):
            running = s.scalar(select(HarvestJob.id).where(HarvestJob.source_id == src.id,
                                                           HarvestJob.status == JobStatus.RUNNING).limit(1))
            if running is None and _is_due(s, src):
                out.append(_source_view(src))
    return out


# -- jobs ------------------------------------------------------------------------------------------------------

@dataclass
class JobHandle:
    """A running job: the source as it was at the start, the lease holder, the counts so far."""

    job_id: int
    source: SourceView
    owner: str
    full: bool
    started_at: dt.datetime
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    last_beat: dt.datetime = field(default_factory=now)


def _close_dead(s: Any, source_id: int | None = None) -> int:
    """Jobs left 'running' by a process that died: closed as failed. Returns how many."""
    q = select(HarvestJob).where(HarvestJob.status == JobStatus.RUNNING)
    if source_id is not None:
        q = q.where(HarvestJob.source_id == source_id)
    closed = 0
    for job in s.scalars(q):
        stale = _aware(job.heartbeat_at) + LEASE < now()  # type: ignore[operator]
        if stale or _owner_dead(job.owner):
            job.status, job.finished_at = JobStatus.FAILED, now()
            job.message = (f"{INTERRUPTED} : le processus qui le menait s'est arrêté "
                           f"(dernier signe de vie : {_iso(job.heartbeat_at)}).")
            closed += 1
    return closed


def close_interrupted(registry: Registry, caller: Caller, name: str, why: str) -> int:
    """The source's running jobs closed as failed and its lease freed, when the task queue knows that the
    worker running them is dead (its heartbeats stopped). Returns how many jobs were closed."""
    _admin(caller)
    with registry.session() as s:
        src = s.scalar(select(HarvestSource).where(HarvestSource.name == name))
        if src is None:
            return 0
        closed = 0
        for job in s.scalars(select(HarvestJob).where(HarvestJob.source_id == src.id,
                                                      HarvestJob.status == JobStatus.RUNNING)):
            job.status, job.finished_at = JobStatus.FAILED, now()
            job.message = f"{INTERRUPTED} : {why} (dernier signe de vie : {_iso(job.heartbeat_at)})."
            if src.lease_owner == job.owner:
                src.lease_owner, src.lease_until = None, None
            closed += 1
        return closed


def close_dead_jobs(registry: Registry, caller: Caller) -> int:
    _admin(caller)
    with registry.session() as s:
        return _close_dead(s)


def start_job(registry: Registry, caller: Caller, name: str, full: bool = False, owner: str | None = None,
              require_enabled: bool = False, require_due: bool = False) -> JobHandle:
    """Takes the source's lease (atomically: two processes never both get it), closes the jobs a dead process
    left running, and opens a new job. Raises SourceBusy when a live process holds the lease."""
    _admin(caller)
    owner = owner or process_owner()
    with registry.session() as s:
        src = _get(s, name)
        if require_enabled and not src.enabled:
            raise HarvestError(f"La source « {name} » est désactivée.")
        previous, until = src.lease_owner, _aware(src.lease_until)
        free = previous is None or until is None or until < now() or _owner_dead(previous)
        if not free:
            raise SourceBusy(f"La source « {name} » est déjà en cours de moissonnage ({previous}).")
        cond = HarvestSource.lease_owner.is_(None) if previous is None else HarvestSource.lease_owner == previous
        taken = s.execute(update(HarvestSource).where(HarvestSource.id == src.id, cond)
                          .values(lease_owner=owner, lease_until=now() + LEASE)
                          .execution_options(synchronize_session=False)).rowcount
        if taken != 1:
            raise SourceBusy(f"La source « {name} » vient d'être prise par un autre processus.")
    with registry.session() as s:
        src = _get(s, name)
        _close_dead(s, src.id)
        if require_due and not _is_due(s, src):  # checked again under the lease: another worker may have
            src.lease_owner, src.lease_until = None, None  # just run it
            raise_later: HarvestError | None = NotDue(
                f"La source « {name} » vient d'être moissonnée par un autre processus.")
        else:
            raise_later = None
    if raise_later is not None:
        raise raise_later
    with registry.session() as s:
        src = _get(s, name)
        start = now()
        job = HarvestJob(source_id=src.id, source_name=src.name, status=JobStatus.RUNNING, full=full, owner=owner,
                         started_at=start, heartbeat_at=start, counts=dict.fromkeys(COUNTS, 0))
        s.add(job)
        s.flush()
        return JobHandle(job.id, _source_view(src), owner, full, start)


def heartbeat(registry: Registry, handle: JobHandle, force: bool = False) -> None:
    """Renews the lease and the job's heartbeat (at most every 5 s unless forced), with the counts so far."""
    t = now()
    if not force and t - handle.last_beat < dt.timedelta(seconds=5):
        return
    handle.last_beat = t
    with registry.session() as s:
        s.execute(update(HarvestSource).where(HarvestSource.id == handle.source.id,
                                              HarvestSource.lease_owner == handle.owner)
                  .values(lease_until=t + LEASE).execution_options(synchronize_session=False))
        s.execute(update(HarvestJob).where(HarvestJob.id == handle.job_id)
                  .values(heartbeat_at=t, counts=dict(handle.counts)).execution_options(synchronize_session=False))


def add_item(registry: Registry, handle: JobHandle, status: str, dataset_id: str | None = None,
             dataset_name: str | None = None, url: str | None = None, experience_ids: Iterable[str] = (),
             counts: dict[str, int] | None = None, messages: Iterable[dict[str, Any]] = ()) -> None:
    if status not in ITEM_STATUSES:
        raise ValueError(f"unknown item status {status!r}")
    with registry.session() as s:
        s.add(HarvestItem(job_id=handle.job_id, dataset_id=dataset_id, dataset_name=dataset_name, url=url,
                          status=status, experience_ids=list(experience_ids), counts=dict(counts or {}),
                          messages=list(messages), created_at=now()))
    heartbeat(registry, handle)


@dataclass(frozen=True)
class Item:
    """A job's item (one dataset or file), as the harvesters hand it over."""

    status: str
    url: str | None = None
    experience_ids: Iterable[str] = ()
    counts: dict[str, int] | None = None
    messages: Iterable[dict[str, Any]] = ()


def dataset_done(registry: Registry, handle: JobHandle, dataset_id: str, name: str | None, status: str,
                 content_hash: str | None = None, experience_ids: Iterable[str] = (), item: Item | None = None,
                 claims: Iterable[str] = (), claims_url: str | None = None, keep_ids: bool = False,
                 etag: str | None = None, last_modified: str | None = None) -> None:
    """What one dataset gave, in one transaction: the job's item, the dataset's state (`keep_ids`: the ids
    it gave last time are kept, for a dataset that failed) and the claims on what was published."""
    if item is not None and item.status not in ITEM_STATUSES:
        raise ValueError(f"unknown item status {item.status!r}")
    with registry.session() as s:
        if item is not None:
            s.add(HarvestItem(job_id=handle.job_id, dataset_id=dataset_id, dataset_name=name, url=item.url,
                              status=item.status, experience_ids=list(item.experience_ids),
                              counts=dict(item.counts or {}), messages=list(item.messages), created_at=now()))
        key = (HarvestDataset.source_id == handle.source.id, HarvestDataset.dataset_id == dataset_id)
        values: dict[str, Any] = {"name": name, "status": status, "last_job_id": handle.job_id,
                                  "content_hash": content_hash, "etag": etag, "last_modified": last_modified}
        if not keep_ids:
            values["experience_ids"] = sorted(set(experience_ids))
        found = s.execute(update(HarvestDataset).where(*key).values(**values)
                          .execution_options(synchronize_session=False)).rowcount
        if not found:
            s.add(HarvestDataset(source_id=handle.source.id, dataset_id=dataset_id,
                                 **{"experience_ids": [], **values}))
        _claim(s, handle, claims, dataset_id, claims_url)
    heartbeat(registry, handle)


def report_conflict_to_owner(registry: Registry, owner_source: str, message: dict[str, Any],
                             experience_ids: Iterable[str]) -> None:
    """Adds the conflict to the owning source's latest job too, so that both jobs say it."""
    with registry.session() as s:
        job = s.scalar(select(HarvestJob).where(HarvestJob.source_name == owner_source)
                       .order_by(HarvestJob.id.desc()).limit(1))
        if job is not None:
            s.add(HarvestItem(job_id=job.id, status="conflict", experience_ids=list(experience_ids),
                              counts={}, messages=[message], created_at=now()))


def finish_job(registry: Registry, handle: JobHandle, status: str, message: str | None = None,
               advance: bool = False) -> JobView:
    """Closes the job, releases the lease; `advance`: the listing was complete, the next incremental run
    starts from this job's start."""
    with registry.session() as s:
        job = s.get(HarvestJob, handle.job_id)
        assert job is not None
        job.status, job.finished_at, job.counts, job.message = status, now(), dict(handle.counts), message
        src = s.get(HarvestSource, handle.source.id)
        if src is not None:
            if advance:
                src.last_success_at = handle.started_at
            if src.lease_owner == handle.owner:
                src.lease_owner, src.lease_until = None, None
        return _job_view(job)


def list_jobs(registry: Registry, caller: Caller, name: str | None = None, limit: int = 50) -> list[JobView]:
    _admin(caller)
    with registry.session() as s:
        _close_dead(s)
        q = select(HarvestJob).order_by(HarvestJob.id.desc()).limit(limit)
        if name is not None:
            q = q.where(HarvestJob.source_id == _get(s, name).id)
        return [_job_view(j) for j in s.scalars(q)]


def get_job(registry: Registry, caller: Caller, job_id: int) -> JobView:
    _admin(caller)
    with registry.session() as s:
        _close_dead(s)
        job = s.get(HarvestJob, job_id)
        if job is None:
            raise HarvestError(f"Moissonnage inconnu : n° {job_id}.")
        items = s.scalars(select(HarvestItem).where(HarvestItem.job_id == job_id).order_by(HarvestItem.id))
        return _job_view(job, items)


# -- what a source brought: datasets and claims ---------------------------------------------------------------

@dataclass(frozen=True)
class DatasetState:
    dataset_id: str
    name: str | None
    content_hash: str | None
    etag: str | None
    last_modified: str | None
    status: str
    experience_ids: tuple[str, ...]


def dataset_state(registry: Registry, handle: JobHandle, dataset_id: str) -> DatasetState | None:
    with registry.session() as s:
        d = s.get(HarvestDataset, (handle.source.id, dataset_id))
        if d is None:
            return None
        return DatasetState(d.dataset_id, d.name, d.content_hash, d.etag, d.last_modified, d.status,
                            tuple(d.experience_ids or ()))


def dataset_states(registry: Registry, handle: JobHandle, dataset_ids: Iterable[str]) -> dict[str, DatasetState]:
    """The states of a few datasets in one query (those the harvest is about to process)."""
    wanted = sorted(set(dataset_ids))
    out: dict[str, DatasetState] = {}
    with registry.session() as s:
        for chunk in range(0, len(wanted), 500):
            for d in s.scalars(select(HarvestDataset).where(HarvestDataset.source_id == handle.source.id,
                                                            HarvestDataset.dataset_id.in_(wanted[chunk:chunk + 500]))):
                out[d.dataset_id] = DatasetState(d.dataset_id, d.name, d.content_hash, d.etag, d.last_modified,
                                                 d.status, tuple(d.experience_ids or ()))
    return out


def save_dataset_state(registry: Registry, handle: JobHandle, dataset_id: str, name: str | None, status: str,
                       content_hash: str | None = None, experience_ids: Iterable[str] = (),
                       etag: str | None = None, last_modified: str | None = None) -> None:
    with registry.session() as s:
        d = s.get(HarvestDataset, (handle.source.id, dataset_id))
        if d is None:
            d = HarvestDataset(source_id=handle.source.id, dataset_id=dataset_id)
            s.add(d)
        d.name, d.status, d.last_job_id = name, status, handle.job_id
        d.content_hash, d.etag, d.last_modified = content_hash, etag, last_modified
        d.experience_ids = sorted(set(experience_ids))


def gone_datasets(registry: Registry, handle: JobHandle, listed: set[str]) -> set[str]:
    """After a complete listing: the datasets this source gave before and no longer lists (marked gone, so
    that they are processed again if they come back)."""
    gone = set()
    with registry.session() as s:
        for d in s.scalars(select(HarvestDataset).where(HarvestDataset.source_id == handle.source.id,
                                                        HarvestDataset.status != "gone")):
            if d.dataset_id not in listed:
                d.status, d.content_hash, d.last_job_id = "gone", None, handle.job_id
                gone.add(d.dataset_id)
    return gone


def failed_datasets(registry: Registry, handle: JobHandle) -> list[str]:
    """Datasets whose last attempt failed: retried by the next run, even an incremental one."""
    with registry.session() as s:
        return list(s.scalars(select(HarvestDataset.dataset_id).where(
            HarvestDataset.source_id == handle.source.id, HarvestDataset.status == "failed")))


def claimed_elsewhere(registry: Registry, handle: JobHandle, ids: Iterable[str]) -> dict[str, str]:
    """Ids already brought by another source (id -> that source's name): the first source keeps them."""
    wanted = list(set(ids))
    out: dict[str, str] = {}
    with registry.session() as s:
        for chunk in range(0, len(wanted), 500):
            rows = s.execute(select(HarvestRecord.experience_id, HarvestSource.name)
                             .join(HarvestSource, HarvestSource.id == HarvestRecord.source_id)
                             .where(HarvestRecord.experience_id.in_(wanted[chunk:chunk + 500]),
                                    HarvestRecord.source_id != handle.source.id)
                             .order_by(HarvestRecord.claimed_at))
            for exp_id, name in rows:
                out.setdefault(exp_id, name)
    return out


def claim(registry: Registry, handle: JobHandle, ids: Iterable[str], dataset_id: str | None,
          url: str | None) -> None:
    """Records that this source published these ids (from this dataset)."""
    with registry.session() as s:
        _claim(s, handle, ids, dataset_id, url)


def _claim(s: Any, handle: JobHandle, ids: Iterable[str], dataset_id: str | None, url: str | None) -> None:
    wanted = sorted(set(ids))
    for chunk in range(0, len(wanted), 500):
        part = wanted[chunk:chunk + 500]
        have = {r.experience_id: r for r in s.scalars(select(HarvestRecord).where(
            HarvestRecord.source_id == handle.source.id, HarvestRecord.experience_id.in_(part)))}
        for exp_id in part:
            rec = have.get(exp_id)
            if rec is None:
                rec = HarvestRecord(source_id=handle.source.id, experience_id=exp_id, claimed_at=now())
                s.add(rec)
            rec.dataset_id, rec.url, rec.withdrawn, rec.last_job_id = dataset_id, url, False, handle.job_id


def claims_to_withdraw(registry: Registry, handle: JobHandle, seen: set[str],
                       protected_datasets: set[str]) -> list[tuple[str, str | None]]:
    """After a complete full run: the ids this source published that it no longer gives (and whose dataset
    did not fail this time), as (experience id, dataset id)."""
    with registry.session() as s:
        rows = s.execute(select(HarvestRecord.experience_id, HarvestRecord.dataset_id).where(
            HarvestRecord.source_id == handle.source.id, HarvestRecord.withdrawn.is_(False)))
        return [(e, d) for e, d in rows if e not in seen and (d is None or d not in protected_datasets)]


def mark_withdrawn(registry: Registry, handle: JobHandle, exp_id: str) -> None:
    with registry.session() as s:
        s.execute(update(HarvestRecord).where(HarvestRecord.source_id == handle.source.id,
                                              HarvestRecord.experience_id == exp_id)
                  .values(withdrawn=True, last_job_id=handle.job_id).execution_options(synchronize_session=False))


# -- the task queue (PostgreSQL: harvesters/queue.py, procrastinate) ---------------------------------------------

QUEUE_SCHEMA_LOCK = 7_300_451  # pg_advisory_xact_lock key while the queue's schema is created


def database_kind(registry: Registry) -> str:
    return registry.engine.dialect.name


def queue_conninfo(registry: Registry, caller: Caller) -> str:
    """The registry's database as a libpq URI, for the task queue's own connections."""
    _admin(caller)
    return make_url(registry.settings.db_url).set(drivername="postgresql").render_as_string(hide_password=False)


def ensure_queue_schema(registry: Registry, caller: Caller, schema: str, probe_table: str, ddl: str) -> bool:
    """Applies the task queue's DDL in its own PostgreSQL schema, once (under an advisory lock, so that
    workers starting together do not race). True when it was applied now."""
    _admin(caller)
    if not re.fullmatch(r"[a-z_]+", schema) or not re.fullmatch(r"[a-z_]+", probe_table):
        raise ValueError("schema and table names: lowercase letters and _")
    with registry.engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": QUEUE_SCHEMA_LOCK})
        if conn.scalar(text(f"SELECT to_regclass('{schema}.{probe_table}')")) is not None:
            return False
        conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
        conn.execute(text(f"SET LOCAL search_path TO {schema}"))
        conn.exec_driver_sql(ddl.replace("%", "%%"))
        return True


def running_jobs(registry: Registry, caller: Caller) -> list[JobView]:
    _admin(caller)
    with registry.session() as s:
        return [_job_view(j) for j in s.scalars(select(HarvestJob).where(or_(HarvestJob.status == JobStatus.RUNNING)))]


__all__ = [
    "COUNTS",
    "SCHEDULES",
    "TYPES",
    "DatasetState",
    "HarvestError",
    "Item",
    "ItemView",
    "JobHandle",
    "JobStatus",
    "JobView",
    "NotDue",
    "SourceBusy",
    "SourceView",
    "add_item",
    "add_source",
    "claim",
    "claimed_elsewhere",
    "claims_to_withdraw",
    "close_dead_jobs",
    "close_interrupted",
    "database_kind",
    "dataset_done",
    "dataset_state",
    "dataset_states",
    "default_limits",
    "due_sources",
    "ensure_queue_schema",
    "failed_datasets",
    "finish_job",
    "get_job",
    "get_source",
    "harvest_caller",
    "heartbeat",
    "known_ids",
    "list_jobs",
    "list_sources",
    "mark_withdrawn",
    "process_owner",
    "queue_conninfo",
    "remove_source",
    "report_conflict_to_owner",
    "running_jobs",
    "save_dataset_state",
    "set_enabled",
    "start_job",
    "update_source",
]
