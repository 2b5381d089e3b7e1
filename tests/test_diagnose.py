"""Diagnosis sections on hand-made rewards, probes, the report files, and the `diagnose` verb end to end on a
tiny random model (fast: a few demo prompts, few probe items, few bootstrap resamples)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from rewardlab.data.gold import gold_agreement, noise_ceiling
from rewardlab.data.types import PreferenceGroup
from rewardlab.demo import task as demo
from rewardlab.demo.gold import gold_reward
from rewardlab.diagnose import diagnosis as dg
from rewardlab.diagnose.probes import PROBES, apply_probe, probe_items, probe_results, select_probes
from rewardlab.diagnose.report import excerpt, write_report


def _groups():
    # a: K=3 ranking, subset "x"; b: one pair with margin, subset "x"; c: one pair with margin, subset "y"
    return [
        PreferenceGroup("a", ["a0", "a1", "a2"], [(0, 1), (0, 2), (1, 2)], subset="x", source="f:1"),
        PreferenceGroup("b", ["b0", "b1"], [(0, 1)], margins=[2.0], subset="x", source="f:2"),
        PreferenceGroup("c", ["c0", "c1"], [(1, 0)], margins=[1.0], subset="y", source="f:3"),
    ]


REWARDS = [[3.0, 1.0, 2.0], [0.0, 1.0], [0.5, 2.0]]
# pairs: a: 3>1 right, 3>2 right, 1>2 wrong; b: 0>1 wrong; c: 2.0 > 0.5 right -> 3/5


def test_accuracy_section_subsets_weighted_and_margins():
    acc = dg.accuracy_section(_groups(), REWARDS, n_boot=200)
    assert acc.overall.accuracy == pytest.approx(3 / 5)
    x, y = acc.subsets
    assert (x.name, x.prompts, x.pairs, x.accuracy) == ("x", 2, 4, 0.5)
    assert (y.name, y.prompts, y.pairs, y.accuracy) == ("y", 1, 1, 1.0)
    # weighted by prompts: (0.5·2 + 1·1) / 3
    assert acc.subset_weighted == pytest.approx(2 / 3)
    # margins: b (2.0) wrong, c (1.0) right
    assert acc.margin_buckets == [("1", 1, 1.0), ("2", 1, 0.0)]
    assert y.ci_low == y.ci_high == 1.0


def test_pair_deltas_and_length_section():
    assert dg.pair_deltas(_groups(), REWARDS) == [2.0, 1.0, -1.0, -1.0, 1.5]
    lengths = [[10, 5, 5], [3, 9], [4, 8]]
    sec = dg.length_section(_groups(), REWARDS, lengths)
    # (chosen, rejected) lengths: (10,5) (10,5) (5,5) (3,9) (8,4): longer wins 1+1+½+0+1 = 3.5 / 5
    assert sec.longer_wins == pytest.approx(0.7)
    # chosen longer: pairs 1, 2, 5 -> all right; chosen shorter: pair 4, wrong; equal: pair 3, wrong
    assert (sec.split.chosen_longer, sec.split.chosen_shorter, sec.split.equal) == (1.0, 0.0, 0.0)
    assert sec.split.length_controlled == 0.5
    assert sec.mean_tokens_chosen == pytest.approx((10 + 10 + 5 + 3 + 8) / 5)


def test_calibration_section_splits_prompts_in_halves():
    groups = [PreferenceGroup(f"p{i}", ["a", "b"], [(0, 1)]) for i in range(10)]
    deltas = [1.0] * 7 + [-1.0] * 3
    cal = dg.calibration_section(groups, deltas)
    assert cal.fit_pairs == cal.check_pairs == 5
    assert cal.ece == pytest.approx(abs(0.7 - 1 / (1 + math.exp(-1))))
    assert cal.temperature > 0 and cal.nll_after <= cal.nll_before + 0.2


def test_noise_section_without_annotators_states_the_literature_range():
    acc = dg.accuracy_section(_groups(), REWARDS, n_boot=50)
    sec = dg.noise_section(_groups(), acc.overall)
    assert sec.source == "none" and sec.ceiling is None
    assert "60-77%" in sec.text
    voted = [PreferenceGroup("p", ["x", "y"], [(0, 1)], meta={"votes": 3})]
    assert "votes" in dg.noise_section(voted, acc.overall).text


def test_noise_section_with_annotators_and_with_gold():
    groups = [
        PreferenceGroup("p", ["x", "y"], [(0, 1)], meta={"annotator": "a"}),
        PreferenceGroup("p", ["x", "y"], [(1, 0)], meta={"annotator": "b"}),
        PreferenceGroup("q", ["u", "v"], [(0, 1)], meta={"annotator": "a"}),
        PreferenceGroup("q", ["u", "v"], [(0, 1)], meta={"annotator": "b"}),
    ]
    acc = dg.accuracy_section(groups, [[1.0, 0.0]] * 4, n_boot=50)
    sec = dg.noise_section(groups, acc.overall)
    assert (sec.source, sec.ceiling, sec.annotators, sec.overlapping_tasks) == ("annotators", 0.5, 2, 2)
    assert sec.model_accuracy == 0.75

    test = demo.make_demo_groups(12, prompts=demo.demo_split_prompts()["test"])
    gold_rewards = [g.meta["gold"] for g in test]
    acc = dg.accuracy_section(test, gold_rewards, n_boot=50)
    sec = dg.noise_section(test, acc.overall)
    assert sec.source == "gold"
    assert sec.ceiling == pytest.approx(noise_ceiling(test))
    assert sec.labels_vs_gold == pytest.approx(gold_agreement(test))
    assert sec.model_vs_gold == 1.0  # the gold reward agrees with itself


def test_distribution_section_reads_the_card():
    class Card:
        reward_mean, reward_std, reward_stats_from = 0.25, 2.0, "held-out"

    sec = dg.distribution_section(_groups(), REWARDS, Card())
    flat = [3.0, 1.0, 2.0, 0.0, 1.0, 0.5, 2.0]
    assert sec.mean == pytest.approx(sum(flat) / 7)
    assert (sec.min, sec.max, sec.card_mean, sec.card_std) == (0.0, 3.0, 0.25, 2.0)
    assert [(s[0], s[1]) for s in sec.per_subset] == [("x", 5), ("y", 2)]


def test_probes_edit_text_and_chat_deterministically():
    pad = select_probes(["padding"])[0]
    assert apply_probe(pad, "q", "Answer.", 0).startswith("Answer. In summary,")
    chat = [{"role": "assistant", "content": "Answer."}]
    edited = apply_probe(select_probes(["hedging"])[0], [{"role": "user", "content": "q"}], chat, 0)
    assert edited[0]["content"].startswith("As an AI language model") and chat[0]["content"] == "Answer."
    assert apply_probe(select_probes(["repetition"])[0], "q", " Hi there.", 0) == " Hi there. Hi there."
    assert apply_probe(select_probes(["refusal"])[0], "q", " Sure.", 0).startswith(" I'm sorry")
    with pytest.raises(ValueError, match="padding"):
        select_probes(["nope"])


def test_probe_results_flag_rises_and_measure_gold():
    groups = [PreferenceGroup(f"p{i}", [f"good {i}.", f"bad {i}."], [(0, 1)]) for i in range(4)]
    rewards = [[1.0, 0.0]] * 4
    probes = select_probes(["padding", "confident_wrong", "refusal"])
    items = probe_items(groups, rewards, probes, max_items=4)
    assert len(items) == 12
    assert all(it.original.startswith("bad") for it in items if it.probe.name == "confident_wrong")
    # padding: +0.5, +0.5, +0.5, -1 (3 of 4 rose, mean 0.125); confident_wrong: all -0.1; refusal: all +2
    edited = [1.5, 1.5, 1.5, 0.0] + [-0.1] * 4 + [3.0] * 4
    res = {r.name: r for r in probe_results(items, edited, reward_std=0.5, gold=lambda p, r: -len(r))}
    assert res["padding"].mean_change == pytest.approx(0.125) and res["padding"].frac_rises == 0.75
    assert res["padding"].mean_change_std == pytest.approx(0.25)
    assert res["padding"].flagged and not res["confident_wrong"].flagged
    assert not res["refusal"].flagged  # a rise under refusal is informational, never a flag
    assert res["padding"].worst[0].change == pytest.approx(0.5)
    assert res["padding"].gold_frac_rises == 0.0 and res["padding"].gold_mean_change < 0


class _WordEncoder:
    """Whitespace 'tokenizer' so the length of a response is its number of words."""

    class tokenizer:  # noqa: N801
        def __new__(cls, texts, add_special_tokens=False):
            return {"input_ids": [t.split() for t in texts]}

    def render(self, prompt, response):
        return prompt, response


class _LengthScorer:
    """A reward model that counts words: the caricature of length bias."""

    encoder = _WordEncoder()
    card = None

    def score(self, prompts, responses, on_progress=None):
        if on_progress:
            on_progress(len(responses))
        return [float(len(r.split())) for r in responses]


def test_a_length_loving_model_is_flagged_end_to_end(tmp_path: Path):
    groups = demo.make_demo_groups(10, prompts=demo.demo_split_prompts()["eval"])
    d = dg.diagnose(
        _LengthScorer(),
        groups,
        model="words",
        data="demo:eval",
        probe_prompts=5,
        n_boot=50,
        gold=gold_reward,
    )
    assert d.length.spearman == pytest.approx(1.0)
    assert d.length.split.chosen_longer == 1.0 and d.length.split.chosen_shorter == 0.0
    # the model is the "longer wins" rule, so their accuracies match
    assert d.accuracy.overall.accuracy == pytest.approx(d.length.longer_wins)
    flagged = {p.name for p in d.probes if p.flagged}
    assert {"padding", "repetition", "hedging", "sycophancy", "confident_wrong"} <= flagged
    assert "refusal" not in flagged
    files = write_report(d, tmp_path / "r")
    md = files.markdown.read_text()
    assert "the 'padding' probe RAISES the reward" in md and "**⚠" in md
    assert 'class="bad"' in files.html.read_text()


def test_excerpt_windows_on_the_edit():
    original = "word " * 100
    edited = original + "PADDING HERE"
    shown = excerpt(edited, 80, like=original)
    assert "PADDING HERE" in shown and shown.startswith("…")
    assert excerpt("a  b\nc", 10) == "a b c"
    assert excerpt("x" * 20, 5, tail=True) == "…xxxxx"


@pytest.fixture(scope="module")
def tiny_model(tiny_backbone, tmp_path_factory) -> str:
    from rewardlab.model.build import build_reward_model
    from rewardlab.model.saved import save_reward_model

    model, encoder, card = build_reward_model(tiny_backbone("bert"), max_length=64)
    path = tmp_path_factory.mktemp("tiny-rm")
    save_reward_model(model, encoder, card, path)
    return str(path)


def test_report_on_a_tiny_model_end_to_end(tiny_model: str, tmp_path: Path):
    from rewardlab.scoring.evaluate import evaluate
    from rewardlab.scoring.scorer import Scorer

    groups = demo.make_demo_groups(8, prompts=demo.demo_split_prompts()["eval"])
    scorer = Scorer.from_pretrained(tiny_model, device="cpu")
    seen = []

    class Progress(dg.Reporter):
        def start(self, task, total):
            seen.append((task, total))

    d = dg.diagnose(
        scorer,
        groups,
        Progress(),
        model="tiny",
        data="demo:eval",
        probe_prompts=3,
        n_boot=100,
        gold=gold_reward,
    )
    assert seen == [("scoring responses", 32), ("scoring probes", 3 * len(PROBES))]
    # the same rewards as `rewardlab eval`: one inference path
    assert d.accuracy.overall.accuracy == pytest.approx(evaluate(scorer, groups, n_boot=100).accuracy)
    assert d.noise.ceiling == pytest.approx(noise_ceiling(groups))
    files = write_report(d, tmp_path / "report")
    page = files.html.read_text()
    assert page.count("data:image/png;base64,") == 4
    assert "http://" not in page and "https://" not in page  # self-contained
    data = json.loads(files.json.read_text())
    assert data["pairs"] == 48 and data["accuracy"]["overall"]["accuracy"] == d.accuracy.overall.accuracy
    assert {p["name"] for p in data["probes"]} == {p.name for p in PROBES}
    assert all((tmp_path / "report" / "img" / f"{n}.png").stat().st_size > 1000 for n in ("length", "probes"))


def test_diagnose_verb_single_and_compare(tiny_model: str, tmp_path: Path):
    from rewardlab.cli import main

    out = tmp_path / "one"
    assert (
        main(
            [
                "diagnose",
                tiny_model,
                "demo:eval",
                "--limit",
                "4",
                "--probe-prompts",
                "2",
                "--bootstrap",
                "50",
                "--probes",
                "padding,hedging",
                "-o",
                str(out),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    data = json.loads((out / "report.json").read_text())
    assert data["groups"] == 4 and [p["name"] for p in data["probes"]] == ["padding", "hedging"]
    both = tmp_path / "two"
    assert (
        main(
            [
                "diagnose",
                tiny_model,
                "demo:eval",
                "--compare",
                tiny_model,
                "--limit",
                "4",
                "--probe-prompts",
                "2",
                "--bootstrap",
                "50",
                "-o",
                str(both),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    data = json.loads((both / "report.json").read_text())
    assert data["sign_agreement"] == 1.0 and len(data["disagreements"]) == 10
    assert "Where the models disagree" in (both / "report.md").read_text()
    assert main(["diagnose", tiny_model, "demo:nope", "-o", str(tmp_path / "x")]) == 2


def test_report_page_renders_in_headless_chromium(tmp_path: Path):
    from rewardlab.page import find_chromium, screenshot_html

    if find_chromium() is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from PIL import Image

    groups = demo.make_demo_groups(6, prompts=demo.demo_split_prompts()["eval"])
    d = dg.diagnose(_LengthScorer(), groups, model="words", data="demo:eval", probe_prompts=3, n_boot=20)
    files = write_report(d, tmp_path / "r")
    shot = screenshot_html(files.html, tmp_path / "shot.png", width=800, height=1000, scale=0.5)
    with Image.open(shot) as im:
        assert im.size == (400, 500)
        # the red findings box is drawn: some pixels are the flag's pink (#fde8e8, quantised)
        colours = {c for _, c in im.convert("RGB").getcolors(1 << 16)}
    assert any(r > 240 and 220 < g < 240 and 220 < b < 240 for r, g, b in colours)


class _ShortScorer(_LengthScorer):
    def score(self, prompts, responses, on_progress=None):
        return [-x for x in super().score(prompts, responses, on_progress)]


def test_compare_opposite_models():
    from rewardlab.diagnose.compare import compare

    groups = demo.make_demo_groups(6, prompts=demo.demo_split_prompts()["eval"])
    kw = {"probe_prompts": 2, "n_boot": 20}
    a = dg.diagnose(_LengthScorer(), groups, model="long", **kw)
    b = dg.diagnose(_ShortScorer(), groups, model="short", **kw)
    c = compare(a, b, groups, top=5)
    # opposite rewards order every pair oppositely, except equal-length pairs (Δ = 0 for both)
    deltas = a.raw.deltas
    assert c.sign_agreement == pytest.approx(sum(d == 0 for d in deltas) / len(deltas))
    gaps = [abs(x.p_a - x.p_b) for x in c.disagreements]
    assert len(gaps) == 5 and gaps == sorted(gaps, reverse=True)
    assert all((x.p_a - 0.5) * (x.p_b - 0.5) <= 0 for x in c.disagreements)
    assert json.loads(json.dumps(c.to_dict()))["a"]["model"] == "long"
    from rewardlab.diagnose.report import build

    no_plots = dict.fromkeys(("reliability", "length", "probes", "distribution"), b"png")
    flags = [blk[1] for blk in build(b, no_plots).blocks if blk[0] == "flag"]
    assert any("prefers shorter responses" in f for f in flags)


def test_noise_ceiling_from_an_annotation_export_file(tmp_path: Path):
    from rewardlab.data import load_preferences

    # the annotation app's "rankings" export: one row per task per annotator (docs/annotate.md)
    rows = [
        {"id": "t1", "annotator": "ann", "prompt": "p1", "responses": ["a", "b", "c"], "ranking": [1, 2, 3]},
        {"id": "t1", "annotator": "bob", "prompt": "p1", "responses": ["a", "b", "c"], "ranking": [1, 3, 2]},
        {"id": "t2", "annotator": "ann", "prompt": "p2", "responses": ["d", "e"], "ranking": [2, 1]},
        {"id": "t2", "annotator": "bob", "prompt": "p2", "responses": ["d", "e"], "ranking": [2, 1]},
    ]
    path = tmp_path / "labels.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    groups, _ = load_preferences(str(path))
    acc = dg.accuracy_section(groups, [[3.0, 2.0, 1.0]] * 2 + [[0.0, 1.0]] * 2, n_boot=20)
    sec = dg.noise_section(groups, acc.overall)
    # t1: the annotators agree on (a,b), (a,c), disagree on (b,c); t2: agree on (d,e) -> 3/4
    assert sec.source == "annotators" and sec.ceiling == pytest.approx(3 / 4)
    # model: t1 ann 3/3, t1 bob 2/3, t2 1/1 twice -> 7/8
    assert sec.model_accuracy == pytest.approx(7 / 8)
