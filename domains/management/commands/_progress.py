"""A progress bar for long-running commands: on a terminal only, on stderr."""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm


def progress_bar(total: int | None, desc: str) -> Any:
    return tqdm(total=total, desc=desc, unit="domain", file=sys.stderr,
                disable=not sys.stderr.isatty(), leave=False)
