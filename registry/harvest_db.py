"""Harvest tables: the sources, their jobs, the per-item reports, and what each source brought in.

Built on `registry.db.Base` (migration 0002_harvest). Only `registry/actions/harvest.py` queries them:
`harvesters/` reaches them through that action module, never directly.

- `harvest_sources`: one portal (CKAN) or one file address (URL), with its filters, schedule, the
  organisations it may publish for, and a *lease* (`lease_owner`, `lease_until`): the process that holds
  it is the only one harvesting the source; it is taken by an atomic compare-and-swap, renewed by the
  job's heartbeat, and taken over when it expired or when its holder (same host) is dead.
- `harvest_jobs`: one run of one source: status (running, done, failed), counts, heartbeat.
- `harvest_items`: one dataset (or file) of a job, with its report (French messages, the validator's codes).
- `harvest_datasets`: what the source last gave for one remote dataset (content hash, ETag), to skip
  unchanged content and retry failed datasets on the next run.
- `harvest_records`: which source brought which experience (the claim): the first source that
  published an id owns it; deletions are inferred from these after a full run.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from registry.db import Base, JsonType, utcnow


class JobStatus:
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class HarvestSource(Base):
    __tablename__ = "harvest_sources"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    url: Mapped[str] = mapped_column(Text)
    type: Mapped[str] = mapped_column(String(10))  # ckan | url
    organisations: Mapped[list[str]] = mapped_column(JsonType, default=list)  # SIRENs; empty: operator's rights
    query: Mapped[str | None] = mapped_column(Text)
    schedule: Mapped[str | None] = mapped_column(String(10))  # hourly | daily | weekly | None (manual)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    allow_private_network: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_success_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))  # start of the last good run
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class HarvestJob(Base):
    __tablename__ = "harvest_jobs"
    __table_args__ = (Index("ix_harvest_jobs_source", "source_id", "id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("harvest_sources.id", ondelete="CASCADE"))
    source_name: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(10), default=JobStatus.RUNNING)
    full: Mapped[bool] = mapped_column(Boolean, default=False)
    owner: Mapped[str] = mapped_column(String(200))  # host:pid of the process that ran it
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    counts: Mapped[dict[str, int]] = mapped_column(JsonType, default=dict)
    message: Mapped[str | None] = mapped_column(Text)


class HarvestItem(Base):
    __tablename__ = "harvest_items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("harvest_jobs.id", ondelete="CASCADE"), index=True)
    dataset_id: Mapped[str | None] = mapped_column(String(200))
    dataset_name: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12))  # new|updated|unchanged|withdrawn|invalid|failed|ignored|conflict
    experience_ids: Mapped[list[str]] = mapped_column(JsonType, default=list)
    counts: Mapped[dict[str, int]] = mapped_column(JsonType, default=dict)
    messages: Mapped[list[dict[str, Any]]] = mapped_column(JsonType, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class HarvestDataset(Base):
    __tablename__ = "harvest_datasets"
    source_id: Mapped[int] = mapped_column(ForeignKey("harvest_sources.id", ondelete="CASCADE"), primary_key=True)
    dataset_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str | None] = mapped_column(Text)
    content_hash: Mapped[str | None] = mapped_column(String(64))
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12))  # ok | invalid | failed
    experience_ids: Mapped[list[str]] = mapped_column(JsonType, default=list)  # every id the content names
    last_job_id: Mapped[int | None] = mapped_column(Integer)


class HarvestRecord(Base):
    __tablename__ = "harvest_records"
    __table_args__ = (Index("ix_harvest_records_experience", "experience_id"),)
    source_id: Mapped[int] = mapped_column(ForeignKey("harvest_sources.id", ondelete="CASCADE"), primary_key=True)
    experience_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    dataset_id: Mapped[str | None] = mapped_column(String(200))
    url: Mapped[str | None] = mapped_column(Text)
    withdrawn: Mapped[bool] = mapped_column(Boolean, default=False)
    claimed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_job_id: Mapped[int | None] = mapped_column(Integer)
