"""rewardlab.judge with tiny random causal LMs built in-process: the logit arithmetic against hand
computations, order averaging against an injected position bias, the cache, template versioning, and the
judge taken unchanged by diagnose, bon, drift and serve."""

from __future__ import annotations

import json
import math

import pytest

from rewardlab.judge.config import JudgeConfig, is_judge, load_judge_config, save_judge_config
from rewardlab.judge.ratings import (
    JudgeItemError,
    combine_orders,
    expected_rating,
    first_wins,
    label_logprobs,
    parse_choice,
    parse_rating,
    tree_prefixes,
)
from rewardlab.judge.templates import load_template, parse_template

# --- the arithmetic, by hand -----------------------------------------------------------------------------


def test_label_tree_charges_a_prefix_label_for_stopping():
    """Labels "1" = (a,), "10" = (a, b), "2" = (c,). After the context P(a) = 0.5, P(c) = 0.25; after
    "1", P(b) = 0.4. So P("1") = 0.5 · 0.6 = 0.3, P("10") = 0.5 · 0.4 = 0.2, P("2") = 0.25."""
    tails = {"1": ("a",), "10": ("a", "b"), "2": ("c",)}
    assert tree_prefixes(tails) == [(), ("a",)]
    lp = label_logprobs(tails, {(): {"a": math.log(0.5), "c": math.log(0.25)}, ("a",): {"b": math.log(0.4)}})
    assert math.exp(lp["1"]) == pytest.approx(0.3)
    assert math.exp(lp["10"]) == pytest.approx(0.2)
    assert math.exp(lp["2"]) == pytest.approx(0.25)
    # expected rating over the labels, renormalised: (1·0.3 + 10·0.2 + 2·0.25) / 0.75 = 2.8 / 0.75
    values = {"1": 1.0, "10": 10.0, "2": 2.0}
    assert expected_rating(lp, values) == pytest.approx(2.8 / 0.75)


def test_expected_rating_with_no_label_is_an_error_not_a_score():
    with pytest.raises(JudgeItemError):
        expected_rating({"1": float("-inf"), "2": float("-inf")}, {"1": 1.0, "2": 2.0})


def test_order_averaging_cancels_a_constant_position_bias_exactly():
    sig = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    for d in (-2.0, -0.3, 0.0, 0.7, 3.0):
        for b in (-1.5, 0.0, 0.8, 4.0):
            # x shown first: log-odds d + b; x shown second: d - b (the bias favours the first slot)
            assert combine_orders(sig(d + b), sig(d - b)) == pytest.approx(sig(d))
    # averaging probabilities instead would not cancel it
    assert (sig(1 + 3) + sig(1 - 3)) / 2 != pytest.approx(sig(1.0))
    assert combine_orders(1.0, 0.0, soft=False) == 0.5  # parsed text votes: the mean
    assert first_wins(math.log(0.3), math.log(0.1)) == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("reply", "rating"), [("7", 7.0), ("Rating: 7/10", 7.0), (" 10 - excellent", 10.0), ("1.", 1.0)]
)
def test_parse_rating_reads_the_first_number(reply, rating):
    assert parse_rating(reply, [str(i) for i in range(1, 11)]) == rating


@pytest.mark.parametrize("reply", ["", "great answer", "11", "0", "7.5 out of 10", "lorem ipsum"])
def test_parse_rating_refuses_garbage(reply):
    with pytest.raises(JudgeItemError):
        parse_rating(reply, [str(i) for i in range(1, 11)])


def test_parse_choice():
    assert parse_choice("B", ["A", "B"]) == 1
    assert parse_choice("Answer: (A)", ["A", "B"]) == 0
    with pytest.raises(JudgeItemError):
        parse_choice("Both are fine.", ["A", "B"])


def test_position_section_from_hand_made_verdicts():
    """Three pairs (chosen shown first, then second): (0.8, 0.6) keeps its verdict, (0.7, 0.3) flips,
    (0.4, 0.2) keeps it; a fourth failed. P(first slot wins) = (0.8+0.7+0.4 + 0.4+0.7+0.8) / 6."""
    from rewardlab.diagnose.position import position_from_verdicts
    from rewardlab.judge.scorer import PairVerdict

    vs = [PairVerdict(a, b, combine_orders(a, b)) for a, b in ((0.8, 0.6), (0.7, 0.3), (0.4, 0.2))]
    vs.append(PairVerdict(None, None, None, "timed out"))
    s = position_from_verdicts(vs, gold_sign=[1, -1, 0, 1], length_sign=[1, 1, -1, 0])
    assert (s.pairs, s.errors) == (4, 1)
    assert s.flip_rate == pytest.approx(1 / 3)
    assert s.first_slot == pytest.approx(3.8 / 6)
    assert s.accuracy_first == pytest.approx(2 / 3) and s.accuracy_second == pytest.approx(1 / 3)
    # combined (mean log-odds): 0.710 (right), 0.5 (a tie, half), 0.290 (wrong)
    assert s.accuracy == pytest.approx(1.5 / 3)
    assert s.gold_agreement == pytest.approx(1.5 / 2)  # pair 3 has a gold tie and is left out
    assert s.longer_wins == pytest.approx(2.5 / 3)  # pair 3's chosen is the shorter: 1 - 0.290 wins


# --- templates and the config ----------------------------------------------------------------------------


def test_shipped_templates_parse_and_record_their_version():
    t = load_template("pointwise-v1", "pointwise")
    assert t.labels == tuple(str(i) for i in range(1, 11)) and t.version == 1
    assert t.answer_prefix == "Rating: "
    assert "{response}" in t.body and len(t.sha256) == 64
    p = load_template("pairwise-v1", "pairwise")
    assert p.labels == ("A", "B")
    with pytest.raises(ValueError, match="pairwise"):
        load_template("pairwise-v1", "pointwise")


def test_bad_template_names_the_file(tmp_path):
    bad = tmp_path / "t.txt"
    bad.write_text('name: x\nversion: 1\nkind: pointwise\nanswer_prefix: ""\nlabels: ["1"]\n---\n{prompt}\n')
    with pytest.raises(ValueError, match=r"t.txt: the body must contain \{response\}"):
        load_template(str(bad))


def _template_file(tmp_path, version: int, wording: str):
    f = tmp_path / "mine.txt"
    f.write_text(
        f'name: mine\nversion: {version}\nkind: pointwise\nanswer_prefix: "Rating: "\n'
        f'labels: ["1", "2", "3"]\n---\n{wording}\n{{prompt}}\n{{response}}\nScore 1-3.\n'
    )
    return f


def test_saved_config_records_template_text_and_keeps_it(tmp_path):
    f = _template_file(tmp_path, 1, "Rate it.")
    file = save_judge_config(JudgeConfig(model="x", pointwise_template=str(f)), tmp_path / "j")
    assert is_judge(tmp_path / "j") and is_judge(file)
    raw = json.loads(file.read_text())
    assert raw["templates"]["pointwise"]["version"] == 1
    assert "Rate it." in raw["templates"]["pointwise"]["text"]
    _template_file(tmp_path, 2, "Rate it again, differently.")  # the file changes after saving
    cfg, _ = load_judge_config(file)
    assert parse_template(cfg.templates["pointwise"]["text"]).version == 1  # the recorded text is used
    assert not is_judge(tmp_path / "nothing.json")


def test_config_refuses_impossible_combinations():
    with pytest.raises(ValueError, match="--mode text"):
        JudgeConfig(endpoint="http://127.0.0.1:1", api="chat", mode="logits")
    with pytest.raises(ValueError, match="--retries"):
        JudgeConfig(retries=-1)


# --- a tiny local judge ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_judge_model(tmp_path_factory):
    from tests.conftest import build_tiny_backbone

    return str(build_tiny_backbone("qwen2", tmp_path_factory.mktemp("judge-qwen2")))


def _judge(folder, tmp_path=None, **kw):
    from rewardlab.judge.scorer import JudgeScorer

    cache = str(tmp_path / "cache.sqlite") if tmp_path is not None else None
    cfg = JudgeConfig(model=folder, cache=cache, **kw)
    return JudgeScorer.from_settings(cfg, device="cpu")


def _next_logprobs(model, tok, text):
    import torch

    ids = tok(text, add_special_tokens=False, return_tensors="pt").input_ids
    with torch.no_grad():
        return torch.log_softmax(model(ids).logits[0, -1].float(), -1), ids[0].tolist()


def test_pointwise_expected_value_equals_a_hand_computation(tiny_judge_model):
    """E[rating] by hand from two unpadded forward passes: P(d) = p(d | ctx) for 2..9, P(1) =
    p(1 | ctx)·(1 - p(0 | ctx,1)), P(10) = p(1 | ctx)·p(0 | ctx,1), renormalised over the ten."""
    judge = _judge(tiny_judge_model)
    backend, t = judge.backend, judge.pointwise
    prompts = ["How do I fix my code?", "Explain bread to a child.", "hello"]
    responses = ["Use python and ask a question.", "It is good.", "sorry I cannot help"]
    got = judge.score(prompts, responses)
    for prompt, response, score in zip(prompts, responses, got, strict=True):
        ctx = backend.render(t.fill(prompt=prompt, response=response), t.answer_prefix)
        lp, ctx_ids = _next_logprobs(backend.model, backend.tokenizer, ctx)
        digit = {}
        for d in "0123456789":
            ids = backend.tokenizer(ctx + d, add_special_tokens=False).input_ids
            assert ids[: len(ctx_ids)] == ctx_ids and len(ids) == len(ctx_ids) + 1  # one token per digit
            digit[d] = ids[-1]
        lp_after_1, _ = _next_logprobs(backend.model, backend.tokenizer, ctx + "1")
        p = {str(r): math.exp(lp[digit[str(r)]]) for r in range(2, 10)}
        p0 = math.exp(lp_after_1[digit["0"]])
        p["1"] = math.exp(lp[digit["1"]]) * (1 - p0)
        p["10"] = math.exp(lp[digit["1"]]) * p0
        hand = sum(int(k) * v for k, v in p.items()) / sum(p.values())
        assert score == pytest.approx(hand, rel=1e-4)
    # batching does not change a score: one at a time gives the same numbers
    assert [judge.score([p], [r])[0] for p, r in zip(prompts, responses, strict=True)] == pytest.approx(
        got, rel=1e-4
    )


def test_order_averaging_cancels_a_bias_injected_into_the_model(tiny_judge_model):
    """A bias of +3 on the logit of the token for "A" moves each order's verdict, but not the average."""
    import torch

    judge = _judge(tiny_judge_model)
    prompts = ["How do I fix my code?", "Explain bread to a child.", "What is time?"]
    xs = ["Use python and ask a question.", "It is good bread.", "time is a day"]
    ys = ["sorry I cannot help", "no", "I know the answer: a year and a day of work"]
    clean = judge.compare(prompts, xs, ys)
    t = judge.pairwise
    ctx = judge.backend.render(t.fill(prompt="p", response_a="x", response_b="y"), t.answer_prefix)
    base = judge.backend.encode(ctx)
    a_ids = judge.backend.encode(ctx + "A")
    common = (
        next(i for i in range(len(base)) if base[i] != a_ids[i]) if a_ids[: len(base)] != base else len(base)
    )
    a_token = a_ids[common]  # the token the label "A" begins with after the answer prefix
    head = judge.backend.model.lm_head
    biased = torch.nn.Linear(head.in_features, head.out_features, bias=True)
    with torch.no_grad():
        biased.weight.copy_(head.weight)
        biased.bias.zero_()
        biased.bias[a_token] = 3.0
    judge.backend.model.lm_head = biased
    try:
        shifted = judge.compare(prompts, xs, ys)
    finally:
        judge.backend.model.lm_head = head
    for c, s in zip(clean, shifted, strict=True):
        assert s.p_first > c.p_first and s.p_second < c.p_second  # each order moves toward slot A
        assert s.p == pytest.approx(c.p, abs=1e-6)  # the order-averaged verdict does not


def test_cache_hits_skip_the_model_and_a_new_template_misses(tiny_judge_model, tmp_path):
    judge = _judge(tiny_judge_model, tmp_path)
    prompts, responses = ["a question", "another question"], ["an answer", "no"]
    first = judge.score(prompts, responses)
    assert judge.cache.misses == 2 and len(judge.cache) == 2

    def fail(*a, **k):
        raise AssertionError("the model ran although the results were cached")

    again = _judge(tiny_judge_model, tmp_path)  # a new process would open the same file
    again.backend.label_logprobs = fail
    assert again.score(prompts, responses) == first
    assert again.cache.hits == 2
    f = _template_file(tmp_path, 2, "Rate it.")
    other = _judge(tiny_judge_model, tmp_path, pointwise_template=str(f))
    other.score(prompts, responses)  # another template's text: a miss, computed and stored
    assert other.cache.misses == 2 and len(other.cache) == 4


def test_too_long_prompt_is_an_item_error(tiny_judge_model):
    judge = _judge(tiny_judge_model, max_length=400)
    rated = judge.rate(["short", "long " * 200], ["ok", "ok"])
    assert isinstance(rated[0], float) and isinstance(rated[1], JudgeItemError)
    with pytest.raises(JudgeItemError, match="1 of 2 items"):
        judge.score(["short", "long " * 200], ["ok", "ok"])
    judge.judge_config.errors = "nan"
    assert math.isnan(judge.score(["short", "long " * 200], ["ok", "ok"])[1])


# --- consumers take a judge unchanged --------------------------------------------------------------------


@pytest.fixture(scope="module")
def judge_dir(tiny_judge_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("judge-cfg")
    save_judge_config(JudgeConfig(model=tiny_judge_model), folder)
    return folder


def test_load_scorer_opens_a_judge_config(judge_dir):
    from rewardlab.judge.scorer import JudgeScorer
    from rewardlab.scoring.ensemble import load_scorer

    assert isinstance(load_scorer(judge_dir, "cpu"), JudgeScorer)
    assert isinstance(load_scorer(judge_dir / "judge.json", "cpu"), JudgeScorer)


def test_diagnose_a_judge_with_the_position_probe(judge_dir, tmp_path):
    from rewardlab.cli import main

    out = tmp_path / "diag"
    code = main(
        ["diagnose", str(judge_dir), "demo", "--limit", "3", "-o", str(out), "--bootstrap", "20",
         "--probe-prompts", "2", "--position-pairs", "6", "--device", "cpu"]
    )  # fmt: skip
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    pos = report["position"]
    assert pos["pairs"] == 6 and pos["errors"] == 0
    assert 0.0 <= pos["flip_rate"] <= 1.0 and 0.0 <= pos["first_slot"] <= 1.0
    assert pos["gold_agreement"] is not None and pos["longer_wins"] is not None
    assert "Position bias" in (out / "report.md").read_text()
    assert report["length"]["spearman"] is not None


def test_bon_and_overopt_with_a_judge(judge_dir, tmp_path):
    from rewardlab.bon.best_of_n import BonConfig, Sampling, run_bon

    cfg = BonConfig(
        model=str(judge_dir),
        output=str(tmp_path / "bon.jsonl"),
        prompts="demo-test",
        limit=2,
        sampling=Sampling(n=3),
        gold="demo",
        device="cpu",
    )
    s = run_bon(cfg)
    rows = [json.loads(line) for line in open(s.output)]
    assert len(rows) == 2 and all(1.0 <= x <= 10.0 for r in rows for x in r["scores"])
    assert all(r["best"] == max(range(3), key=lambda j: (r["scores"][j], -j)) for r in rows)


def test_drift_with_a_local_judge(judge_dir):
    from rewardlab.drift.detect import Sample, drift
    from rewardlab.scoring.ensemble import load_scorer

    judge = load_scorer(judge_dir, "cpu")
    ref = [Sample(f"question {i}", "an answer " * (1 + i % 3)) for i in range(12)]
    cur = [Sample(f"question {i}", "sorry no " * (2 + i % 2)) for i in range(12)]
    result = drift(judge, ref, cur)
    assert result.verdict in ("fine", "watch", "retrain")
    assert len(result.ref_rewards) == 12 and all(1.0 <= r <= 10.0 for r in result.ref_rewards)


def test_serve_a_judge(judge_dir):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from rewardlab.scoring.ensemble import load_scorer
    from rewardlab.serve.app import ServeSettings, create_app

    judge = load_scorer(judge_dir, "cpu")
    with TestClient(create_app(judge, ServeSettings())) as client:
        pairs = [{"prompt": "hello", "response": "hi"}, {"prompt": "a question", "response": "an answer"}]
        r = client.post("/score", json={"pairs": pairs})
        assert r.status_code == 200, r.text
        assert r.json()["rewards"] == pytest.approx(judge.score(["hello", "a question"], ["hi", "an answer"]))
