"""The `synchro` command line."""

from __future__ import annotations

import pytest

from synchro_dagster.cli import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["generate", "--out", "x", "--start", "2025-13"], "is not a month: write it YYYY-MM"),
        (["generate", "--out", "x", "--months", "0"], "must be 1 or more"),
        (["generate", "--out", "x", "--households", "many"], "is not a whole number"),
        (["run", "--months", "2025-05:2025-01"], "the range ends before it starts"),
        (["generate"], "--out"),
    ],
)
def test_cli_refuses_bad_arguments_clearly(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
