"""Scheduled harvests on PostgreSQL: jobs in a procrastinate queue, run by any number of `registry worker`
processes, on any number of machines (procrastinate needs nothing but the registry's database).

- Its tables live in their own PostgreSQL schema, `procrastinate`, created by `ensure_schema` (the first
  `registry worker` or `registry harvest` command on a PostgreSQL registry; idempotent, under an advisory
  lock) so that they never mix with the registry's own (Alembic) tables.
- `harvest.tick` is a periodic task (every `interval` seconds): procrastinate defers each tick once, whatever
  the number of workers. A tick closes the harvest jobs whose process died, puts back in the queue the
  harvest jobs of workers that stopped sending heartbeats (a worker killed mid-job: its job is finished by
  another worker at the next tick, not at the source's next due time), and defers one `harvest.source`
  job per due source.
- `harvest.source` jobs carry the lock `source:NAME`: procrastinate never runs two jobs with the same lock
  at once, so two workers never harvest the same source at once; the queueing lock keeps at most one
  waiting job per source. The job checks again, when it starts, that the source is still due.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from procrastinate import App, JobContext, PsycopgConnector, RetryStrategy
from procrastinate.exceptions import AlreadyEnqueued, UniqueViolation
from procrastinate.jobs import Status
from procrastinate.schema import SchemaManager
from procrastinate.utils import sync_to_async

from registry.actions import Caller
from registry.actions import harvest as actions
from registry.store import Registry

log = logging.getLogger(__name__)
SCHEMA = "procrastinate"
QUEUE = "harvest"
TICK = "harvest.tick"
HARVEST = "harvest.source"


def is_postgresql(registry: Registry) -> bool:
    return actions.database_kind(registry) == "postgresql"


def ensure_schema(registry: Registry, caller: Caller) -> bool:
    """Creates procrastinate's tables and functions in the `procrastinate` schema, once. True if created."""
    return actions.ensure_queue_schema(registry, caller, SCHEMA, "procrastinate_jobs", SchemaManager.get_schema())


def cron_every(seconds: int) -> str:
    """A cron line for 'every `seconds` seconds' (procrastinate's croniter takes seconds as a 6th field)."""
    if seconds < 60:
        if 60 % seconds:
            raise ValueError("interval below 60 s must divide 60")
        return f"* * * * * */{seconds}"
    minutes = max(1, seconds // 60)
    return f"*/{minutes} * * * *" if minutes < 60 else "0 * * * *"


@dataclass(frozen=True)
class WorkerSettings:
    interval: int = 60  # seconds between ticks
    heartbeat: float = 10.0  # seconds between a worker's heartbeats
    stalled_after: float = 30.0  # a worker silent this long is dead: its jobs are run again
    concurrency: int = 1  # harvests at once in one worker process
    busy_retry: int = 30  # seconds before a job whose source was busy (a manual run) tries again


def make_app(registry: Registry, caller: Caller, settings: WorkerSettings) -> App:
    connector = PsycopgConnector(conninfo=actions.queue_conninfo(registry, caller),
                                 kwargs={"options": f"-c search_path={SCHEMA}"},
                                 min_size=1, max_size=settings.concurrency + 3)
    app = App(connector=connector)

    @app.task(name=HARVEST, queue=QUEUE,
              retry=RetryStrategy(max_attempts=20, wait=settings.busy_retry, retry_exceptions={actions.SourceBusy}))
    def harvest_source(name: str) -> None:
        from harvesters.run import run_source

        try:
            view = run_source(registry, caller, name, scheduled=True)
        except actions.NotDue as exc:
            log.info("%s", exc)
            return
        log.info("%s: job %s %s %s", name, view.id, view.status, view.counts)
        print(f"{name} : n° {view.id} {view.status} — {view.counts}", flush=True)

    @app.periodic(cron=cron_every(settings.interval), periodic_id="tick")
    @app.task(name=TICK, queue=QUEUE, pass_context=True)
    async def tick(context: JobContext, timestamp: int) -> None:
        await run_tick(context.app or app, registry, caller, settings)

    return app


async def run_tick(app: App, registry: Registry, caller: Caller, settings: WorkerSettings) -> list[str]:
    """One tick: dead jobs closed, stalled queue jobs put back, due sources deferred. Returns what it deferred."""
    stalled = await app.job_manager.get_stalled_jobs(task_name=HARVEST,
                                                     seconds_since_heartbeat=settings.stalled_after)
    for job in stalled:
        name = str(job.task_kwargs.get("name"))
        closed = await sync_to_async(actions.close_interrupted, registry, caller, name,
                                     "le worker qui le menait ne donne plus signe de vie")
        log.warning("harvest of %s: its worker stopped (%s job(s) closed); run again now", name, closed)
        try:  # the same queue job, back in the queue now, for another worker
            await app.job_manager.retry_job(job, retry_at=dt.datetime.now(dt.UTC))
        except UniqueViolation:  # a job for this source is already waiting: that one will run it
            await app.job_manager.finish_job(job, status=Status.FAILED, delete_job=False)
    await sync_to_async(actions.close_dead_jobs, registry, caller)
    due = await sync_to_async(actions.due_sources, registry, caller)
    deferred = []
    for source in due:
        try:
            await app.configure_task(HARVEST, lock=f"source:{source.name}", queueing_lock=f"source:{source.name}",
                                     queue=QUEUE).defer_async(name=source.name)
            deferred.append(source.name)
        except AlreadyEnqueued:
            pass  # waiting already
    return deferred


def run_worker(registry: Registry, caller: Caller, settings: WorkerSettings, once: bool = False) -> None:
    """A procrastinate worker on the harvest queue (`once`: one tick, the jobs it deferred, then stop)."""
    import asyncio

    ensure_schema(registry, caller)
    app = make_app(registry, caller, settings)
    options: dict[str, Any] = {"queues": [QUEUE], "concurrency": settings.concurrency,
                               "update_heartbeat_interval": settings.heartbeat,
                               "stalled_worker_timeout": settings.stalled_after,
                               "fetch_job_polling_interval": min(5.0, settings.interval),
                               "delete_jobs": "successful"}  # a tick a minute: the queue does not grow
    if once:
        async def one_round() -> None:
            async with app.open_async():
                await run_tick(app, registry, caller, settings)
                await app.run_worker_async(wait=False, **options)

        asyncio.run(one_round())
        return
    app.run_worker(wait=True, **options)
