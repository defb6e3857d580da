"""Storage: SQLAlchemy 2 models. SQLite (WAL) by default, PostgreSQL supported.

Revisions are immutable: every accepted change adds one, nothing is overwritten. `experiences` holds
the current state (a projection of the latest revision) for fast reads; `outbox` holds one event per
committed change, written in the same transaction, for the search index to consume.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

JsonType = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    pass


class Status(StrEnum):
    """The states of an experience, defined once."""

    PUBLISHED = "published"
    WITHDRAWN = "withdrawn"


# Fields of the standard's main table copied from the record into indexed columns of `experiences`.
PROJECTED_FIELDS: tuple[str, ...] = ("intitule", "domaine", "phase", "statut", "resultat", "code_insee_commune",
                                     "date_debut", "date_fin", "date_maj")


class Organisation(Base):
    __tablename__ = "organisations"
    siren: Mapped[str] = mapped_column(String(9), primary_key=True)
    nom: Mapped[str] = mapped_column(String(300))
    type_porteur: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Experience(Base):
    """Current state of one experience; `record` is the content of its latest revision."""

    __tablename__ = "experiences"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    siren_porteur: Mapped[str] = mapped_column(ForeignKey("organisations.siren"), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12), default=Status.PUBLISHED.value)
    withdrawn_reason: Mapped[str | None] = mapped_column(Text)
    intitule: Mapped[str] = mapped_column(Text)
    domaine: Mapped[str] = mapped_column(String(60), index=True)
    phase: Mapped[str] = mapped_column(String(30), index=True)
    statut: Mapped[str] = mapped_column(String(30), index=True)
    resultat: Mapped[str] = mapped_column(String(60), index=True)
    code_insee_commune: Mapped[str] = mapped_column(String(5), index=True)
    departement: Mapped[str | None] = mapped_column(String(3), index=True)
    region: Mapped[str | None] = mapped_column(String(3), index=True)
    date_debut: Mapped[str] = mapped_column(String(10))
    date_fin: Mapped[str | None] = mapped_column(String(10))
    date_maj: Mapped[str] = mapped_column(String(10))
    content_hash: Mapped[str] = mapped_column(String(64))
    record: Mapped[dict[str, Any]] = mapped_column(JsonType)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class Revision(Base):
    """One accepted change, never modified: who, when, from where, and the full content after it."""

    __tablename__ = "revisions"
    __table_args__ = (UniqueConstraint("experience_id", "number"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    experience_id: Mapped[str] = mapped_column(ForeignKey("experiences.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(12))  # create | update | withdraw | restore
    channel: Mapped[str] = mapped_column(String(12))  # form | upload | api | harvest | cli
    actor: Mapped[str | None] = mapped_column(String(200))
    source_url: Mapped[str | None] = mapped_column(Text)
    source_name: Mapped[str | None] = mapped_column(Text)
    comment: Mapped[str | None] = mapped_column(Text)
    standard_version: Mapped[str] = mapped_column(String(20))
    content_hash: Mapped[str] = mapped_column(String(64))
    record: Mapped[dict[str, Any]] = mapped_column(JsonType)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class OutboxEvent(Base):
    """A committed change for the search index (and any other consumer) to pick up, in order."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "processed_at", "id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    experience_id: Mapped[str] = mapped_column(String(40))
    revision_id: Mapped[int] = mapped_column(ForeignKey("revisions.id"))
    event: Mapped[str] = mapped_column(String(12))  # upsert | withdraw
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    processed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class ImmutableRevisionError(RuntimeError):
    pass


@event.listens_for(Session, "before_flush")
def _revisions_are_immutable(session: Session, _ctx: Any, _instances: Any) -> None:
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, Revision) and (obj in session.deleted or session.is_modified(obj)):
            raise ImmutableRevisionError("une révision est immuable : elle ne peut être ni modifiée ni supprimée")


def make_engine(url: str | URL, planner: Mapping[str, str] | None = None) -> Engine:
    """The engine of a database URL. With `planner` (PostgreSQL only): its connections open with these settings
    and read in autocommit — the search's reads, with no BEGIN, SET and ROLLBACK round trips around them."""
    if str(url).startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(conn: Any, _record: Any) -> None:
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    if planner:
        options = " ".join(f"-c {name}={value}" for name, value in planner.items())
        engine = create_engine(url, connect_args={"options": options}, isolation_level="AUTOCOMMIT")
    else:
        engine = create_engine(url)
    _own_connections(engine)  # (first: a parent's connection is not even pinged)
    _ping_when_idle(engine)
    return engine


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection for reads outside any transaction (autocommit): each statement sees what was committed before
    it, as in a READ COMMITTED transaction, without its BEGIN and ROLLBACK round trips (the pages' reads: a record
    and its revisions, its similar experiences)."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        yield conn


PING_AFTER = 5.0  # seconds in the pool after which a connection is checked before it is used again


def _ping_when_idle(engine: Engine) -> None:
    """A connection back from the pool after PING_AFTER seconds or more is pinged, and replaced when its server
    is gone (a database restarted overnight); one used again sooner is not: `pool_pre_ping` pings before every
    use, a round trip each time, and a record page takes two connections. A connection that breaks while in
    use is an error once, and SQLAlchemy then replaces every connection of the pool."""

    @event.listens_for(engine, "checkin")
    def _idle_since(_dbapi: Any, record: Any) -> None:
        if record is not None:
            record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < PING_AFTER:
            return
        try:
            engine.dialect.do_ping(dbapi)
        except Exception as exc:  # (the pool retries with a new connection)
            raise DisconnectionError(f"connection lost while idle: {exc}") from exc


def _own_connections(engine: Engine) -> None:
    """A process forked with connections in its pool (gunicorn --preload) never uses its parent's: the child
    leaves them open for the parent (closing one would end the parent's session) and opens its own."""

    @event.listens_for(engine, "connect")
    def _opened_by(_dbapi: Any, record: Any) -> None:
        record.info["pid"] = os.getpid()

    @event.listens_for(engine, "checkout")
    def _mine(_dbapi: Any, record: Any, proxy: Any) -> None:
        if record.info.get("pid", os.getpid()) != os.getpid():
            record.dbapi_connection = proxy.dbapi_connection = None
            raise DisconnectionError("a connection of the parent process")


from registry import accounts_db, harvest_db, ratelimits_db  # noqa: E402,F401
