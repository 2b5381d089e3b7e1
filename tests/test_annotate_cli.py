"""`rewardlab annotate ...` end to end through its argparse layer (`python -m rewardlab.annotate`)."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from rewardlab.annotate import auth
from rewardlab.annotate.__main__ import main
from rewardlab.annotate.cli import register
from rewardlab.annotate.store import Store

COMMANDS = [
    "serve",
    "import",
    "export",
    "add-user",
    "set-password",
    "activate",
    "deactivate",
    "users",
    "config",
    "progress",
    "stats",
]


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "SCRYPT_N", 2**10)


def run(capsys: pytest.CaptureFixture, *argv: str, stdin: str = "") -> tuple[int, str, str]:
    import sys

    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        rc = main(list(argv))
    finally:
        sys.stdin = old
    out, err = capsys.readouterr()
    return rc, out, err


def test_register_adds_annotate_with_every_command() -> None:
    parser = argparse.ArgumentParser(prog="rewardlab")
    register(parser.add_subparsers(dest="command"))
    for name in COMMANDS:
        extra = {"import": ["f.jsonl"], "export": ["o.jsonl"]}.get(name, [])
        extra += ["alice"] if name in ("add-user", "set-password", "activate", "deactivate") else []
        args = parser.parse_args(["annotate", name, *extra, "--db", "x.db"])
        assert callable(args.func) and args.db == "x.db"
    serve = parser.parse_args(["annotate", "serve"])
    assert (serve.host, serve.port) == ("127.0.0.1", 8000)  # loopback unless asked otherwise


def test_cli_round_trip(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    db = str(tmp_path / "cli.db")
    rc, out, _ = run(capsys, "add-user", "boss", "--admin", "--db", db)
    assert rc == 0 and "added admin 'boss'" in out and "password: " in out
    generated = out.split("password: ")[1].split()[0]
    for name in ("alice", "bob"):
        assert run(capsys, "add-user", name, "--password-stdin", "--db", db, stdin=f"{name}-pw\n")[0] == 0
    rc, _, err = run(capsys, "add-user", "alice", "--password-stdin", "--db", db, stdin="x\n")
    assert rc == 2 and "already exists" in err

    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(
        "".join(
            json.dumps({"id": f"q{i}", "prompt": f"p{i}", "responses": ["a", "b", "c"]}) + "\n"
            for i in range(2)
        )
    )
    rc, out, _ = run(capsys, "import", str(tasks), "--overlap", "2", "--db", db)
    assert rc == 0 and "2 added" in out and "overlap 2" in out
    assert "0 added, 2 already present" in run(capsys, "import", str(tasks), "--db", db)[1]
    rc, out, _ = run(capsys, "config", "--no-ties", "--title", "Poems", "--db", db)
    assert "allow_ties: False" in out and "title: Poems" in out and "overlap: 2" in out

    store = Store(db)
    assert store.authenticate("boss", generated) is not None
    rankings = {"alice": [1, 2, 3], "bob": [1, 3, 2]}
    for user in store.users():
        if user.name in rankings:
            while (view := store.next_assignment(user.id)) is not None:
                by_original = rankings[user.name]
                store.submit(user.id, view.id, [by_original[i] for i in view.display_order])

    rc, out, _ = run(capsys, "progress", "--db", db)
    assert "2 tasks, 4 rankings, 2 tasks with 2+ rankings" in out
    rc, out, _ = run(capsys, "stats", "--json", "--db", db)
    report = json.loads(out)
    # Per task alice/bob agree on (0,1) and (0,2), not (1,2): 4 of 6 over the two tasks.
    assert report["pairwise_agreement"] == pytest.approx(4 / 6) and report["overlapping_tasks"] == 2
    assert "pairwise agreement 66.7%" in run(capsys, "stats", "--db", db)[1]

    rc, out, _ = run(capsys, "export", "labels.jsonl", "--db", db)
    assert rc == 0 and "4 rankings rows" in out and "labels.agreement.json" in out
    rows = [json.loads(line) for line in (tmp_path / "labels.jsonl").read_text().splitlines()]
    assert [(r["id"], r["annotator"], r["ranking"]) for r in rows] == [
        ("q0", "alice", [1, 2, 3]),
        ("q0", "bob", [1, 3, 2]),
        ("q1", "alice", [1, 2, 3]),
        ("q1", "bob", [1, 3, 2]),
    ]
    run(capsys, "export", "agg.jsonl", "--aggregate", "borda", "--no-agreement", "--db", db)
    # Borda over [1,2,3] and [1,3,2]: points [2+2, 1+0, 0+1] = [4, 1, 1] -> [1, 2, 2].
    assert [json.loads(x)["ranking"] for x in (tmp_path / "agg.jsonl").read_text().splitlines()] == [
        [1, 2, 2]
    ] * 2
    assert not (tmp_path / "agg.agreement.json").exists()
    run(capsys, "export", "pairs.jsonl", "--format", "pairs", "--db", db)
    assert len((tmp_path / "pairs.jsonl").read_text().splitlines()) == 12

    rc, out, _ = run(capsys, "deactivate", "bob", "--db", db)
    assert rc == 0 and store.authenticate("bob", "bob-pw") is None
    assert "bob (inactive)" in run(capsys, "users", "--db", db)[1]
    rc, out, _ = run(capsys, "set-password", "bob", "--password-stdin", "--db", db, stdin="new-pw\n")
    run(capsys, "activate", "bob", "--db", db)
    assert store.authenticate("bob", "new-pw") is not None


def test_cli_errors_name_the_problem(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    db = str(tmp_path / "e.db")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "p", "responses": ["a", "b"]}\n{"prompt": "p", "responses": "ab"}\n')
    rc, _, err = run(capsys, "import", str(bad), "--db", db)
    assert rc == 2 and f"{bad}:2:" in err and "'responses'" in err
    rc, _, err = run(capsys, "set-password", "ghost", "--password-stdin", "--db", db, stdin="x\n")
    assert rc == 2 and "no user named 'ghost'" in err
    rc, _, err = run(capsys, "config", "--overlap", "0", "--db", db)
    assert rc == 2 and "overlap must be an integer >= 1" in err
