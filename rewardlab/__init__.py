"""rewardlab: reward modeling for RLHF.

The package is laid out by stage (docs/architecture.md): commands/ -> training/ serve/ bon/ diagnose/
drift/ prm/ -> scoring/ -> model/ demo/ annotate/ -> data/ -> config, progress, losses, page.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from typing import Any

__version__ = "0.1.0"


def moved(old: str, homes: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for a path that moved: each name in `homes` (name -> new module) still
    resolves from `old`, with a DeprecationWarning naming the new import; kept for one release."""

    def __getattr__(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {old!r} has no attribute {name!r}")
        new = homes[name]
        warnings.warn(
            f"{old}.{name} moved to {new}.{name}; import it from there ({old} goes away in the next release)",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(new), name)

    return __getattr__
