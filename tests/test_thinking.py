"""--strip-thinking: reasoning traces never reach the reward model, in training, scoring and serving alike;
the card makes a trained model strip without the flag; an unterminated trace is counted, never silent."""

from __future__ import annotations

import json
import logging

import pytest

from rewardlab.config import ConfigError, TrainConfig
from rewardlab.data.thinking import ThinkingFlags, ThinkingStripper, strip_trace, use_thinking

TRACE = "<think>Let me think about whether the answer is long and very detailed and polite.</think>\n\n"
ANSWER = " Thanks for the question, here is good help with bread."


@pytest.mark.parametrize(
    ("text", "answer", "found", "unterminated"),
    [
        ("plain answer", "plain answer", False, False),
        ("<think>a b</think>  Answer", "Answer", True, False),
        ("A <think>1</think>B <think>2</think>C", "A B C", True, False),
        ("reasoning only closed</think> Answer", "Answer", True, False),  # the template opened it
        ("<think>ran out of tokens", "", True, True),
        ("Draft. <think>ran out", "Draft.", True, True),
        ("<think>x</think>Done<think>again", "Done", True, True),
    ],
)
def test_strip_rules(text, answer, found, unterminated):
    assert strip_trace(text, "<think>", "</think>") == (answer, found, unterminated)


def test_custom_delimiters_and_chat_messages_strip_only_assistant_content():
    s = ThinkingStripper("[R]", "[/R]")
    msgs = [
        {"role": "user", "content": "[R]user text stays[/R] q"},
        {"role": "assistant", "content": "[R]hidden[/R]shown"},
    ]
    out = s.strip(msgs)
    assert out[0]["content"] == msgs[0]["content"] and out[1]["content"] == "shown"
    assert msgs[1]["content"] == "[R]hidden[/R]shown"  # the input is not modified


@pytest.mark.parametrize(
    ("kw", "flag"),
    [({"think_open": ""}, "--think-open"), ({"think_close": " "}, "--think-close"),
     ({"think_open": "<t>", "think_close": "<t>"}, "--think-open")],
)  # fmt: skip
def test_bad_delimiters_fail_at_config_build_naming_the_flag(kw, flag):
    with pytest.raises(ConfigError, match=flag):
        ThinkingFlags(strip_thinking=True, **kw)
    with pytest.raises(ConfigError, match=flag):
        TrainConfig(strip_thinking=True, **kw)


@pytest.fixture(scope="module")
def model_dir(tiny_backbone, tmp_path_factory):
    from rewardlab.model.build import build_reward_model
    from rewardlab.model.saved import save_reward_model

    model, encoder, card = build_reward_model(tiny_backbone("llama"), max_length=96)
    path = tmp_path_factory.mktemp("think") / "rm"
    save_reward_model(model, encoder, card, path)
    return str(path)


def test_a_trace_changes_the_reward_and_does_not_with_the_flag(model_dir):
    from rewardlab.scoring.scorer import Scorer

    scorer = Scorer.from_pretrained(model_dir, device="cpu")
    prompt = "Human: help me with bread?\n\nAssistant:"
    with_trace, without = scorer.score([prompt, prompt], [TRACE + ANSWER.lstrip(), ANSWER.lstrip()])
    assert abs(with_trace - without) > 1e-4  # the trace moves the reward of the same answer
    stripper = use_thinking(scorer, ThinkingFlags(strip_thinking=True))
    with_trace, without = scorer.score([prompt, prompt], [TRACE + ANSWER.lstrip(), ANSWER.lstrip()])
    assert with_trace == pytest.approx(without, abs=1e-6)
    assert (stripper.responses, stripper.stripped, stripper.unterminated) == (2, 1, 0)


def test_an_unterminated_trace_scores_as_the_unfinished_answer_and_is_counted(model_dir, caplog):
    from rewardlab.scoring.scorer import Scorer

    scorer = Scorer.from_pretrained(model_dir, device="cpu")
    stripper = use_thinking(scorer, ThinkingFlags(strip_thinking=True))
    with caplog.at_level(logging.WARNING, logger="rewardlab.data.thinking"):
        cut, empty = scorer.score(["q", "q"], ["<think>I was still thinking about", ""])
    assert cut == pytest.approx(empty, abs=1e-6)  # everything after <think> dropped: an empty answer
    assert stripper.unterminated == 1
    assert "unterminated <think> trace" in caplog.text
    assert "1 unterminated" in stripper.line()


def test_training_with_the_flag_records_it_and_the_scorer_strips_without_it(tiny_backbone, tmp_path):
    from rewardlab.model.saved import ModelCard
    from rewardlab.scoring.scorer import Scorer
    from rewardlab.training.run import train

    rows = [
        {"prompt": f"help {i}?", "chosen": TRACE + ANSWER, "rejected": "<think>hm</think> No."}
        for i in range(8)
    ]
    data = tmp_path / "d.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "out"
    cfg = TrainConfig(
        backbone=tiny_backbone("bert"), data=str(data), output_dir=str(out), max_length=64, epochs=1,
        eval_fraction=0.0, strip_thinking=True, think_open="<think>", think_close="</think>",
    )  # fmt: skip
    result = train(cfg)
    assert any(
        "strip-thinking" in line and "16 of 16 responses held a trace" in line for line in result.data_lines
    )
    card = ModelCard.load(out)
    assert card.strip_thinking and (card.think_open, card.think_close) == ("<think>", "</think>")
    scorer = Scorer.from_pretrained(out, device="cpu")  # no flag: the card says to strip
    a, b = scorer.score(["q", "q"], [TRACE + "Answer", "Answer"])
    assert a == pytest.approx(b, abs=1e-6)
    assert scorer.encoder.thinking.stripped == 1


def test_eval_command_takes_the_flag(model_dir, tmp_path, capsys):
    from rewardlab.cli import main

    rows = [{"prompt": "q", "chosen": TRACE + "Good answer", "rejected": "<think>never closed"}]
    data = tmp_path / "e.jsonl"
    data.write_text(json.dumps(rows[0]) + "\n")
    assert (
        main(["eval", model_dir, str(data), "--strip-thinking", "--device", "cpu", "--bootstrap", "10"]) == 0
    )
    out = capsys.readouterr()
    said = " ".join((out.out + out.err).split())  # rich wraps lines
    assert "2 of 2 responses held a trace, 1 unterminated" in said
