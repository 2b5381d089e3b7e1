"""Best-of-N: reading and generating candidates (with the disk cache), gold sources, selection, and a tiny
end-to-end `rewardlab bon` run."""

from __future__ import annotations

import json

import pytest

from rewardlab.bon.best_of_n import (
    BonConfig,
    Candidates,
    Sampling,
    final_number,
    generate_demo,
    generate_lm,
    gold_scores,
    gsm8k_correct,
    read_candidates,
    read_prompts,
    run_bon,
    select_best,
)
from rewardlab.demo.gold import gold_reward
from rewardlab.demo.task import demo_split_prompts


def test_read_candidates_both_layouts(tmp_path):
    f = tmp_path / "c.jsonl"
    rows = [
        {"prompt": "a", "responses": ["x", "y"], "answer": "#### 3"},
        {"prompt": "b", "response": "z"},
        {"prompt": "a", "response": "w"},
    ]
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    cands = read_candidates(f)
    assert [(c.prompt, c.responses) for c in cands] == [("a", ["x", "y", "w"]), ("b", ["z"])]
    assert cands[0].meta == {"answer": "#### 3"}
    f.write_text(json.dumps({"prompt": "a", "text": "x"}) + "\n")
    with pytest.raises(ValueError, match=r"c.jsonl:1: needs 'responses'"):
        read_candidates(f)


def test_gsm8k_final_answer_extraction():
    reference = "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\n#### 18"
    assert final_number(reference) == 18
    assert final_number("So she makes 9 * 2 = 18 dollars. The answer is 1,234.") == 1234
    assert final_number("3 apples and 4 pears, 7 in total") == 7
    assert final_number("no digits here") is None
    assert gsm8k_correct("She earns $18 a day.", reference) == 1.0
    assert gsm8k_correct("She earns 18.0", reference) == 1.0
    assert gsm8k_correct("The answer is 18 then 20", reference) == 1.0  # first number after the marker
    assert gsm8k_correct("She earns 9 a day, so 19.", reference) == 0.0
    assert gsm8k_correct("I don't know.", reference) == 0.0


def test_read_prompts_demo_and_gsm8k_rows(tmp_path):
    assert [c.prompt for c in read_prompts("demo-pool", limit=3)] == demo_split_prompts()["pool"][:3]
    f = tmp_path / "q.jsonl"
    f.write_text(json.dumps({"question": "1+1?", "answer": "#### 2"}) + "\n")
    [c] = read_prompts(str(f))
    assert c.prompt == "1+1?" and c.meta == {"answer": "#### 2"}
    assert gold_scores("gsm8k", [Candidates("1+1?", ["it is 2", "3"], c.meta)]) == [[1.0, 0.0]]


def test_demo_generation_is_seeded_per_prompt_and_gold_is_the_demo_reward():
    prompts = read_prompts("demo-pool", limit=4)
    a = generate_demo(prompts, Sampling(n=5, temperature=1.5, seed=7))
    b = generate_demo(prompts[2:], Sampling(n=5, temperature=1.5, seed=7))
    assert [len(c.responses) for c in a] == [5] * 4
    assert a[2].responses == b[0].responses  # the same prompt gets the same draws in any run
    assert generate_demo(prompts, Sampling(n=5, temperature=1.5, seed=8))[0].responses != a[0].responses
    gold = gold_scores("demo", a)
    assert gold[1] == [gold_reward(a[1].prompt, r) for r in a[1].responses]


def test_select_best_takes_the_argmax_and_the_first_on_ties():
    cands = [Candidates("p", ["a", "b", "c"]), Candidates("q", ["d", "e"])]
    rows = select_best(cands, [[0.1, 0.9, 0.9], [2.0, -1.0]], gold=[[1, 2, 3], [4, 5]])
    assert [(r.best, r.best_response, r.best_gold) for r in rows] == [(1, "b", 2), (0, "d", 4)]


def test_lm_generation_is_cached(tiny_backbone, tmp_path, monkeypatch):
    prompts = [Candidates("hello world"), Candidates("help me with bread")]
    sampling = Sampling(policy=tiny_backbone("gpt2"), n=3, temperature=1.0, max_new_tokens=5, seed=1)
    first = generate_lm(prompts, sampling, tmp_path / "cache")
    assert [len(c.responses) for c in first] == [3, 3]
    assert len(list((tmp_path / "cache").glob("*.json"))) == 2

    import transformers

    def no_model(*a, **k):
        raise AssertionError("the cache should have answered")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", no_model)
    again = generate_lm(prompts, sampling, tmp_path / "cache")
    assert [c.responses for c in again] == [c.responses for c in first]
    monkeypatch.undo()
    # the same prompt sampled alone (no cache) draws the same texts: each prompt has its own seed
    alone = generate_lm(prompts[1:], sampling, tmp_path / "cache2")
    assert alone[0].responses == first[1].responses


def test_bon_end_to_end_on_a_tiny_model(tiny_backbone, tmp_path):
    from rewardlab.cli import main
    from rewardlab.model.build import build_reward_model
    from rewardlab.model.saved import save_reward_model
    from rewardlab.scoring.scorer import Scorer

    model, encoder, card = build_reward_model(tiny_backbone("bert"), max_length=96)
    save_reward_model(model, encoder, card, tmp_path / "rm")
    out = tmp_path / "bon.jsonl"
    summary = run_bon(
        BonConfig(
            str(tmp_path / "rm"),
            str(out),
            prompts="demo-pool",
            limit=3,
            sampling=Sampling(n=4, temperature=1.2),
            gold="demo",
            device="cpu",
        )
    )
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 3 and summary.candidates == 12
    scorer = Scorer.from_pretrained(tmp_path / "rm", device="cpu")
    for row in rows:
        assert row["scores"] == pytest.approx(scorer.score([row["prompt"]] * 4, row["responses"]), abs=1e-5)
        assert row["best"] == max(range(4), key=lambda j: row["scores"][j])
        assert row["gold"] == [gold_reward(row["prompt"], r) for r in row["responses"]]
        assert row["best_gold"] == row["gold"][row["best"]]
    assert summary.mean_best_score == pytest.approx(sum(r["best_score"] for r in rows) / 3)

    # the CLI on the file it just wrote: candidates read back, gold from the same RM (source c)
    out2 = tmp_path / "bon2.jsonl"
    rm = str(tmp_path / "rm")
    assert main(["bon", rm, "--candidates", str(out), "-o", str(out2), "--gold", rm, "--device", "cpu"]) == 0
    rows2 = [json.loads(line) for line in out2.read_text().splitlines()]
    assert [r["best"] for r in rows2] == [r["best"] for r in rows]
    assert rows2[0]["gold"] == pytest.approx(rows2[0]["scores"])
