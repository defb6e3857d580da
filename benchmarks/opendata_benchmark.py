"""Open data out on a large registry (PostgreSQL): CKAN package_search first page vs last page, a full walk of
the DCAT catalogue through its Hydra pages, and the time and peak memory of the bulk Data Package build.

    .venv/bin/python benchmarks/opendata_benchmark.py --experiences 100000 [--sizes 10000,100000] [--seed 42]

Each size gets its own database: synthetic experiences (data/synthetic.py) imported through the write path,
then every measure through the Flask application (JSON or Turtle as a client gets it). "Memory flat in the
number of experiences" is read by comparing the bulk build's peak across sizes (tracemalloc: Python
allocations during the build only).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import synthetic  # noqa: E402  (benchmarks/common.py)

from registry import bulk  # noqa: E402
from registry.config import load_settings  # noqa: E402
from registry.service import Provenance, publish_path  # noqa: E402
from registry.store import Registry  # noqa: E402

NEXT = re.compile(rb"hydra:next <([^>]+)>")


def timed(fn, repeat: int = 5) -> float:  # type: ignore[no-untyped-def]
    """Median wall time of `repeat` calls, in milliseconds (one warm-up call first)."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def measure(reg: Registry, n: int) -> dict[str, float]:
    from web.app import create_app

    client = create_app(reg, dev=True).test_client()
    out: dict[str, float] = {}
    last = max(0, n - 100)
    for label, sort in (("id asc", "id%20asc"), ("metadata_modified desc", "metadata_modified%20desc")):
        def page(start: int, sort: str = sort) -> None:
            answer = client.get(f"/api/3/action/package_search?rows=100&start={start}&sort={sort}")
            assert answer.status_code == 200 and len(answer.get_json()["result"]["results"]) == min(100, n - start)
        out[f"package_search rows=100 first page, sort {label} (ms)"] = timed(lambda: page(0))
        out[f"package_search rows=100 last page, sort {label} (ms)"] = timed(lambda: page(last))
    out["package_search rows=1000 first page (ms)"] = timed(
        lambda: client.get("/api/3/action/package_search?rows=1000&sort=id%20asc"), repeat=3)
    out["package_search fq=metadata_modified:[..] rows=0 (ms)"] = timed(
        lambda: client.get("/api/3/action/package_search?rows=0&fq=metadata_modified:[2020-01-01T00:00:00.000001Z"
                           "%20TO%20*]"))
    out["package_search q=words + facets (ms)"] = timed(
        lambda: client.get('/api/3/action/package_search?q=capteurs&rows=10&facet.field=["organization","tags"]'),
        repeat=3)

    t0 = time.perf_counter()
    url: str | None = "/catalog.ttl?page_size=1000"
    pages = datasets = 0
    slowest = 0.0
    while url:
        p0 = time.perf_counter()
        answer = client.get(url)
        slowest = max(slowest, time.perf_counter() - p0)
        assert answer.status_code == 200
        datasets += answer.data.count(b"a dcat:Dataset")
        pages += 1
        found = NEXT.search(answer.data)
        url = found.group(1).decode().replace("http://localhost", "") if found else None
    out["DCAT Hydra walk, page_size=1000: pages"] = pages
    out["DCAT Hydra walk: datasets seen"] = datasets
    out["DCAT Hydra walk: total (s)"] = time.perf_counter() - t0
    out["DCAT Hydra walk: slowest page (ms)"] = slowest * 1000

    tracemalloc.start()
    t0 = time.perf_counter()
    assert bulk.refresh(reg, force=True)
    out["bulk build (s)"] = time.perf_counter() - t0
    out["bulk build peak Python memory (MiB)"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    out["bulk zip size (MiB)"] = bulk.files(reg)[bulk.ZIP_NAME].path.stat().st_size / 2**20
    t0 = time.perf_counter()
    assert not bulk.refresh(reg)
    out["bulk refresh when nothing changed (ms)"] = (time.perf_counter() - t0) * 1000
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiences", type=int, default=100_000)
    parser.add_argument("--sizes", default="", help="comma-separated sizes (default: --experiences only)")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s] or [args.experiences]
    from tests.services import start_postgres

    work = Path(tempfile.mkdtemp(prefix="opendata-bench-"))
    pg = start_postgres(work / "pg")
    try:
        for n in sizes:
            t0 = time.perf_counter()
            data = synthetic(work / f"data-{n}", n, args.seed)
            generated = time.perf_counter() - t0
            url = pg.create_database(f"opendata_{n}_{time.time_ns() % 10**6}")
            reg = Registry(load_settings(home=str(work / f"instance-{n}"), database_url=url,
                                         max_upload_bytes=2**34))  # a 100,000-experience package is over 64 MiB
            reg.migrate()
            t0 = time.perf_counter()
            result = publish_path(reg, data, Provenance("cli"))
            assert result.accepted, [str(i) for i in result.report.issues[:5]]
            imported = time.perf_counter() - t0
            print(f"== {n} synthetic experiences on PostgreSQL (generated {generated:.1f} s, "
                  f"imported {imported:.1f} s)")
            for name, value in measure(reg, n).items():
                print(f"  {name}: {value:.1f}" if isinstance(value, float) else f"  {name}: {value}")
            sys.stdout.flush()
            reg.close()
    finally:
        pg.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
