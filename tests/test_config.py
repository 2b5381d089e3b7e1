"""Configs check themselves: every bad choice or value fails when the config is built (or the flags are
parsed), naming the flag and the valid values, before any model or accelerator exists (issue 16)."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import typing

import pytest

from rewardlab.config import (
    ConfigError,
    TrainConfig,
    add_dataclass_flags,
    config_from_args,
    flag_name,
)

CHOICE_FIELDS = {
    "objective": ("pairs", "steps", "outcome", "regression"),
    "prm800k_neutral": ("positive", "negative", "drop"),
    "pooling": ("auto", "last", "cls", "mean", "mean_all"),
    "lr_schedule": ("cosine", "linear", "constant"),
    "truncation": ("left", "right"),
    "layout": ("rewardlab", "chat_template"),
    "loss": ("bt", "plackett_luce"),
    "mixed_precision": ("auto", "bf16", "fp16", "no"),
}


def _parser(cls: type) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="t", exit_on_error=False)
    add_dataclass_flags(parser, cls)
    return parser


def test_every_literal_field_of_train_config_is_listed_here():
    hints = typing.get_type_hints(TrainConfig)
    literal = {
        f.name
        for f in dataclasses.fields(TrainConfig)
        if "Literal" in str(hints[f.name]) and f.name != "format"
    }
    assert literal == set(CHOICE_FIELDS)


@pytest.mark.parametrize("name", sorted(CHOICE_FIELDS))
def test_a_bad_choice_fails_at_construction_naming_flag_and_choices(name):
    with pytest.raises(ConfigError) as err:
        TrainConfig(**{name: "nonsense"})
    message = str(err.value)
    assert "--" + name.replace("_", "-") in message
    for choice in CHOICE_FIELDS[name]:
        assert choice in message


@pytest.mark.parametrize("name", sorted(CHOICE_FIELDS))
def test_flags_carry_the_choices_and_argparse_refuses_others(name, capsys):
    parser = argparse.ArgumentParser(prog="t")
    add_dataclass_flags(parser, TrainConfig)
    with pytest.raises(SystemExit) as stop:
        parser.parse_args(["--" + name.replace("_", "-"), "nonsense"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "--" + name.replace("_", "-") in err and all(c in err for c in CHOICE_FIELDS[name])


def test_loss_pl_is_refused_by_the_cli_with_exit_code_2():
    """`--loss pl` used to train Bradley-Terry silently (train.py reads only 'plackett_luce')."""
    done = subprocess.run(
        [sys.executable, "-m", "rewardlab", "train", "--loss", "pl"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "--loss" in done.stderr and "'bt'" in done.stderr and "'plackett_luce'" in done.stderr


def test_batch_size_zero_is_refused_by_the_cli_naming_the_flag():
    """`--batch-size 0` used to end in `range() arg 3 must not be zero` after the model was built."""
    done = subprocess.run(
        [sys.executable, "-m", "rewardlab", "train", "--batch-size", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "--batch-size must be at least 1, got 0" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("values", "flag"),
    [
        ({"batch_size": 0}, "--batch-size"),
        ({"batch_size": -3}, "--batch-size"),
        ({"grad_accum": 0}, "--grad-accum"),
        ({"max_length": 0}, "--max-length"),
        ({"epochs": 0.0}, "--epochs"),
        ({"lr": -1e-4}, "--lr"),
        ({"lr": float("nan")}, "--lr"),
        ({"eval_fraction": 1.0}, "--eval-fraction"),
        ({"eval_fraction": -0.1}, "--eval-fraction"),
        ({"warmup_ratio": 1.5}, "--warmup-ratio"),
        ({"label_smoothing": 0.5}, "--label-smoothing"),
        ({"max_steps": -1}, "--max-steps"),
        ({"lora_r": -1}, "--lora-r"),
        ({"format": "csv"}, "--format"),
        ({"format": "stepwise"}, "--format"),  # a step format with --objective pairs
        ({"objective": "steps", "data": "x.jsonl", "format": "pairs"}, "--format"),
        ({"objective": "steps", "data": "x.jsonl", "lora_r": 4}, "--lora-r"),
        ({"objective": "outcome"}, "--objective"),  # no --data
        ({"stream": True}, "--stream"),  # no --data
        ({"stream": True, "data": "x.jsonl", "objective": "steps"}, "--stream"),
    ],
)
def test_bad_values_and_combinations_fail_at_construction(values, flag):
    with pytest.raises(ConfigError, match=flag):
        TrainConfig(**values)


def test_good_configs_still_build():
    TrainConfig()
    TrainConfig(eval_fraction=0.0, label_smoothing=0.1, objective="steps", data="x.jsonl", format="prm800k")
    TrainConfig(stream=True, data="x.jsonl", loss="plackett_luce", mixed_precision="no")


def test_config_errors_are_value_errors_so_the_cli_prints_them():
    assert issubclass(ConfigError, ValueError)


def test_flags_round_trip_to_the_same_config():
    args = _parser(TrainConfig).parse_args([])
    assert config_from_args(TrainConfig, args) == TrainConfig()
    args = _parser(TrainConfig).parse_args(["--loss", "plackett_luce", "--no-shared-prefix", "--lr", "3e-5"])
    cfg = config_from_args(TrainConfig, args)
    assert (cfg.loss, cfg.shared_prefix, cfg.lr) == ("plackett_luce", False, 3e-5)


# --- the generated flags of best-of-n, overopt and ensemble train ---------------------------------------


def _verbs() -> dict[str, argparse.ArgumentParser]:
    from rewardlab.commands import bon as bon_cli

    parser = argparse.ArgumentParser(prog="rewardlab")
    sub = parser.add_subparsers(dest="command")
    bon_cli.add_parser(sub)
    return sub.choices


def test_bon_flags_are_generated_with_the_former_names_and_defaults():
    from rewardlab.bon.best_of_n import BonConfig, Sampling

    args = _verbs()["bon"].parse_args(["runs/rm", "-o", "out.jsonl"])
    cfg = config_from_args(BonConfig, args)
    assert cfg == BonConfig("runs/rm", "out.jsonl")
    assert cfg.sampling == Sampling() and cfg.prompts == "demo-pool" and cfg.cache_dir == "runs/bon-cache"
    args = _verbs()["bon"].parse_args(
        "m --output o --candidates c.jsonl --prompts p.jsonl --limit 3 --policy smollm2 --n 4 "
        "--temperature 1.5 --top-p 0.9 --max-new-tokens 8 --seed 2 --style terse --cache-dir cd "
        "--gold demo --device cpu --bf16".split()
    )
    cfg = config_from_args(BonConfig, args)
    assert cfg.sampling == Sampling("smollm2", 4, 1.5, 0.9, 8, 2, "terse")
    assert (cfg.candidates, cfg.prompts, cfg.limit, cfg.cache_dir, cfg.gold, cfg.device, cfg.bf16) == (
        "c.jsonl",
        "p.jsonl",
        3,
        "cd",
        "demo",
        "cpu",
        True,
    )


def test_bon_requires_its_output():
    with pytest.raises(SystemExit):
        _verbs()["bon"].parse_args(["runs/rm"])


def test_overopt_flags_are_generated_with_the_former_names_and_defaults():
    from rewardlab.bon.overopt import OveroptConfig

    cfg = config_from_args(OveroptConfig, _verbs()["overopt"].parse_args(["a.jsonl", "b=b.jsonl"]))
    assert cfg == OveroptConfig(["a.jsonl", "b=b.jsonl"])
    assert cfg.proxies == ["scores"] and cfg.forms == ["bon"] and cfg.n_boot == 1000 and cfg.max_n is None
    args = _verbs()["overopt"].parse_args(
        "a.jsonl --proxy mean --proxy min --lam 0.5 --max-n 8 --fit bon,rl --bootstrap 50 "
        "--out-dir d --title T --json".split()
    )
    cfg = config_from_args(OveroptConfig, args)
    assert (cfg.proxies, cfg.lam, cfg.max_n, cfg.forms, cfg.n_boot, cfg.out_dir, cfg.title) == (
        ["mean", "min"],
        0.5,
        8,
        ["bon", "rl"],
        50,
        "d",
        "T",
    )
    assert args.json


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        ("bon m -o o --n 0", "--n"),
        ("bon m -o o --top-p 1.5", "--top-p"),
        ("bon m -o o --max-new-tokens 0", "--max-new-tokens"),
        ("bon m -o o --limit -1", "--limit"),
        ("overopt a --fit bon,quadratic", "--fit"),
        ("overopt a --bootstrap 0", "--bootstrap"),
        ("overopt a --max-n 0", "--max-n"),
        ("ensemble train --k 1", "--k"),
        ("ensemble train --how seed", "--how"),
        ("ensemble train --rule median", "--rule"),
    ],
)
def test_bad_bon_overopt_and_ensemble_values_fail_naming_the_flag(argv, flag, capsys):
    from rewardlab.cli import main

    try:
        code = main(argv.split())  # a value __post_init__ refuses: main prints it and returns 2
    except SystemExit as stop:  # a choice argparse refuses: it exits 2 itself
        code = stop.code
    assert code == 2
    assert flag in capsys.readouterr().err


def test_flag_name_honours_overrides():
    from rewardlab.bon.overopt import OveroptConfig

    names = {f.name: flag_name(f) for f in dataclasses.fields(OveroptConfig)}
    assert names["forms"] == "--fit" and names["n_boot"] == "--bootstrap" and names["max_n"] == "--max-n"


@pytest.mark.parametrize(
    "schedule, mid, end", [("cosine", 0.5, 0.0), ("linear", 0.5, 0.0), ("constant", 1.0, 1.0)]
)
def test_lr_schedule_shapes_the_decay_after_warmup(schedule, mid, end):
    """--lr-schedule: the learning rate halfway through the decay and at the last step, as a share of
    the peak (cosine and linear both pass 0.5 at the middle; constant stays at the peak)."""
    import torch

    from rewardlab.training.run import make_scheduler

    cfg = TrainConfig(lr_schedule=schedule, warmup_ratio=0.0)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = make_scheduler(opt, cfg, total_steps=100)
    lrs = []
    for _ in range(100):
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(1.0)
    assert lrs[50] == pytest.approx(mid, abs=1e-6)
    assert sched.get_last_lr()[0] == pytest.approx(end, abs=1e-6)
    if schedule == "linear":  # linear and cosine differ off the middle
        assert lrs[25] == pytest.approx(0.75)
    if schedule == "cosine":
        assert lrs[25] == pytest.approx(0.5 * (1 + 0.7071067811865476), abs=1e-6)


def test_bad_lr_schedule_names_the_flag():
    with pytest.raises(ConfigError, match="--lr-schedule must be one of cosine, linear, constant"):
        TrainConfig(lr_schedule="step")
