"""Sizes as people read them, one way everywhere (terminal, doctor, dashboard)."""

from __future__ import annotations


def human_bytes(n: float | None) -> str:
    """1024-based with one decimal: 1.9 MB; '?' when unknown."""
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"
