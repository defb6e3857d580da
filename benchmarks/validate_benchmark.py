"""Validation speed: the registry validator against frictionless on one large `experiences.csv`.

    python benchmarks/validate_benchmark.py [--rows 100000] [--invalid-rate 0.01] [--seed 20261125]
                                            [--repeat 3] [--frictionless-rows K]
                                            [--generator auto|builtin|synthetic]

Builds the file in a temporary folder (deterministic for a seed), then validates it in two child
processes, one per validator, so that each one's peak memory (VmHWM, else `ru_maxrss`) is its own:
(a) the registry, `registry.validation.validate_path` (unbounded report, file-size limit raised);
(b) frictionless, the Python API `frictionless.validate` with the same `schemas/experiences/schema.json`
    (CSV dialect and encoding given, all errors kept).
Each process first validates the 4-row valid example (imports, geography, schema loading), then
makes `--repeat` timed runs; the best is kept (the median is shown too). It prints rows/s for each,
the ratio, and whether both found the same error set `(row, field, frictionless type)` (registry
issues without a frictionless type left out).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import importlib.util
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SCHEMA = ROOT / "schemas" / "experiences" / "schema.json"
EXAMPLE = ROOT / "schemas" / "experiences" / "exemple-valide.csv"
TEMPLATES = (ROOT / "data" / "demo" / "experiences.csv", EXAMPLE)
SYNTHETIC = ROOT / "data" / "synthetic.py"
TARGET_RATIO = 5.0
Key = tuple[int, str, str]


# ---------------------------------------------------------------- the file

def _templates() -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for path in TEMPLATES:
        if path.exists():
            with path.open(encoding="utf-8", newline="") as fh:
                rows.extend(csv.DictReader(fh))
    return rows


# One frictionless-equivalent error per invalid row (none of the known divergences, see
# tests/test_differential.py): (field, bad value); "" for a field means a change of the row's shape.
INVALID: list[tuple[str, str]] = [
    ("date_debut", "15/03/2024"), ("cout_prevu", "12,5"), ("millesime_cog", "1800"), ("statut", "fini"),
    ("code_insee_commune", "7505"), ("intitule", "x" * 201), ("resume", "court"), ("date_maj", ""),
    ("domaines_secondaires", "sante_social|"), ("siren_porteur", "12345678"), ("", "duplicate-key"),
    ("", "extra-cell"),
]


def builtin_generate(path: Path, n: int, seed: int, invalid_rate: float) -> None:
    """Rows from the schema: enum codes drawn from it, lengths within its bounds; pattern fields and
    geography (SIREN, bearer type, commune, status chain) taken from valid rows of the demo data."""
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    fields = schema["fields"]
    names = [f["name"] for f in fields]
    templates = _templates()
    rng = random.Random(seed)
    counters: dict[str, int] = {}
    linked = {"siren_porteur", "type_porteur", "code_insee_commune", "communes_concernees", "nom_porteur",
              "statut", "suite_donnee", "motif_arret", "resultat", "phase"}  # kept together (rules, geography)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(names)
        previous: list[str] = []
        for _ in range(n):
            tpl = rng.choice(templates)
            siren = tpl["siren_porteur"]
            counters[siren] = counters.get(siren, 0) + 1
            k = counters[siren]
            cells: dict[str, str] = {"id_experience": f"{siren}-{2015 + k // 1000:04d}-{k % 1000:03d}"}
            start = dt.date(2015, 1, 1) + dt.timedelta(days=rng.randrange(3650))
            cells["date_debut"] = start.isoformat()
            cells["date_fin"] = (start + dt.timedelta(days=rng.randrange(30, 900))).isoformat() \
                if tpl["date_fin"] else ""
            cells["date_maj"] = (start + dt.timedelta(days=rng.randrange(0, 1200))).isoformat()
            for f in fields:
                name = f["name"]
                if name in cells:
                    continue
                if name in linked:
                    cells[name] = tpl[name]
                else:
                    cells[name] = _value(f, tpl[name], rng)
            row = [cells[name] for name in names]
            if rng.random() < invalid_rate:
                row = _break(row, names, previous, rng)
            writer.writerow(row)
            previous = row


def _value(field: dict[str, Any], template: str, rng: random.Random) -> str:
    c = field.get("constraints", {})
    required = c.get("required", False)
    if not required and rng.random() < 0.3:
        return ""
    kind = field["type"]
    if "enum" in c:
        return rng.choice(c["enum"])
    if "enum" in field.get("listItem", {}):
        return "|".join(rng.sample(field["listItem"]["enum"], rng.randint(1, 3)))
    if kind == "integer":
        return str(rng.randint(c.get("minimum", 0), c.get("maximum", 10_000)))
    if kind == "number":
        value = rng.uniform(c.get("minimum", -50_000), 500_000)
        return str(round(value)) if rng.random() < 0.5 else f"{value:.2f}"
    if "pattern" in c:
        return template  # valid by construction: a value of a valid row
    text = template or str(field.get("example", ""))
    lo, hi = c.get("minLength", 0), min(c.get("maxLength", 300), 300)
    size = rng.randint(max(lo, min(40, len(text))), max(lo, min(hi, len(text))))
    return (text * (1 + size // max(len(text), 1)))[:size].rstrip() or text[:hi]


def _break(row: list[str], names: list[str], previous: list[str], rng: random.Random) -> list[str]:
    field, bad = rng.choice(INVALID)
    row = list(row)
    if field:
        row[names.index(field)] = bad
    elif bad == "duplicate-key" and previous:
        row[0] = previous[0]
    elif bad == "extra-cell":
        row.append("en trop")
    return row


def external_generator() -> Callable[..., Any] | None:
    """`generate(out, experiences, seed, invalid_rate)` of data/synthetic.py, when it exists."""
    if not SYNTHETIC.exists():
        return None
    spec = importlib.util.spec_from_file_location("registry_synthetic", SYNTHETIC)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, "generate", None)


def build(folder: Path, n: int, seed: int, invalid_rate: float, which: str) -> tuple[Path, str]:
    path = folder / "experiences.csv"
    generate = external_generator() if which in ("auto", "synthetic") else None
    if generate is not None:
        out = folder / "synthetic"
        out.mkdir()
        generate(out, experiences=n, seed=seed, invalid_rate=invalid_rate)
        found = sorted(out.rglob("experiences.csv"))
        if not found:
            raise SystemExit("data/synthetic.py wrote no experiences.csv")
        shutil.copyfile(found[0], path)
        return path, "data/synthetic.py"
    if which == "synthetic":
        raise SystemExit("data/synthetic.py (with generate) not found")
    builtin_generate(path, n, seed, invalid_rate)
    return path, "built-in generator (benchmarks/validate_benchmark.py)"


# ---------------------------------------------------------------- the two validators (child processes)

REGISTRY_MODES = {
    # name: (workers, keep_rows, what it is)
    "registry": (os.cpu_count() or 1, False, "as `registry validate`: all cores, report only"),
    "registry-1": (1, False, "one process, report only"),
    "registry-import": (1, True, "one process, keeping every valid row (what an import stores)"),
}


def run_registry(path: Path, mode: str = "registry") -> tuple[int, set[Key], dict[str, int]]:
    from registry.validation import Limits, validate_path
    from registry.validation.report import Report

    workers, keep_rows, _ = REGISTRY_MODES[mode]
    sub = validate_path(path, report=Report(max_per_code=10**9), keep_rows=keep_rows,
                        limits=Limits(max_bytes=1 << 34, workers=workers))
    errors: set[Key] = set()
    only: dict[str, int] = {}
    for issue in sub.report.issues:
        if issue.severity != "error":
            continue
        kind = issue.frictionless_type
        if kind is None:
            only[issue.code] = only.get(issue.code, 0) + 1
        else:
            errors.add((issue.row or 0, "" if kind == "primary-key" else issue.field or "", kind))
    return sum(sub.report.rows.values()), errors, only


def run_frictionless(path: Path, limit_rows: int | None) -> tuple[int, set[Key], dict[str, int]]:
    import frictionless
    from frictionless import Dialect, Schema
    from frictionless.formats import CsvControl

    control = CsvControl(delimiter=",", quote_char='"', double_quote=True, skip_initial_space=False)
    with frictionless.system.use_context(trusted=True):
        report = frictionless.validate(str(path), schema=Schema.from_descriptor(str(SCHEMA)), encoding="utf-8",
                                       dialect=Dialect(header_rows=[1], controls=[control]),
                                       limit_errors=10**9, limit_rows=limit_rows)
    task = report.tasks[0]
    errors = {(getattr(e, "row_number", 0) or 0, getattr(e, "field_name", "") or "", e.type) for e in task.errors}
    return task.stats.get("rows") or 0, errors, {}


def peak_rss_kib() -> int:
    """Peak resident memory of this process (VmHWM: unlike ru_maxrss, not inherited from the parent)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS


def worker(which: str, path: Path, out: Path, limit_rows: int, repeat: int) -> None:
    warm = Path(tempfile.mkdtemp()) / "experiences.csv"
    shutil.copyfile(EXAMPLE, warm)
    t0 = time.perf_counter()
    if which in REGISTRY_MODES:
        def run(p: Path) -> tuple[int, set[Key], dict[str, int]]:
            return run_registry(p, which)
    else:
        def run(p: Path) -> tuple[int, set[Key], dict[str, int]]:
            return run_frictionless(p, limit_rows or None)
    run(warm)
    warmup = time.perf_counter() - t0
    before = peak_rss_kib()
    times: list[float] = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        rows, errors, only = run(path)
        times.append(time.perf_counter() - t0)
    peak = peak_rss_kib()
    out.write_text(json.dumps({"rows": rows, "seconds": min(times), "median": statistics.median(times),
                               "warmup": warmup, "rss_before_kib": before,
                               "rss_peak_kib": peak, "errors": sorted(errors), "registry_only": only}))


def measure(which: str, path: Path, limit_rows: int, repeat: int) -> dict[str, Any]:
    out = path.parent / f"{which}.json"
    command = [sys.executable, __file__, "--worker", which, str(path), str(out), str(limit_rows), str(repeat)]
    subprocess.run(command, check=True)
    result: dict[str, Any] = json.loads(out.read_text())
    result["errors"] = {tuple(e) for e in result["errors"]}
    return result


# ---------------------------------------------------------------- report

def mib(kib: int) -> str:
    return f"{kib / 1024:.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000, help="rows of experiences.csv (default 100000)")
    parser.add_argument("--invalid-rate", type=float, default=0.01, help="share of rows with an error (0.01)")
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--frictionless-rows", type=int, default=0,
                        help="validate only the first K rows with frictionless and extrapolate its rate (0: all)")
    parser.add_argument("--generator", choices=("auto", "builtin", "synthetic"), default="auto",
                        help="auto: data/synthetic.py when it exists, else the built-in generator")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per validator; the best is kept (3)")
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        which, path, out, limit, repeat = args.worker
        worker(which, Path(path), Path(out), int(limit), int(repeat))
        return

    with tempfile.TemporaryDirectory(prefix="rex-bench-") as tmp:
        t0 = time.perf_counter()
        path, generator = build(Path(tmp), args.rows, args.seed, args.invalid_rate, args.generator)
        size = path.stat().st_size
        print(f"file: {args.rows} rows, {size / 2**20:.1f} MiB, invalid rate {args.invalid_rate}, seed {args.seed}, "
              f"{generator} ({time.perf_counter() - t0:.1f} s)")
        limit = args.frictionless_rows if 0 < args.frictionless_rows < args.rows else 0
        reg = measure("registry", path, 0, args.repeat)
        extra = {mode: measure(mode, path, 0, args.repeat) for mode in REGISTRY_MODES if mode != "registry"}
        fri = measure("frictionless", path, limit, args.repeat)

    reg_rate = reg["rows"] / reg["seconds"]
    fri_rate = fri["rows"] / fri["seconds"]
    ratio = reg_rate / fri_rate
    print(f"best of {args.repeat} timed runs each (median in brackets)")
    print(f"(a) registry     validate_path           : {reg['rows']:>7} rows in {reg['seconds']:7.2f} s "
          f"[{reg['median']:.2f}] = "
          f"{reg_rate:9.0f} rows/s; peak RSS {mib(reg['rss_peak_kib'])} (after warm-up {mib(reg['rss_before_kib'])})"
          f"  [{REGISTRY_MODES['registry'][2]}, {REGISTRY_MODES['registry'][0]} processes]")
    for mode, res in extra.items():
        rate = res["rows"] / res["seconds"]
        print(f"    {mode:<16} {REGISTRY_MODES[mode][2]}: {rate:9.0f} rows/s ({rate / fri_rate:.1f}x), "
              f"peak RSS {mib(res['rss_peak_kib'])}; same errors: {res['errors'] == reg['errors']}")
    note = f"  [rate EXTRAPOLATED from the first {limit} rows]" if limit else ""
    print(f"(b) frictionless frictionless.validate() : {fri['rows']:>7} rows in {fri['seconds']:7.2f} s "
          f"[{fri['median']:.2f}] = "
          f"{fri_rate:9.0f} rows/s; peak RSS {mib(fri['rss_peak_kib'])} (after warm-up {mib(fri['rss_before_kib'])})"
          f"{note}")
    verdict = "target met" if ratio >= TARGET_RATIO else "BELOW TARGET"
    print(f"ratio registry/frictionless: {ratio:.1f}x ({verdict}: >= {TARGET_RATIO:.0f}x)")
    print(f"warm-up (imports, schema, geography, 4-row file): registry {reg['warmup']:.2f} s, "
          f"frictionless {fri['warmup']:.2f} s")

    reg_errors, fri_errors = reg["errors"], fri["errors"]
    if limit:  # compare on the rows frictionless read (header = row 1)
        reg_errors = {e for e in reg_errors if e[0] <= limit + 1}
    same = reg_errors == fri_errors
    print(f"same error set (row, field, type): {'yes' if same else 'NO'} — {len(fri_errors)} for frictionless, "
          f"{len(reg_errors)} for the registry; registry-only issues left out: {reg['registry_only'] or 'none'}")
    for label, diff in (("only frictionless", fri_errors - reg_errors), ("only registry", reg_errors - fri_errors)):
        for e in sorted(diff)[:10]:
            print(f"  {label}: {e}")


if __name__ == "__main__":
    main()
