"""`python -m ferryman.lab build`: build the test-host images (every kind), the app and the
database images once."""

from __future__ import annotations

import sys

from .images import KINDS, LabError, build_app_image, ensure_db_image, ensure_host_image


def main(argv: list[str]) -> int:
    if argv[:1] != ["build"]:
        print("usage: python -m ferryman.lab build", file=sys.stderr)
        return 2
    try:
        for kind in KINDS:
            print(ensure_host_image(kind), file=sys.stderr)
        print(build_app_image("v1", "app v1"), file=sys.stderr)
        print(ensure_db_image(), file=sys.stderr)
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
