"""Harvest benchmark: a loopback CKAN-compatible portal (harvesters/testing.py, in its own process) of N datasets
each holding R experiences, harvested into a fresh SQLite registry.

    .venv/bin/python benchmarks/harvest_benchmark.py                      # 2,000 datasets x 10 rows, then 20,000 x 1
    .venv/bin/python benchmarks/harvest_benchmark.py --datasets 200 --rows 10 --single

Prints, for each scale: the first (full) harvest's wall time, rows per second and peak memory (max RSS of the
harvesting process, the portal runs in another process); the time `frictionless validate` alone takes on the
same files (the baseline); and a second, incremental run with 1 % of the datasets changed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def serve(n: int, rows: int, queue: mp.Queue, commands: mp.Queue) -> None:
    from harvesters.testing import FaultPortal, experiences_csv

    portal = FaultPortal()
    for d in range(n):
        portal.add_dataset(f"jeu-{d:05d}", [("rex.csv", experiences_csv(list(range(d * rows, (d + 1) * rows))))],
                           schema=True)
    queue.put(portal.url)
    while True:
        cmd = commands.get()
        if cmd == "stop":
            break
        if cmd == "change":  # 1 % of the datasets get a new title in every row
            for d in range(0, n, 100):
                key = f"id-jeu-{d:05d}"
                ds = portal.datasets[key]
                path = "/" + ds["resources"][0]["url"].split("/", 3)[3]
                portal.files[path].body = experiences_csv(list(range(d * rows, (d + 1) * rows)),
                                                          change={"intitule": f"Titre changé {d}"})
                portal.touch(key)
            queue.put("changed")
        if cmd == "files":
            out = Path(commands.get())
            for path, f in list(portal.files.items())[: int(commands.get())]:
                (out / (path.strip("/").replace("/", "-"))).write_bytes(f.body)
            queue.put("written")
    portal.stop()


def frictionless_baseline(folder: Path) -> float:
    from frictionless import Resource, Schema

    schema = Schema.from_descriptor(str(ROOT / "schemas" / "experiences" / "schema.json"))
    start = time.perf_counter()
    for path in sorted(folder.glob("*.csv")):
        Resource(path=str(path), schema=schema).validate()
    return time.perf_counter() - start


def single(n: int, rows: int, baseline: bool, index_too: bool = False, trace: bool = False) -> dict[str, float]:
    from harvesters.net import Options
    from harvesters.run import run_source
    from registry.actions import Caller, index
    from registry.actions import harvest as actions
    from registry.config import load_settings
    from registry.store import Registry

    queue: mp.Queue = mp.Queue()
    commands: mp.Queue = mp.Queue()
    server = mp.Process(target=serve, args=(n, rows, queue, commands), daemon=True)
    server.start()
    url = queue.get(timeout=600)
    out: dict[str, float] = {"datasets": n, "rows": n * rows}
    with tempfile.TemporaryDirectory() as tmp:
        reg = Registry(load_settings(home=tmp))
        reg.migrate()
        op = Caller.operator("cli")
        actions.add_source(reg, op, "bench", url, allow_private_network=True)
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if trace:
            tracemalloc.start(1)
            before = tracemalloc.take_snapshot()
        start = time.perf_counter()
        job = run_source(reg, op, "bench", options=Options(retries=0), update_index=False)
        out["first_s"] = time.perf_counter() - start
        if trace:  # what the harvest left allocated, by line, and the Python heap's peak
            after = tracemalloc.take_snapshot()
            out["traced_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
            for stat in after.compare_to(before, "lineno")[:8]:
                print(f"  {stat.size_diff / 1024:+9.0f} KiB {stat.count_diff:+7d} blocks  {stat.traceback[0]}",
                      file=sys.stderr)
        out["first_new"] = job.counts["new"]
        out["rows_per_s"] = n * rows / out["first_s"]
        out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        out["rss_before_mb"] = rss0 / 1024
        if index_too:  # the search index follows the outbox in the background; timed here on its own
            start = time.perf_counter()
            index.after_write(reg)
            out["index_s"] = time.perf_counter() - start
        commands.put("change")
        queue.get(timeout=600)
        start = time.perf_counter()
        job = run_source(reg, op, "bench", options=Options(retries=0, overlap_seconds=0), update_index=False)
        out["incremental_s"] = time.perf_counter() - start
        out["incremental_updated"] = job.counts["updated"]
        if baseline:
            folder = Path(tmp) / "files"
            folder.mkdir()
            commands.put("files")
            commands.put(str(folder))
            commands.put(str(n))
            queue.get(timeout=600)
            out["frictionless_s"] = frictionless_baseline(folder)
        reg.close()
    commands.put("stop")
    server.join(30)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", type=int)
    parser.add_argument("--rows", type=int, default=10)
    parser.add_argument("--single", action="store_true")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--index", action="store_true", help="also time the search index catching up")
    parser.add_argument("--trace", action="store_true", help="tracemalloc: Python heap peak, what grew (slower)")
    args = parser.parse_args()
    if args.single:
        print(json.dumps(single(args.datasets, args.rows, not args.no_baseline, args.index, args.trace)))
        return
    scales = [(args.datasets, args.rows)] if args.datasets else [(2000, 10), (20000, 1)]
    for n, rows in scales:
        cmd = [sys.executable, __file__, "--single", "--datasets", str(n), "--rows", str(rows)]
        if n > 5000:
            cmd.append("--no-baseline")
        r = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
        print(f"{n:>6} datasets, {r['rows']:>6} rows: first harvest {r['first_s']:.1f} s "
              f"({r['rows_per_s']:.0f} rows/s, "
              f"{r['first_new']:.0f} new), peak RSS {r['peak_rss_mb']:.0f} MB (at start {r['rss_before_mb']:.0f} MB); "
              f"incremental with 1 % changed {r['incremental_s']:.1f} s ({r['incremental_updated']:.0f} updated, "
              f"{100 * r['incremental_s'] / r['first_s']:.0f} % of the first)"
              + (f"; frictionless validate alone on the same files {r['frictionless_s']:.1f} s"
                 if "frictionless_s" in r else ""))


if __name__ == "__main__":
    main()
