"""--reward-fn: a rule-based reward combined with the RM by sum, gate or tiebreak, in bon and serve; a hook
that fails is a per-item error naming the item, never a made-up score."""

from __future__ import annotations

import json
import math

import pytest

from rewardlab.config import ConfigError
from rewardlab.scoring.rules import (
    RewardFnError,
    RewardRuleFlags,
    RuleScorer,
    combine,
    load_reward_fn,
    rule_values,
)

EXAMPLE = "examples/gsm8k_reward.py"


def _sig(x):
    return 1 / (1 + math.exp(-x))


def test_sum_rule_arithmetic_and_none_means_no_opinion():
    assert combine([0.5, -1.0, 2.0], [1.0, None, 0.0], "sum", weight=2.0) == [2.5, -1.0, 2.0]


def test_gate_rule_arithmetic():
    out = combine([0.5, 3.0, -2.0, 1.0], [1.0, 0.0, None, -1.0], "gate", floor=-7.0)
    assert out == [0.5, -7.0, -2.0, -7.0]


def test_tiebreak_rule_arithmetic_keeps_the_rules_order_whatever_the_rm_says():
    out = combine([30.0, -30.0, 0.0, 1.0], [0.0, 1.0, None, 1.0], "tiebreak", weight=1.0)
    assert out == pytest.approx([_sig(30.0), 1 + _sig(-30.0), _sig(0.0), 1 + _sig(1.0)])
    assert out[1] > out[0]  # a correct answer the RM hates beats a wrong one it loves
    assert out[3] > out[1]  # between two correct answers the RM decides


def test_unknown_rule_and_length_mismatch_are_errors():
    with pytest.raises(ValueError, match="--reward-combine"):
        combine([1.0], [1.0], "max")
    with pytest.raises(ValueError, match="1 rewards but 2"):
        combine([1.0], [1.0, 0.0], "sum")


def _hook(tmp_path, body: str, name="reward"):
    f = tmp_path / "reward.py"
    f.write_text(f"def {name}(prompt, response):\n" + "".join(f"    {line}\n" for line in body.splitlines()))
    return str(f)


def test_a_hook_that_raises_gives_a_per_item_error(tmp_path):
    spec = _hook(tmp_path, "if 'bad' in response:\n    raise KeyError('no answer key')\nreturn 1.0")
    fn = load_reward_fn(spec)
    with pytest.raises(RewardFnError) as err:
        rule_values(fn, spec, ["p0", "second prompt"], ["fine", "bad one"])
    assert err.value.index == 1
    assert "item 1 (prompt 'second prompt'): raised KeyError" in str(err.value) and spec in str(err.value)


@pytest.mark.parametrize("value", ["'1.0'", "float('nan')", "True", "[1]"])
def test_a_hook_returning_a_non_number_is_refused(tmp_path, value):
    spec = _hook(tmp_path, f"return {value}")
    with pytest.raises(RewardFnError, match="item 0 .* must return a finite number or None"):
        rule_values(load_reward_fn(spec), spec, ["p"], ["r"])


def test_flags_are_checked_at_config_build(tmp_path):
    with pytest.raises(ConfigError, match="--reward-fn"):
        RewardRuleFlags(reward_fn=str(tmp_path / "missing.py"))
    with pytest.raises(ConfigError, match="--reward-combine"):
        RewardRuleFlags(reward_combine="max")
    with pytest.raises(ConfigError, match="--reward-weight"):
        RewardRuleFlags(reward_combine="tiebreak", reward_weight=0.0)
    with pytest.raises(ConfigError, match="--gate-floor"):
        RewardRuleFlags(gate_floor=float("nan"))
    spec = _hook(tmp_path, "return 1.0", name="check")
    with pytest.raises(ConfigError, match="has no function 'reward' .*'check'"):
        RewardRuleFlags(reward_fn=spec).load()
    assert RewardRuleFlags(reward_fn=spec + ":check").load().fn("p", "r") == 1.0


class FixedScorer:
    """An RM stand-in: the reward is the response's length, so the arithmetic is checkable."""

    card = None

    def score(self, prompts, responses, on_progress=None):
        return [float(len(r)) for r in responses]


@pytest.fixture
def gsm8k_answers(tmp_path, monkeypatch):
    f = tmp_path / "answers.jsonl"
    f.write_text(json.dumps({"question": "What is 2+3?", "answer": "2+3=5\n#### 5"}) + "\n")
    monkeypatch.setenv("GSM8K_ANSWERS", str(f))
    return f


def test_gsm8k_example_checker(gsm8k_answers):
    fn = load_reward_fn(EXAMPLE)
    assert fn("What is 2+3?", "so the answer is 5") == 1.0
    assert fn("What is 2+3?", "The answer is 6.") == 0.0
    assert (
        fn([{"role": "user", "content": "What is 2+3?"}], [{"role": "assistant", "content": "#### 5"}]) == 1.0
    )
    assert fn("Some other question", "5") is None


def test_rule_scorer_combines_with_the_rm(gsm8k_answers):
    rule = RewardRuleFlags(reward_fn=EXAMPLE, reward_combine="tiebreak", reward_weight=1.0).load()
    prompts = ["What is 2+3?"] * 3 + ["unknown"]
    responses = ["a long rambling answer is 6", "answer is 5", "it is 5", "xyz"]
    rm, values, combined = RuleScorer(FixedScorer(), rule).score_parts(prompts, responses)
    assert values == [0.0, 1.0, 1.0, None]
    assert combined == pytest.approx([v + _sig(r) for v, r in zip([0, 1, 1, 0], rm, strict=True)])
    assert max(range(3), key=lambda i: combined[i]) == 1  # correct, and the RM prefers it to "it is 5"


def test_bon_with_a_reward_fn_picks_by_the_combination(gsm8k_answers, tiny_backbone, tmp_path):
    from rewardlab.bon.best_of_n import BonConfig, run_bon
    from rewardlab.model.build import build_reward_model
    from rewardlab.model.saved import save_reward_model

    model, encoder, card = build_reward_model(tiny_backbone("bert"), max_length=64)
    save_reward_model(model, encoder, card, tmp_path / "rm")
    cands = tmp_path / "c.jsonl"
    cands.write_text(
        json.dumps({"prompt": "What is 2+3?", "responses": ["it is 6", "it is 5", "no idea"]}) + "\n"
    )
    out = tmp_path / "bon.jsonl"
    cfg = BonConfig(
        model=str(tmp_path / "rm"), output=str(out), candidates=str(cands), device="cpu",
        rules=RewardRuleFlags(reward_fn=EXAMPLE, reward_combine="gate", gate_floor=-100.0),
    )  # fmt: skip
    summary = run_bon(cfg)
    row = json.loads(out.read_text())
    assert row["rule_scores"] == [0.0, 1.0, 0.0] and row["best"] == 1
    assert row["scores"] == [-100.0, pytest.approx(row["rm_scores"][1]), -100.0]
    assert any("3/3 judged" in n for n in summary.notes)


def test_serve_returns_rule_values_and_a_failing_hook_is_a_422(tiny_backbone, tmp_path):
    from fastapi.testclient import TestClient

    from rewardlab.model.build import build_reward_model
    from rewardlab.model.saved import save_reward_model
    from rewardlab.scoring.scorer import Scorer
    from rewardlab.serve.app import ServeSettings, create_app

    model, encoder, card = build_reward_model(tiny_backbone("bert"), max_length=64)
    save_reward_model(model, encoder, card, tmp_path / "rm")
    scorer = Scorer.from_pretrained(tmp_path / "rm", device="cpu")
    spec = _hook(
        tmp_path,
        "if 'boom' in response:\n    raise ValueError('bad item')\nreturn 1.0 if '5' in response else None",
    )
    rules = RewardRuleFlags(reward_fn=spec, reward_combine="sum", reward_weight=3.0)
    with TestClient(create_app(scorer, ServeSettings(rules=rules))) as client:
        r = client.post("/get_reward", json={"query": ["it is 5", "no idea"]})
        assert r.status_code == 200, r.text
        body = r.json()
        logs = body["extra_logs"]
        assert logs["rule_reward"] == [1.0, 0.0] and logs["rule_has_opinion"] == [1.0, 0.0]
        assert body["rewards"] == pytest.approx([logs["rm_reward"][0] + 3.0, logs["rm_reward"][1]])
        r = client.post("/score", json={"texts": ["fine 5", "boom"]})
        assert r.status_code == 422
        assert "item 1" in r.text and "raised ValueError: bad item" in r.text
