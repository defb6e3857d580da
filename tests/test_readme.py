"""The README's examples, run as a user runs them (a real `registry` process, the demo data), in French."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")

# What a reader checks in each example's answer: (exit code, text that must be in it).
EXPECTED = {
    "demo": (0, "Données de démonstration : 43 expériences fictives chargées et indexées."),
    "search": (0, "213105554-2020-001"),
    "show": (0, '"id": "213105554-2020-001"'),
    "history": (0, "création"),
    "validate schemas/experiences/exemple-invalide-cellules.csv": (1, "colonne date_debut"),
    "validate schemas/experiences/exemple-valide.csv": (0, '"valid": true'),
    "import": (0, "4 expérience(s) : 4 créée(s)"),
    "withdraw": (0, "213105554-2020-001 retirée (révision 2)."),
    "export": (0, "Export dans export-registre"),
}
ENGLISH_LEAKS = ("Usage:", "Error:", "Traceback", "Show this message", "[default")


def examples() -> list[str]:
    block = README.split("<!-- exemples:début -->", 1)[1].split("<!-- exemples:fin -->", 1)[0]
    lines = [line.split("  #", 1)[0].strip() for line in block.splitlines()]
    return [line for line in lines if line.startswith("registry ")]


def expected(command: str) -> tuple[int, str]:
    keys = [k for k in EXPECTED if command.removeprefix("registry ").startswith(k)]
    assert keys, f"README example without an expectation in this test: {command}"
    return EXPECTED[max(keys, key=len)]


def test_readme_examples_run_and_answer_in_french(tmp_path: Path) -> None:
    (tmp_path / "schemas").symlink_to(ROOT / "schemas")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "LC_", "LANG"))}
    env["REGISTRY_HOME"] = str(tmp_path / "instance")
    commands = examples()
    assert len(commands) == len(EXPECTED)
    for command in commands:
        args = shlex.split(command)[1:]
        proc = subprocess.run([sys.executable, "-m", "registry", *args], cwd=tmp_path, env=env, text=True,
                              capture_output=True, timeout=300)
        out = proc.stdout + proc.stderr
        code, text = expected(command)
        assert proc.returncode == code, f"{command}\n{out}"
        assert text in out, f"{command}\n{out}"
        assert not any(leak in out for leak in ENGLISH_LEAKS) or "--lang en" in command, f"{command}\n{out}"
    assert (tmp_path / "export-registre" / "datapackage.json").is_file()
    assert json.loads((tmp_path / "export-registre" / "datapackage.json").read_text())["resources"]


@pytest.mark.parametrize("command", ["bash scripts/setup.sh && .venv/bin/registry demo", "bash .ci/run"])
def test_readme_shows_the_two_set_up_commands(command: str) -> None:
    assert f"```sh\n{command}\n```" in README


def test_ci_runs_the_test_command_the_readme_shows() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    command = re.search(r"^TEST_CMD=\((.+)\)$", ci, re.M)
    assert command and command.group(1) in README
    assert "bash scripts/setup.sh --test" in ci  # the same install path as the README's


def test_readme_cites_nothing_outside_the_project() -> None:
    assert "../shared" not in README
    for link in re.findall(r"\]\(([^)#]+)\)", README):
        assert (ROOT / link).exists(), link
