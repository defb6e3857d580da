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


def healthz(base: str, wait: float = 30) -> tuple[dict[str, str], bytes]:
    """The headers and body of GET /healthz, once the server answers (within `wait` seconds)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            with urllib.request.urlopen(base + "healthz", timeout=2) as resp:
                return dict(resp.headers), resp.read()
        except OSError:
            assert time.monotonic() < deadline, "server did not answer"
            time.sleep(0.2)


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
    assert "3 expérience(s)" in run(home, "index", "rebuild").stdout
    assert run(home, "index", "check").stdout.strip() == "L'index et la base concordent."
    assert run(home, "index", "similar").stdout.strip().endswith("(3 liste(s) faite(s)).")
    assert run(home, "index", "similar").stdout.strip().endswith("(0 liste(s) faite(s)).")
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
        _headers, body = healthz(f"http://127.0.0.1:{port}/")
        assert json.loads(body) == {"status": "ok", "schema_current": True}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _serve_until_url(argv: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines: list[str] = []
    while not any("http://" in line for line in lines):
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
    return proc, lines


def test_serve_takes_the_next_free_port_when_the_default_is_taken(tmp_path: Path) -> None:
    import socket

    home = tmp_path / "instance"
    env = {**os.environ, "REGISTRY_HOME": str(home)}
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        # a port given with --port: a French error that names --port, nothing served
        refused = run(home, "serve", "--port", str(port), ok=False)
        assert refused.returncode == 1 and "déjà utilisé" in refused.stderr and "--port" in refused.stderr
        # the default port taken (the default moved onto the busy port, as 5000 would be): the next free one
        code = ("from registry.cli import cli, load_plugins; load_plugins(cli); "
                f"cli.main(['serve'], prog_name='registry', default_map={{'serve': {{'port': {port}}}}})")
        proc, lines = _serve_until_url([sys.executable, "-c", code], env)
        try:
            assert f"Le port {port} est occupé" in "".join(lines), lines
            url = lines[-1].split("Registre en ligne : ", 1)[1].split()[0]
            assert url.startswith("http://127.0.0.1:") and url != f"http://127.0.0.1:{port}/"
            headers, _body = healthz(url)
            assert headers["Server"] == "registre"  # no server name or Python version
            assert headers["X-Frame-Options"] == "DENY"
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    assert (home / "secret_key").stat().st_mode & 0o077 == 0  # the development key is the instance's own


def test_create_app_from_the_environment_needs_a_secret_key(tmp_path: Path) -> None:
    """The production line of the README: `gunicorn 'web.app:create_app()'`."""
    code = "from web.app import create_app; app = create_app(); print(app.url_map.bind('x').match('/api/search'))"
    env = {**os.environ, "REGISTRY_HOME": str(tmp_path / "instance")}
    env.pop("REGISTRY_SECRET_KEY", None)
    missing = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert missing.returncode != 0 and "REGISTRY_SECRET_KEY manquante" in missing.stderr
    env["REGISTRY_SECRET_KEY"] = "x" * 64
    ok = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "api.search" in ok.stdout, ok.stderr


def test_demo_then_import_and_schema_check_for_real(tmp_path: Path) -> None:
    home = tmp_path / "instance"
    out = run(home, "demo", "--no-serve").stdout
    assert "43 expériences fictives chargées et indexées" in out
    assert "43 expérience(s) : 0 créée(s), 0 mise(s) à jour, 0 rétablie(s), 43 inchangée(s)." in run(
        home, "import", "data/demo").stdout
    assert run(home, "schema", "check").stdout.strip() == "Fichiers générés à jour."


def test_the_first_registry_admin_is_created_from_the_command_line(tmp_path: Path) -> None:
    from registry.actions import accounts
    from registry.config import load_settings
    from registry.store import Registry

    home = tmp_path / "instance"
    env = {**os.environ, "REGISTRY_HOME": str(home)}
    env.pop("REGISTRY_DATABASE_URL", None)
    args = [sys.executable, "-m", "registry", "account", "create", "chef@ville.example", "--name", "Chef", "--admin"]
    done = subprocess.run(args, input="un-mot-de-passe-long\nun-mot-de-passe-long\n", env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and "Créé : chef@ville.example (administrateur du registre)." in done.stdout
    again = subprocess.run(args, input="un-mot-de-passe-long\nun-mot-de-passe-long\n", env=env, capture_output=True,
                           text=True, timeout=120)
    assert again.returncode == 1 and "Erreur : Un compte existe déjà" in again.stderr
    reg = Registry(load_settings(home=str(home)))
    user = accounts.authenticate(reg, "chef@ville.example", "un-mot-de-passe-long")
    assert user is not None and user.is_registry_admin
    assert accounts.authenticate(reg, "chef@ville.example", "mauvais") is None
