"""Data: consistent snapshots of volumes and folders, kept on the servers, and their apply path."""
