"""The `registry` command as a user runs it: a real process, a real instance folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from registry.paths import SCHEMAS_DIR
from tests.helpers import csv_bytes, example
from tests.services import free_port

PARIS = "217500016-2023-001"
COMMANDS = ["init", "validate", "import", "export", "serve", "demo", "show", "history", "diff", "withdraw",
            "schema", "index", "search"]


def run(home: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REGISTRY_HOME": str(home)}
    env.pop("REGISTRY_DATABASE_URL", None)
    proc = subprocess.run([sys.executable, "-m", "registry", *args], capture_output=True, text=True, env=env,
                          timeout=300)
    if ok:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_everywhere(tmp_path: Path, command: str | None) -> None:
    out = run(tmp_path, *([command] if command else []), "--help").stdout
    assert out.startswith("Utilisation : registry") and "Affiche cette aide et quitte." in out
    assert "Usage" not in out and "Show this" not in out and "[default" not in out
    if command is None:
        for name in COMMANDS:
            assert name in out


def test_validate_exit_codes_and_formats(tmp_path: Path) -> None:
    good = run(tmp_path, "validate", str(SCHEMAS_DIR / "datapackage.json"))
    assert "Valide." in good.stdout
    bad = run(tmp_path, "validate", str(SCHEMAS_DIR / "experiences" / "exemple-invalide-cellules.csv"), ok=False)
    assert bad.returncode == 1 and "ligne 3, colonne date_debut" in bad.stdout
    as_json = run(tmp_path, "validate", "--format", "json", "--lang", "en",
                  str(SCHEMAS_DIR / "experiences" / "exemple-invalide-cellules.csv"), ok=False)
    data = json.loads(as_json.stdout)
    assert data["valid"] is False and data["error_count"] == 12
    assert any(i["code"] == "type-error" and "YYYY-MM-DD" in i["message"] for i in data["issues"])
    missing = run(tmp_path, "validate", str(tmp_path / "nope.csv"), ok=False)
    assert missing.returncode == 1 and "introuvable" in missing.stdout


def test_import_history_diff_withdraw_export(tmp_path: Path) -> None:
    home = tmp_path / "instance"
    run(home, "init")
    out = run(home, "import", str(SCHEMAS_DIR / "datapackage.json"), "--actor", "test").stdout
    assert "4 expérience(s) : 4 créée(s)" in out
    again = run(home, "import", str(SCHEMAS_DIR / "datapackage.json")).stdout
    assert "4 inchangée(s)" in again
    changed = tmp_path / "experiences.csv"
    changed.write_bytes(csv_bytes([{**example(PARIS), "statut": "en_pause"}]))
    assert "1 mise(s) à jour" in run(home, "import", str(changed)).stdout
    hist = run(home, "history", PARIS).stdout.splitlines()
    assert hist[0].split() == ["Rév.", "Date", "(UTC)", "Action", "Canal", "Auteur", "Source", "Empreinte"]
    assert len(hist) == 4 and "création" in hist[2] and "test" in hist[2] and "mise à jour" in hist[3]
    assert "ligne de commande" in hist[2]
    diff = run(home, "diff", PARIS, "1", "2").stdout
    assert "statut" in diff and "'en_pause'" in diff
    shown = json.loads(run(home, "show", PARIS).stdout)
    assert shown["record"]["experiences"]["statut"] == "en_pause" and shown["territory"]["nom"] == "Paris"
    short = run(home, "withdraw", PARIS, "--reason", "court", ok=False)
    assert short.returncode != 0 and "10 caractères" in short.stderr
    run(home, "withdraw", PARIS, "--reason", "Publiée deux fois par erreur.")
    export = run(home, "export", str(tmp_path / "out")).stdout
    assert "experiences : 3" in export
    assert (tmp_path / "out" / "datapackage.json").exists()
    found = run(home, "search", "éclairages").stdout
    assert found.startswith("1 résultat(s)\nID") and "213502388-2024-001" in found
    assert run(home, "search", "--filter", "statut=abandonne").stdout.startswith("1 résultat(s)")
    assert "3 expérience(s)" in run(home, "index", "--rebuild").stdout
    unknown = run(home, "show", "000000000-0000-000", ok=False)
    assert unknown.returncode != 0 and "inconnue" in unknown.stderr


def test_refused_import_stores_nothing(tmp_path: Path) -> None:
    home = tmp_path / "instance"
    run(home, "import", str(SCHEMAS_DIR / "datapackage.json"))
    bad = run(home, "import", str(SCHEMAS_DIR / "experiences" / "exemple-invalide-cellules.csv"), ok=False)
    assert bad.returncode == 1 and "Rien n'a été enregistré." in bad.stderr
    assert len(run(home, "history", PARIS).stdout.splitlines()) == 3  # header, rule, one revision


def test_serve_prints_its_url_and_serves(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "REGISTRY_HOME": str(tmp_path / "instance")}
    proc = subprocess.Popen([sys.executable, "-m", "registry", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in line
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                    assert json.load(resp) == {"status": "ok", "schema_current": True}
                    break
            except OSError:
                assert time.monotonic() < deadline, "server did not answer"
                time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
