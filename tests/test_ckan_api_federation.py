"""Federation: registry A harvests registry B through B's CKAN API with the project's own harvester
(harvesters/, a `ckan` source) and ends with the same experiences, record for record, each revision's
provenance pointing at B. Both registries are real: B serves on 127.0.0.1, A is a fresh database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from registry.actions import Caller, catalog, experiences
from registry.actions import harvest as harvest_actions
from registry.config import load_settings
from registry.store import Registry
from tests.test_opendata import DEMO_COUNT, PARIS, LiveServer, serve


@pytest.fixture(scope="module")
def registry_b(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Registry, LiveServer]]:
    yield from serve(None, tmp_path_factory.mktemp("registry-b") / "instance")


def test_registry_a_harvests_registry_b_and_ends_with_the_same_experiences(
        registry_b: tuple[Registry, LiveServer], tmp_path: Path) -> None:
    from harvesters.run import run_source

    reg_b, live = registry_b
    reg_a = Registry(load_settings(home=str(tmp_path / "registry-a")))
    reg_a.migrate()
    try:
        operator = Caller.operator()
        harvest_actions.add_source(reg_a, operator, "registre-b", live.url + "/", "ckan",
                                   allow_private_network=True)  # B listens on 127.0.0.1
        job = run_source(reg_a, operator, "registre-b")
        assert job.status == "done", job.to_dict()
        anonymous = Caller.anonymous()
        ids_b = catalog.package_list(reg_b, anonymous)
        assert len(ids_b) == DEMO_COUNT + 1
        assert catalog.package_list(reg_a, anonymous) == ids_b
        for exp_id in ids_b:
            a, b = experiences.get(reg_a, anonymous, exp_id), experiences.get(reg_b, anonymous, exp_id)
            assert a.record == b.record, exp_id  # every table, every cell, the hostile record included
            last = experiences.history(reg_a, anonymous, exp_id)[-1]
            assert last.channel == "harvest" and (last.source_url or "").startswith(live.url), last
        assert experiences.get(reg_a, anonymous, PARIS).main["intitule"].startswith("Capteurs <script>")
        again = run_source(reg_a, operator, "registre-b")  # nothing changed in B: nothing written in A
        assert again.status == "done", again.to_dict()
        assert all(len(experiences.history(reg_a, anonymous, i)) == 1 for i in ids_b)
    finally:
        reg_a.close()
