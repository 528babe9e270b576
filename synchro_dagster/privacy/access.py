"""Who may read what: the published tree (the analysts' snapshot, public figures, partner
feedback) is readable by one OS group, `SYNCHRO_PUBLISH_GROUP`; everything else under the data
directory (warehouse, Dagster home, key, audit trail) stays its owner's only (0600/0700, see
`settings.private_dir` and `warehouse.connect`).
"""

from __future__ import annotations

import grp
import os
import stat

from synchro_dagster.settings import Settings, SettingsError

SHARED_DIR = 0o750  # the group enters and lists, nobody else
GROUP_READ, OTHERS = 0o040, 0o007  # a file: the group reads, nobody else (owner bits kept)


def publish_gid(settings: Settings) -> int:
    """The group's id (-1: leave the group as it is, when none is set)."""
    if settings.publish_group is None:
        return -1
    try:
        return grp.getgrnam(settings.publish_group).gr_gid
    except KeyError:
        raise SettingsError(
            f"SYNCHRO_PUBLISH_GROUP={settings.publish_group!r}: no such group on this machine. "
            "Create it (groupadd) and add the analysts to it, or set another group."
        ) from None


def share_published(settings: Settings) -> int:
    """Gives the published tree to the publish group: folders 0750, files 0640. Returns the
    number of files shared."""
    root = settings.data_dir / "published"
    if not root.is_dir():
        return 0
    gid = publish_gid(settings)
    files = 0
    for path in (root, *sorted(root.rglob("*"))):
        if path.is_symlink():
            continue
        os.chown(path, -1, gid)
        if path.is_dir():
            path.chmod(SHARED_DIR)
        else:
            path.chmod((stat.S_IMODE(path.stat().st_mode) | GROUP_READ) & ~OTHERS & ~0o020)
            files += 1
    return files
