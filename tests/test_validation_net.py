"""Network reads live in registry/net.py, not in validation: fetch_url and validate_url."""

from __future__ import annotations

import ast
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from registry.net import FetchError, fetch_url, validate_url
from registry.validation import Limits, validate_path
from tests.helpers import csv_bytes, example

VALIDATION = Path(__file__).resolve().parents[1] / "registry" / "validation"


class _Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/loop"):
            n = int(self.path.removeprefix("/loop") or 0)
            self.send_response(302)
            self.send_header("Location", f"/loop{n + 1}")
            self.end_headers()
        elif self.path == "/to-ftp":
            self.send_response(302)
            self.send_header("Location", "ftp://127.0.0.1/x.csv")
            self.end_headers()
        elif self.path == "/hop":
            self.send_response(302)
            self.send_header("Location", "/experiences.csv")
            self.end_headers()
        else:
            super().do_GET()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "experiences.csv").write_bytes(csv_bytes([example()]))
    (tmp_path / "big.csv").write_bytes(b"x" * 5000)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             lambda *a: _Handler(*a, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_fetch_url_gives_the_body_and_a_name(served: str) -> None:
    data, name = fetch_url(f"{served}/experiences.csv?x=1", max_bytes=10**6)
    assert name == "experiences.csv" and data == csv_bytes([example()])
    assert fetch_url(f"{served}/hop", max_bytes=10**6)[1] == "experiences.csv"  # the name after the redirect


@pytest.mark.parametrize(("path", "said"), [
    ("/missing.csv", "erreur HTTP 404"), ("/loop0", "plus de 3 redirections"),
    ("/to-ftp", "http:// et https://"),
])
def test_fetch_url_errors_are_french_issues(served: str, path: str, said: str) -> None:
    with pytest.raises(FetchError) as caught:
        fetch_url(served + path, max_bytes=10**6)
    assert caught.value.issue.code == "unreadable-file" and said in caught.value.issue.message()


def test_fetch_url_refuses_other_schemes_and_oversize(served: str) -> None:
    with pytest.raises(FetchError, match="http:// et https://"):
        fetch_url("file:///etc/passwd", max_bytes=10**6)
    with pytest.raises(FetchError) as caught:
        fetch_url(f"{served}/big.csv", max_bytes=1000)
    assert caught.value.issue.code == "file-too-large"


def test_validate_url_and_validate_path_on_a_url(served: str) -> None:
    assert validate_url(f"{served}/experiences.csv").valid
    assert validate_path(f"{served}/experiences.csv", limits=Limits(max_errors=3)).valid
    sub = validate_url(f"{served}/big.csv", limits=Limits(max_bytes=1000))
    assert [i.code for i in sub.report.errors()] == ["file-too-large"]


def test_validation_imports_no_network_module() -> None:
    for path in VALIDATION.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert name.split(".")[0] not in ("urllib", "socket", "http", "requests"), (path.name, name)
