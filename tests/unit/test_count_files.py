"""The file and byte count every archive is checked by, run by the local shell as a host runs
it (Debian's awk is mawk, which prints sums from 2^31 on as 3e+09 with `print`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from ferryman.data import archive as ar


def _count(folder: Path) -> str:
    script = ar._COUNT_FN + 'count_files "$1"'
    return subprocess.run(["sh", "-c", script, "count", str(folder)], capture_output=True,
                          text=True, check=True).stdout.strip()


def test_a_folder_over_2_gib_is_counted_in_plain_digits(tmp_path: Path) -> None:
    with (tmp_path / "big").open("wb") as fh:
        fh.truncate(3_000_000_000)  # sparse: the apparent size is what is counted
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "small").write_bytes(b"12345")
    assert _count(tmp_path) == "2 3000000005"


def test_an_empty_folder_and_a_name_with_a_newline(tmp_path: Path) -> None:
    assert _count(tmp_path) == "0 0"
    (tmp_path / "two\nlines").write_bytes(b"x")
    assert _count(tmp_path) == "1 1"
