"""Runs harvest jobs: takes the source's lease, keeps a heartbeat, and always closes the job (done or failed),
whatever happens to the items; a process killed mid-job leaves a job that the next run (or the worker)
closes as failed, and a re-run converges to the same state (every write is idempotent by id_experience).
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from harvesters import ckan, core, url
from harvesters.net import HarvestFetchError, Options
from registry.actions import Caller, index
from registry.actions import harvest as actions
from registry.store import Registry

BEAT_SECONDS = 10.0


def options_for(registry: Registry, source: actions.SourceView, base: Options | None = None) -> Options:
    base = base or Options(max_bytes=registry.settings.max_upload_bytes)
    return dataclasses.replace(base, allow_private_network=base.allow_private_network or source.allow_private_network)


def run_source(registry: Registry, caller: Caller, name: str, full: bool = False, options: Options | None = None,
               progress: Callable[[str], None] | None = None, scheduled: bool = False,
               update_index: bool = True) -> actions.JobView:
    """One job of one source, now (`scheduled`: only if the source is enabled and still due, for the worker).
    The search index follows the outbox once, at the end (`update_index`), or in the background."""
    handle = actions.start_job(registry, caller, name, full, require_enabled=scheduled, require_due=scheduled)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(BEAT_SECONDS):
            with contextlib.suppress(Exception):
                actions.heartbeat(registry, handle, force=True)

    thread = threading.Thread(target=beat, name=f"heartbeat-{name}", daemon=True)
    thread.start()
    opts = options_for(registry, handle.source, options)
    ctx = core.Context(registry, handle, dataclasses.replace(actions.default_limits(registry), workers=1),
                       progress=progress)
    try:
        with tempfile.TemporaryDirectory(prefix="moisson-") as tmp:
            harvester = ckan.harvest if handle.source.type == "ckan" else url.harvest
            complete, notes = harvester(ctx, opts, Path(tmp))
    except BaseException as exc:
        text = exc.message if isinstance(exc, HarvestFetchError) else \
            f"Moissonnage arrêté : {type(exc).__name__} ({str(exc)[:500]})."
        stop.set()
        view = actions.finish_job(registry, handle, actions.JobStatus.FAILED, text)
        if not isinstance(exc, Exception):
            raise
        return view
    stop.set()
    if update_index:
        index.after_write(registry)
    failed = handle.source.type == "url" and not complete
    status = actions.JobStatus.FAILED if failed else actions.JobStatus.DONE
    return actions.finish_job(registry, handle, status, " ".join(notes) or None, advance=complete and not failed)
