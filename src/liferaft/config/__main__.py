"""``python -m liferaft.config doc [PATH]``: regenerate the settings table of the docs."""

from __future__ import annotations

import sys
from pathlib import Path

from .doc import update_doc


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "doc":
        print("usage: python -m liferaft.config doc [docs/configuration.md]", file=sys.stderr)
        return 2
    path = Path(argv[1] if len(argv) > 1 else "docs/configuration.md")
    changed = update_doc(path)
    print(f"{path}: {'updated' if changed else 'up to date'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
