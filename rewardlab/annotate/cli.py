"""`rewardlab annotate ...`: the thin command layer over the annotation store, app and export.

`register(subparsers)` adds the `annotate` command to the main CLI; `python -m rewardlab.annotate`
runs the same commands on their own. Every sub-command takes `--db` (a SQLAlchemy URL or a SQLite
path; default $REWARDLAB_ANNOTATE_DB, else ./annotate.db). Each sets `func`, which returns the exit
code (0 ok, 2 bad input, with the reason on stderr).

    rewardlab annotate add-user alice --admin
    rewardlab annotate import candidates.jsonl --overlap 3
    rewardlab annotate serve                      # http://127.0.0.1:8000
    rewardlab annotate export rankings.jsonl      # + rankings.agreement.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

DEFAULT_DB = "annotate.db"
log = logging.getLogger("rewardlab.annotate")


def _out(line: str = "") -> None:
    sys.stdout.write(line + "\n")


def _store(args: argparse.Namespace) -> Any:
    from rewardlab.annotate.store import Store

    return Store(args.db)


def _password(args: argparse.Namespace) -> tuple[str, bool]:
    """(password, generated?): from stdin with --password-stdin, else a new random one."""
    from rewardlab.annotate.auth import new_token

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
        if not password:
            raise ValueError("--password-stdin: read an empty line; pipe the password in")
        return password, False
    return new_token(), True


def cmd_add_user(args: argparse.Namespace) -> int:
    password, generated = _password(args)
    user = _store(args).add_user(args.name, password, admin=args.admin)
    _out(f"added {'admin' if user.is_admin else 'annotator'} {user.name!r}")
    if generated:
        _out(f"password: {password}   (shown once; change it with set-password)")
    return 0


def cmd_set_password(args: argparse.Namespace) -> int:
    password, generated = _password(args)
    _store(args).set_password(args.name, password)
    _out(f"password changed for {args.name!r}; their open sessions are signed out")
    if generated:
        _out(f"password: {password}")
    return 0


def cmd_set_active(args: argparse.Namespace) -> int:
    _store(args).set_active(args.name, args.active)
    _out(f"{args.name!r} {'activated' if args.active else 'deactivated'}")
    return 0


def cmd_users(args: argparse.Namespace) -> int:
    for u in _store(args).users():
        flags = [f for f, on in (("admin", u.is_admin), ("inactive", not u.active)) if on]
        _out(u.name + (f" ({', '.join(flags)})" if flags else ""))
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    store = _store(args)
    changes = {k: getattr(args, k) for k in ("overlap", "allow_ties", "title", "instructions")}
    changes = {k: v for k, v in changes.items() if v is not None}
    settings = store.update_settings(**changes) if changes else store.settings()
    for key, value in asdict(settings).items():
        _out(f"{key}: {value}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from rewardlab.annotate.imports import read_tasks

    store = _store(args)
    tasks = read_tasks(args.file)
    if args.overlap is not None:
        store.update_settings(overlap=args.overlap)
    result = store.add_tasks(tasks)
    _out(
        f"{args.file}: {len(tasks)} tasks read, {result.added} added, "
        f"{result.duplicates} already present; overlap {store.settings().overlap}"
    )
    for conflict in result.conflicts:
        sys.stderr.write(f"not imported, id exists with different content: {conflict}\n")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from rewardlab.annotate.export import export_labels

    labels = _store(args).labels()
    rule = None if args.aggregate == "none" else args.aggregate
    summary = export_labels(
        labels,
        args.out,
        args.format,
        rule,
        args.min_votes,
        args.agreement,
        write_agreement=not args.no_agreement,
    )
    _out(
        f"{summary.path}: {summary.rows} {args.format} rows from {summary.labels} rankings of "
        f"{summary.tasks} tasks" + (f" (aggregated by {rule})" if rule else "")
    )
    if summary.agreement_path:
        _out(f"{summary.agreement_path}: agreement statistics")
    return 0


def cmd_progress(args: argparse.Namespace) -> int:
    p = _store(args).progress()
    _out(f"{p.tasks} tasks, {p.labels} rankings, {p.tasks_complete} tasks with {p.overlap}+ rankings")
    for u in p.users:
        _out(
            f"  {u.name:<20} done {u.done:>5}  open {u.open:>3}  skipped {u.skipped:>3}  "
            f"available {u.available:>5}"
        )
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from rewardlab.annotate.agreement import agreement_report
    from rewardlab.annotate.export import judgements

    report = agreement_report(judgements(_store(args).labels()), args.outlier_gap, args.min_comparisons)
    if args.json:
        _out(json.dumps(report.to_dict(), indent=2))
        return 0

    def fmt(x: float | None, pct: bool = False) -> str:
        return "n/a" if x is None else (f"{100 * x:.1f}%" if pct else f"{x:.3f}")

    _out(
        f"{report.labels} rankings by {report.annotators} annotators; "
        f"{report.overlapping_tasks} of {report.tasks} tasks ranked by 2+"
    )
    _out(
        f"pairwise agreement {fmt(report.pairwise_agreement, True)} over {report.comparisons} "
        f"comparisons ({report.tied_comparisons} with a tie left out)"
    )
    _out(f"Krippendorff's alpha: ordinal {fmt(report.alpha_ordinal)}, interval {fmt(report.alpha_interval)}")
    for a in report.per_annotator:
        flag = "  OUTLIER" if a.outlier else ""
        _out(
            f"  {a.annotator:<20} agreement {fmt(a.agreement, True):>6} "
            f"over {a.comparisons} comparisons{flag}"
        )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from rewardlab.annotate.app import create_app

    if args.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning(
            "serving on %s: other machines can reach the sign-in page; put it behind HTTPS "
            "and pass --secure-cookies",
            args.host,
        )
    app = create_app(_store(args), secure_cookies=args.secure_cookies)
    # Access logs stay off by default (they would record which annotator opened which task).
    uvicorn.run(app, host=args.host, port=args.port, access_log=args.access_log, log_level="info")
    return 0


def _guarded(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            code = fn(args)
            sys.stdout.flush()  # a closed pipe shows here, inside the guard, not at interpreter exit
            return code
        except (ValueError, LookupError) as e:  # DataError is a ValueError
            sys.stderr.write(f"error: {e}\n")
            return 2
        except BrokenPipeError:  # `annotate progress | head`: the reader has all it wanted
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # so the flush at exit does not fail again
            return 0
        except ModuleNotFoundError as e:
            sys.stderr.write(
                f"error: `rewardlab annotate` needs the annotate extra (missing module {e.name!r}): "
                "pip install 'rewardlab[annotate]'\n"
            )
            return 2

    run.__name__ = fn.__name__
    return run


def register(subparsers: Any) -> None:
    """Add `annotate` and its sub-commands to an argparse sub-parser collection."""
    db = argparse.ArgumentParser(add_help=False)
    db.add_argument(
        "--db",
        default=os.environ.get("REWARDLAB_ANNOTATE_DB", DEFAULT_DB),
        help="SQLAlchemy URL (postgresql://user@host/db) or SQLite file path "
        "(default: $REWARDLAB_ANNOTATE_DB, else %(default)s)",
    )
    top = subparsers.add_parser(
        "annotate",
        help="collect rankings from annotators in a web app",
        description="Collect rankings from annotators in a web app; export them as training data "
        "(docs/annotate.md).",
    )
    sub = top.add_subparsers(dest="annotate_command", metavar="COMMAND", required=True)

    def add(name: str, fn: Callable[[argparse.Namespace], int], help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[db], help=help_, description=help_)
        p.set_defaults(func=_guarded(fn))
        return p

    p = add("serve", cmd_serve, "run the annotation web app")
    p.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s, this machine only)"
    )
    p.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    p.add_argument(
        "--secure-cookies", action="store_true", help="mark cookies Secure (when served over HTTPS)"
    )
    p.add_argument("--access-log", action="store_true", help="log one line per request (no bodies)")

    p = add("import", cmd_import, "import tasks (prompt + K responses) from JSONL")
    p.add_argument(
        "file", help='JSONL rows {"prompt", "responses": [...]} or bon output {"prompt", "candidates"}'
    )
    p.add_argument("--overlap", type=int, help="also set how many annotators see each task")

    p = add("export", cmd_export, "write rankings or pairs as JSONL, with agreement statistics beside")
    p.add_argument("out", help="output JSONL path")
    p.add_argument(
        "--format",
        choices=("rankings", "pairs"),
        default="rankings",
        help="rankings (the core ranking format) or chosen/rejected pairs (default: %(default)s)",
    )
    p.add_argument(
        "--aggregate",
        choices=("none", "majority", "borda"),
        default="none",
        help="one row per annotator (none) or one per task by pairwise majority or Borda",
    )
    p.add_argument(
        "--min-votes", type=int, default=1, help="with --aggregate: skip tasks with fewer rankings"
    )
    p.add_argument("--agreement", help="agreement JSON path (default: OUT with .agreement.json)")
    p.add_argument("--no-agreement", action="store_true", help="do not write the agreement JSON")

    p = add("add-user", cmd_add_user, "add an annotator (or an admin with --admin)")
    p.add_argument("name")
    p.add_argument("--admin", action="store_true", help="may see progress and agreement and change settings")
    p.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin (default: generate)"
    )

    p = add("set-password", cmd_set_password, "change a user's password (signs their sessions out)")
    p.add_argument("name")
    p.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin (default: generate)"
    )

    for name, active in (("activate", True), ("deactivate", False)):
        p = add(name, cmd_set_active, f"{name} a user (a deactivated user cannot sign in)")
        p.add_argument("name")
        p.set_defaults(active=active)

    add("users", cmd_users, "list users")

    p = add("config", cmd_config, "show or change project settings")
    p.add_argument("--overlap", type=int, help="annotators per task (2+ for agreement statistics)")
    p.add_argument(
        "--ties",
        dest="allow_ties",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="allow equal ranks",
    )
    p.add_argument("--title", help="title shown on every page")
    p.add_argument("--instructions", help="instructions shown above the responses")

    add("progress", cmd_progress, "tasks, rankings, and each annotator's progress")

    p = add("stats", cmd_stats, "agreement statistics over tasks ranked by 2+ annotators")
    p.add_argument("--json", action="store_true", help="print the JSON written beside exports")
    p.add_argument(
        "--outlier-gap",
        type=float,
        default=0.15,
        help="flag annotators this far below the median agreement (default: %(default)s)",
    )
    p.add_argument(
        "--min-comparisons",
        type=int,
        default=10,
        help="only flag annotators with at least this many comparisons (default: %(default)s)",
    )
