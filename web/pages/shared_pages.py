"""The pages' memory shared by the processes of one server: files under `<home>/pages/<index version>/`
(`registry.shared_files`).

Each gunicorn worker keeps its own pages (`memory.py`), so each computed every page once; with this second level
a page computed by one worker is read by the others (~0.1 ms, where computing a search page takes 10-20 ms). At
most MAX_FILES pages a version (~10 KB each, compressed).
"""

from __future__ import annotations

from registry.shared_files import SharedFiles

MAX_FILES = 5000
Page = tuple[str, int]  # HTML and status


class SharedPages:
    def __init__(self, max_files: int = MAX_FILES) -> None:
        self.files = SharedFiles("pages", max_files)

    def get(self, home: str, version: object, key: tuple[object, ...]) -> Page | None:
        data = self.files.get(home, version, key)
        if data is None:
            return None
        status, _, html = data.partition(b"\n")
        try:
            return html.decode(), int(status)
        except ValueError:  # damaged: computed again
            return None

    def put(self, home: str, version: object, key: tuple[object, ...], page: Page) -> None:
        html, status = page
        self.files.put(home, version, key, f"{status}\n{html}".encode())

    def clear(self, home: str) -> None:
        self.files.clear(home)


SHARED = SharedPages()
