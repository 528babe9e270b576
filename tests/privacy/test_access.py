"""Who can read what: private files are their owner's only, the published tree is readable by
the publish group and nobody else, and the UI is reachable only through the documented proxy."""

from __future__ import annotations

import grp
import re
import stat
from pathlib import Path

import pytest
from pipelinekit import copy

from synchro_dagster.privacy.access import share_published
from synchro_dagster.settings import Settings, SettingsError

ROOT = Path(__file__).parents[2]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_warehouse_dagster_home_and_audit_trail_are_their_owners_only(ran):
    settings = Settings(data_dir=ran)
    assert mode(settings.warehouse_path) == 0o600
    assert mode(settings.warehouse_path.parent) == 0o700
    assert mode(settings.dagster_home) == 0o700
    trail = sorted(settings.audit_dir.iterdir())
    assert trail and mode(settings.audit_dir) == 0o700
    assert all(mode(p) == 0o600 for p in trail)


def test_the_published_tree_is_readable_by_the_publish_group_only(ran, tmp_path):
    data = copy(ran, tmp_path)
    group = grp.getgrgid(65534).gr_name  # nogroup: any group the test may give files to
    settings = Settings(data_dir=data, publish_group=group)
    published = data / "published"
    assert share_published(settings) == sum(p.is_file() for p in published.rglob("*")) > 0
    for path in (published, *published.rglob("*")):
        assert path.stat().st_gid == 65534, path
        if path.is_dir():
            assert mode(path) == 0o750, path
        else:
            assert mode(path) & 0o040 and not mode(path) & 0o027, path  # group reads, no more
    assert mode(settings.snapshot_path) == 0o440  # the analysts' copy stays read-only
    assert mode(settings.warehouse_path) == 0o600  # the private side is left as it was
    with pytest.raises(SettingsError, match="SYNCHRO_PUBLISH_GROUP"):
        share_published(Settings(data_dir=data, publish_group="no-such-group-here"))


def test_every_file_the_pipeline_publishes_is_closed_to_others_from_the_start(ran):
    # a run gives each published file to the group as it writes it, not at the next refresh
    files = [p for p in (ran / "published").rglob("*") if p.is_file()]
    assert {p.parent.name for p in files} >= {"public", "reports", "published"}
    assert [p for p in files if mode(p) & 0o007] == []


def test_the_ui_listens_on_localhost_and_the_proxy_example_guards_that_port():
    ui = re.search(r"^ui:.*?(?=^\S)", (ROOT / "Makefile").read_text(), re.S | re.M).group(0)
    host, port = re.search(r"-h (\S+) -p (\d+)", ui).groups()
    assert host == "127.0.0.1"
    proxy = (ROOT / "docs" / "nginx-dagster.conf").read_text(encoding="utf-8")
    assert f"proxy_pass http://{host}:{port};" in proxy
    assert re.search(r"^\s*auth_basic_user_file \S+;", proxy, re.M)
    assert re.search(r"^\s*listen 443 ssl;", proxy, re.M)
