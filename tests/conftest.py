from __future__ import annotations

from pathlib import Path

import pytest
from pipelinekit import HOUSEHOLDS, MONTHS, PARAMS, SEED, run

from synchro_dagster.synthetic import generate


@pytest.fixture(scope="session")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small territory, generated and run through every month: read it, do not change it."""
    data = tmp_path_factory.mktemp("pipeline") / "data"
    generate(data, MONTHS[0], len(MONTHS), households=HOUSEHOLDS, seed=SEED, params=PARAMS)
    assert run(data, MONTHS) == 0
    return data
