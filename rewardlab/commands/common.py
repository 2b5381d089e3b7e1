"""What several commands share: quiet library logging, the device flags, and the optional extras.

Public names only: command modules import these, never another module's private helpers.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys

EXTRAS = {
    "serve": ("fastapi", "uvicorn"),
    "annotate": ("sqlalchemy", "fastapi", "uvicorn", "jinja2", "alembic"),
}
"""Modules each optional extra of pyproject.toml installs that a command needs before it can even list
its flags; a command whose extra lacks one stays in --help and prints the install line when run."""


def quiet_libraries() -> None:
    """transformers' warnings and progress bars off, tokenizers single-threaded: the CLI reports itself."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


def add_device_flags(p: argparse.ArgumentParser, bf16: bool = True, quantize: bool = False) -> None:
    """``--device`` (one help text for every command), and ``--bf16`` / ``--quantize`` where they apply."""
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: best available).")
    if bf16:
        p.add_argument(
            "--bf16", action="store_true", help="Score under bf16 autocast (faster; tiny accuracy cost)."
        )
    if quantize:
        p.add_argument(
            "--quantize", choices=["int8"], help="CPU only: int8 dynamic quantisation of Linear layers."
        )


def missing_modules(extra: str | None) -> list[str]:
    """The modules of `extra` that are not installed (none for a command without an extra)."""
    return [m for m in EXTRAS.get(extra or "", ()) if importlib.util.find_spec(m) is None]


def install_line(extra: str) -> str:
    return f"pip install 'rewardlab[{extra}]'"


def add_needs_extra(sub: argparse._SubParsersAction, verbs: dict[str, str], extra: str) -> None:
    """List `verbs` in --help although their extra is missing; running one prints the install line."""
    for verb, help_ in verbs.items():
        p = sub.add_parser(verb, help=f"{help_} Needs: {install_line(extra)}", description=help_)
        p.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        p.set_defaults(func=needs_extra, extra=extra, accepts_any=True)


def needs_extra(args: argparse.Namespace) -> int:
    missing = ", ".join(missing_modules(args.extra))
    sys.stderr.write(
        f"rewardlab {args.command}: needs the [{args.extra}] extra ({missing} not installed): "
        f"{install_line(args.extra)}\n"
    )
    return 1
