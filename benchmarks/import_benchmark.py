"""Import benchmark: N synthetic experiences through the write path, slice by slice, into a fresh SQLite and a
fresh PostgreSQL, so that any growth of the cost with the registry's size shows.

    .venv/bin/python benchmarks/import_benchmark.py --experiences 10000            # both databases, 10 slices
    .venv/bin/python benchmarks/import_benchmark.py --experiences 30000 --backends postgres --whole

The package comes from data/synthetic.py (as the other benchmarks). It is cut into `--slices` Data Packages
of N/slices experiences each (with their child rows); each slice is validated (`validate_path`, the stored
ids known) then written by `registry.actions.experiences.publish` as the operator (`index_now=False`: the
search index is not part of the write path; the outbox events are). Per slice it prints the write's
records/s and, as the baseline measured in the same run and database, a plain `executemany` of the same
records (id + JSON) into a table with a primary key: the ratio write path / baseline should stay flat.
`--whole` also imports the whole package in one call into another fresh database (what `registry import`
does), and prints its total records/s.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import synthetic  # noqa: E402  (benchmarks/common.py)
from sqlalchemy import text  # noqa: E402

from registry.actions import Caller  # noqa: E402
from registry.actions import experiences as actions  # noqa: E402
from registry.config import load_settings  # noqa: E402
from registry.service import default_limits, known_ids  # noqa: E402
from registry.store import Registry  # noqa: E402
from registry.validation import validate_path  # noqa: E402

KEY = "id_experience"


def split(package: Path, out: Path, slices: int) -> list[Path]:
    """Cuts the package into `slices` packages, each with its experiences' child rows."""
    descriptor = json.loads((package / "datapackage.json").read_text("utf-8"))
    with (package / "experiences.csv").open(encoding="utf-8", newline="") as f:
        ids = [row[KEY] for row in csv.DictReader(f)]
    size = -(-len(ids) // slices)
    where = {exp_id: i // size for i, exp_id in enumerate(ids)}
    folders = [out / f"slice-{i:02d}" for i in range(slices)]
    for folder in folders:
        folder.mkdir(parents=True)
        (folder / "datapackage.json").write_text(json.dumps(descriptor, ensure_ascii=False), "utf-8")
    for resource in descriptor["resources"]:
        with (package / resource["path"]).open(encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            header = next(reader)
            key = header.index(KEY)
            outs = [(folder / resource["path"]).open("w", encoding="utf-8", newline="") for folder in folders]
            writers = [csv.writer(o, lineterminator="\n") for o in outs]
            for w in writers:
                w.writerow(header)
            for row in reader:
                writers[where[row[key]]].writerow(row)
            for o in outs:
                o.close()
    return folders


def baseline(reg: Registry, folder: Path) -> float:
    """Seconds for a plain executemany of the slice's records (id + JSON of its rows) into a keyed table."""
    records: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("*.csv")):
        with path.open(encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                records.setdefault(row[KEY], {}).setdefault(path.stem, []).append(row)
    rows = [{"id": k, "record": json.dumps(v, ensure_ascii=False)} for k, v in records.items()]
    t0 = time.perf_counter()
    with reg.engine.begin() as conn:
        conn.execute(text("INSERT INTO baseline_rows (id, record) VALUES (:id, :record)"), rows)
    return time.perf_counter() - t0


def fresh(work: Path, name: str, backend: str, pg: Any) -> Registry:
    if backend == "sqlite":
        url = f"sqlite:///{work / name}.db"
    else:
        url = pg.create_database(f"{name}_{time.time_ns() % 10**6}")
    reg = Registry(load_settings(home=str(work / f"home-{name}"), database_url=url, max_upload_bytes=2**34))
    reg.migrate()
    with reg.engine.begin() as conn:
        conn.execute(text("CREATE TABLE baseline_rows (id VARCHAR(40) PRIMARY KEY, record TEXT NOT NULL)"))
    return reg


def run_slices(reg: Registry, folders: list[Path], n: int) -> None:
    caller = Caller.operator("cli", "import-benchmark")
    done = 0
    total_write = total_base = 0.0
    print(f"  {'stored before':>13} {'slice':>6} {'validate s':>10} {'write s':>8} {'write rec/s':>11} "
          f"{'baseline rec/s':>14} {'ratio':>6}")
    for folder in folders:
        t0 = time.perf_counter()
        sub = validate_path(folder, known_ids=known_ids(reg), limits=default_limits(reg))
        validated = time.perf_counter() - t0
        assert sub.valid, [str(i) for i in sub.report.issues[:5]]
        count = len(sub.tables["experiences"].rows)
        t0 = time.perf_counter()
        result = actions.publish(reg, caller, sub, source_name=folder.name, index_now=False)
        wrote = time.perf_counter() - t0
        assert result.count("created") == count, (result.count("created"), count)
        base = baseline(reg, folder)
        total_write, total_base = total_write + wrote, total_base + base
        print(f"  {done:>13} {count:>6} {validated:>10.2f} {wrote:>8.2f} {count / wrote:>11.0f} "
              f"{count / base:>14.0f} {wrote / base:>5.1f}x", flush=True)
        done += count
    print(f"  total: {done} records written in {total_write:.1f} s ({done / total_write:.0f} rec/s); "
          f"baseline {total_base:.1f} s ({done / total_base:.0f} rec/s); ratio {total_write / total_base:.1f}x")
    assert done == n


def run_whole(reg: Registry, package: Path, n: int) -> None:
    caller = Caller.operator("cli", "import-benchmark")
    t0 = time.perf_counter()
    sub = validate_path(package, known_ids=known_ids(reg), limits=default_limits(reg))
    validated = time.perf_counter() - t0
    assert sub.valid
    t0 = time.perf_counter()
    result = actions.publish(reg, caller, sub, source_name="whole", index_now=False)
    wrote = time.perf_counter() - t0
    assert result.count("created") == n
    print(f"  whole package in one call: validate {validated:.1f} s, write {wrote:.1f} s ({n / wrote:.0f} rec/s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiences", type=int, default=10_000)
    parser.add_argument("--slices", type=int, default=10)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--whole", action="store_true", help="also import the whole package in one call")
    args = parser.parse_args(argv)
    backends = [b for b in args.backends.split(",") if b]
    n = args.experiences
    work = Path(tempfile.mkdtemp(prefix="import-bench-"))
    pg = None
    try:
        t0 = time.perf_counter()
        package = synthetic(work / "package", n, args.seed)
        folders = split(package, work / "slices", args.slices)
        print(f"{n} synthetic experiences (seed {args.seed}) in {args.slices} slices, "
              f"generated in {time.perf_counter() - t0:.1f} s")
        if "postgres" in backends:
            from tests.services import start_postgres

            pg = start_postgres(work / "pg")
        for backend in backends:
            print(f"== {backend}: slices", flush=True)
            reg = fresh(work, f"imp_{backend}", backend, pg)
            run_slices(reg, folders, n)
            reg.close()
            if args.whole:
                print(f"== {backend}: whole", flush=True)
                reg = fresh(work, f"whole_{backend}", backend, pg)
                run_whole(reg, package, n)
                reg.close()
    finally:
        if pg is not None:
            pg.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
