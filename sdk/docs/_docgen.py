"""What the reference-page generators of this folder share: write the page, or check it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path


def write_or_check(page: Path, render: Callable[[], str], command: str, argv: list[str]) -> int:
    """Write ``render()`` to ``page``; with ``--check`` in ``argv`` only say whether it is up to
    date (1 and a message naming ``command`` when it is not)."""
    text = render()
    if "--check" in argv:
        if not page.exists() or page.read_text() != text:
            print(f"{page} is out of date; run `{command}`", file=sys.stderr)
            return 1
        return 0
    page.write_text(text)
    return 0
