"""Data flows: backup (stop-clean snapshot), restore and sync-data (one apply path), verify.

Rules from the source notes: the business containers are stopped, and verified stopped,
before a byte is read; they are started again in reverse order, always, also when the
snapshot failed. An apply keeps a safety backup first, unpacks beside the live folders,
checks every count against the manifest, swaps in, and on any failure swaps the old data
back and starts the services again.

By phase: snapshot (backup), verify (digests, drill), apply (restore), sync (sync-data);
plan holds what the steps will run and the typed state they hand on; store the backups kept
on a host.
"""

from .apply import restore
from .mask import rules_for
from .offsite import Vault, copy_flow, fetch, list_copies, vault
from .plan import DataState
from .quiesce import Quiesce
from .site import DataMismatch, Site, live_folders, site, wanted_items
from .snapshot import backup
from .store import (
    Mount,
    checked,
    discover,
    download,
    list_backups,
    prune,
    read_checks,
    read_manifest,
    upload,
)
from .sync import sync
from .verify import drill, verify_archives

__all__ = [
    "DataMismatch", "DataState", "Mount", "Quiesce", "Site", "Vault", "backup", "checked",
    "copy_flow", "discover", "download", "drill", "fetch", "list_backups", "list_copies",
    "live_folders", "prune", "read_checks", "read_manifest", "restore", "rules_for", "site",
    "sync", "upload", "vault", "verify_archives", "wanted_items",
]
