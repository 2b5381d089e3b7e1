"""CLI wiring (rewardlab/cli.py, rewardlab/commands/): every command module's verbs are listed, and a verb
whose optional extra is missing stays in --help and prints the pip install line instead of argparse's
"invalid choice"."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rewardlab.cli import COMMANDS, build_parser, main

BLOCK_FASTAPI = "import sys; sys.modules['fastapi'] = None; from rewardlab.cli import main; "


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK_FASTAPI + code], capture_output=True, text=True)


def test_serve_without_its_extra_prints_the_install_line():
    done = _run("sys.exit(main(['serve', 'runs/rm', '--port', '5000']))")
    assert done.returncode != 0
    assert "pip install 'rewardlab[serve]'" in done.stderr
    assert "fastapi" in done.stderr and "invalid choice" not in done.stderr


def test_verbs_without_their_extra_stay_in_help():
    done = _run("main(['--help'])")
    assert done.returncode == 0
    listing = done.stdout
    assert "serve" in listing and "annotate" in listing and "rewardlab[serve]" in listing


def test_every_command_module_lists_the_verbs_it_adds():
    parser = build_parser()
    choices = next(a for a in parser._actions if a.dest == "command").choices
    declared = [verb for command in COMMANDS for verb in command.VERBS]
    assert sorted(choices) == sorted(declared)
    assert len(declared) == len(set(declared))


def test_unknown_flags_still_fail_for_ordinary_verbs(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["eval", "model", "data.jsonl", "--no-such-flag"])
    assert stop.value.code == 2
    assert "unrecognized arguments: --no-such-flag" in capsys.readouterr().err
