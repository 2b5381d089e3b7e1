"""The training loop's invariants: it learns, accumulation is exact, resume is exact, outputs are complete."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from rewardlab.config import TrainConfig
from rewardlab.progress import Reporter
from rewardlab.training.checkpoint import latest_checkpoint
from rewardlab.training.data import split_by_prompt
from rewardlab.training.run import train


def _pairs_file(path, n=24):
    """Pairs where the chosen response is polite and on topic, the rejected one rude: easy to learn."""
    rows = []
    topics = ["bread", "cake", "python", "code", "book", "recipe"]
    for i in range(n):
        t = topics[i % len(topics)]
        rows.append(
            {
                "prompt": f"Human: help me with {t} number {i}?\n\nAssistant:",
                "chosen": f" Thanks for the question, here is good help with {t}.",
                "rejected": " No.",
                "subset": "odd" if i % 2 else "even",
            }
        )
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return str(path)


def _cfg(tiny_backbone, tmp_path, kind="llama", **kw):
    base = dict(
        backbone=tiny_backbone(kind),
        data=_pairs_file(tmp_path / "train.jsonl"),
        output_dir=str(tmp_path / "out"),
        max_length=64,
        batch_size=4,
        lr=2e-3,
        warmup_ratio=0.0,
        mixed_precision="auto",  # follows the `precision` fixture (or the pinned fp32)
        eval_fraction=0.0,
        length_grouped=False,
    )
    base.update(kw)
    return TrainConfig(**base)


def _weights(folder):
    return load_file(str(folder / "model.safetensors"))


def assert_same_weights(wa, wb, precision, backbone, atol):
    """Two training paths that are equal in exact arithmetic end at the same weights: to `atol` in fp32;
    under bf16 autocast (8-bit mantissa, different matmul shapes round differently) to within 5% of the
    size of the update training made (measured: 1-3%; a wrong mask or loss term moves it far more)."""
    if precision != "bf16":
        for k in wa:
            assert torch.allclose(wa[k], wb[k], atol=atol), k
        return
    from transformers import AutoModelForSequenceClassification

    init = AutoModelForSequenceClassification.from_pretrained(backbone, num_labels=1).state_dict()
    moved = [k for k in wa if k in init and init[k].shape == wa[k].shape]
    gap = sum(float(((wa[k] - wb[k]) ** 2).sum()) for k in wa) ** 0.5
    update = sum(float(((wa[k] - init[k]) ** 2).sum()) for k in moved) ** 0.5
    assert gap < 0.05 * update, (gap, update)


@pytest.mark.parametrize("kind", ["bert", "llama"])
def test_training_lowers_the_loss_and_updates_every_parameter(tiny_backbone, tmp_path, kind, precision):
    from transformers import AutoModelForSequenceClassification

    cfg = _cfg(tiny_backbone, tmp_path, kind, epochs=4)
    result = train(cfg)
    out = tmp_path / "out"
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [m["loss"] for m in metrics if "loss" in m]
    assert len(losses) == result.steps == 24
    assert sum(losses[-4:]) / 4 < sum(losses[:4]) / 4 - 0.1
    initial = AutoModelForSequenceClassification.from_pretrained(cfg.backbone, num_labels=1).state_dict()
    trained = _weights(out)
    unchanged = [
        k
        for k, v in trained.items()
        if k in initial and v.shape == initial[k].shape and torch.equal(v, initial[k])
    ]
    # position_ids-style buffers and the unused pooler/embedding rows of tokens never seen may stay put
    assert not [k for k in unchanged if "weight" in k and "embed" not in k and "pooler" not in k], unchanged
    card = json.loads((out / "rewardlab.json").read_text())
    assert len(card["data_hash"]) == 64 and card["max_length"] == 64


def test_gradient_accumulation_matches_the_larger_batch(tiny_backbone, tmp_path, precision):
    a = _cfg(tiny_backbone, tmp_path, batch_size=4, grad_accum=1, output_dir=str(tmp_path / "a"), epochs=1)
    b = _cfg(tiny_backbone, tmp_path, batch_size=1, grad_accum=4, output_dir=str(tmp_path / "b"), epochs=1)
    ra, rb = train(a), train(b)
    assert ra.steps == rb.steps == 6
    assert_same_weights(_weights(tmp_path / "a"), _weights(tmp_path / "b"), precision, a.backbone, 1e-5)


def test_resumed_run_equals_uninterrupted_run(tiny_backbone, tmp_path, precision):
    full = _cfg(tiny_backbone, tmp_path, epochs=2, save_every=2, output_dir=str(tmp_path / "full"))
    train(full)
    ckpts = sorted((tmp_path / "full" / "checkpoints").glob("step-*"))
    assert [c.name for c in ckpts] == ["step-00000010", "step-00000012"]
    # copy the step-10 checkpoint to a fresh run folder and finish from there
    import shutil

    resumed_dir = tmp_path / "resumed"
    shutil.copytree(ckpts[0], resumed_dir / "checkpoints" / ckpts[0].name)
    resumed = _cfg(
        tiny_backbone, tmp_path, epochs=2, save_every=2, output_dir=str(resumed_dir), resume="latest"
    )
    result = train(resumed)
    assert result.steps == 12
    w_full, w_res = _weights(tmp_path / "full"), _weights(resumed_dir)
    for k in w_full:
        assert torch.equal(w_full[k], w_res[k]), k


def test_partial_checkpoints_are_skipped(tmp_path):
    root = tmp_path / "checkpoints"
    (root / "step-00000004").mkdir(parents=True)
    (root / "step-00000004" / "trainer_state.json").write_text("{}")
    (root / "step-00000004" / "scheduler.pt").write_text("")
    (root / "step-00000006").mkdir()  # crashed mid-write: no state file
    assert latest_checkpoint(tmp_path).name == "step-00000004"


def test_model_selection_and_test_reporting(tiny_backbone, tmp_path):
    test_file = _pairs_file(tmp_path / "test.jsonl", n=12)
    cfg = _cfg(tiny_backbone, tmp_path, epochs=3, eval_fraction=0.25, test_data=test_file, eval_every=3)
    result = train(cfg)
    assert result.eval is not None and result.test is not None
    assert result.test.pairs == 12
    assert set(result.test.per_subset) == {"odd", "even"}
    assert result.best_step % 3 == 0 and result.best_step > 0
    saved = json.loads((tmp_path / "out" / "rewardlab.json").read_text())
    assert saved["train_metrics"]["step"] == result.best_step
    assert saved["reward_std"] > 0


def test_rewardlab_evaluate_reports_what_training_reported_when_pairs_are_cut(
    tiny_backbone, tmp_path, precision
):
    """Both cut each group's prompt once, so a truncated test set gets the same figures either way."""
    from rewardlab.data.loading import load_preferences
    from rewardlab.scoring.evaluate import evaluate
    from rewardlab.scoring.scorer import Scorer

    test_file = _pairs_file(tmp_path / "test.jsonl", n=12)
    result = train(_cfg(tiny_backbone, tmp_path, max_length=32, test_data=test_file))
    assert result.test is not None
    groups, _ = load_preferences(test_file)
    scorer = Scorer.from_pretrained(str(tmp_path / "out"))
    assert any(e.truncated for g in groups for e in scorer.encoder.encode_group(g.prompt, g.responses))
    again = evaluate(scorer, groups, n_boot=100)
    assert again.accuracy == result.test.accuracy
    assert again.mean_margin == pytest.approx(result.test.mean_margin, abs=1e-5)


def test_trim_memory_changes_no_weight(tiny_backbone, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    plain = train(_cfg(tiny_backbone, tmp_path / "a", epochs=2))
    trimmed = train(_cfg(tiny_backbone, tmp_path / "b", epochs=2, trim_memory=True))
    a, b = _weights(tmp_path / "a" / "out"), _weights(tmp_path / "b" / "out")
    assert plain.steps == trimmed.steps > 0
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_split_by_prompt_keeps_a_prompt_on_one_side():
    from rewardlab.data.types import PreferenceGroup

    groups = [PreferenceGroup(f"prompt {i % 10}", ["a", "b"], [(0, 1)]) for i in range(100)]
    train_g, held = split_by_prompt(groups, 0.3, seed=1)
    assert len(train_g) + len(held) == 100 and held
    assert not {g.prompt for g in train_g} & {g.prompt for g in held}


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_shared_prefix_training_equals_the_plain_path(tiny_backbone, tmp_path, kind, precision):
    """One packed row per group (prompt encoded once) trains to the same weights as padded pairs."""
    a = _cfg(tiny_backbone, tmp_path, kind, output_dir=str(tmp_path / "a"), epochs=1)
    b = _cfg(tiny_backbone, tmp_path, kind, output_dir=str(tmp_path / "b"), epochs=1, shared_prefix=False)
    messages: list[str] = []

    class Collect(Reporter):
        def message(self, text: str) -> None:
            messages.append(text)

    ra, rb = train(a, Collect()), train(b)
    assert any(m.startswith("shared-prefix forward: on") for m in messages), messages
    assert ra.steps == rb.steps
    assert_same_weights(_weights(tmp_path / "a"), _weights(tmp_path / "b"), precision, a.backbone, 1e-4)


def test_one_process_trains_fp32_then_bf16_then_fp32(tiny_backbone, tmp_path):
    """accelerate keeps one AcceleratorState per process; a second run with another precision must work."""
    from accelerate.state import AcceleratorState

    seen = []
    for i, precision in enumerate(["no", "bf16", "no"]):
        cfg = _cfg(tiny_backbone, tmp_path, mixed_precision=precision, output_dir=str(tmp_path / f"o{i}"))
        result = train(cfg)
        assert result.steps == 6
        seen.append(AcceleratorState().mixed_precision)
    assert seen == ["no", "bf16", "no"]


def test_auto_precision_follows_the_pinning_variable(monkeypatch):
    from rewardlab.training.run import resolve_mixed_precision

    cfg = TrainConfig(mixed_precision="auto")
    monkeypatch.setenv("REWARDLAB_MIXED_PRECISION", "bf16")
    assert resolve_mixed_precision(cfg, torch.device("cpu")) == ("bf16", "$REWARDLAB_MIXED_PRECISION=bf16")
    monkeypatch.setenv("REWARDLAB_MIXED_PRECISION", "fp64")
    with pytest.raises(ValueError, match="REWARDLAB_MIXED_PRECISION"):
        resolve_mixed_precision(cfg, torch.device("cpu"))
    assert resolve_mixed_precision(TrainConfig(mixed_precision="no"), torch.device("cpu"))[0] == "no"


def test_attention_kernel_follows_device_precision_and_phase(tiny_backbone, tmp_path):
    """bf16 training on CPU runs eager attention (sdpa's CPU backward is slower there); nothing else
    changes kernel, and the saved folder carries no kernel choice (benchmarks/kernels_ab.py)."""
    from rewardlab.scoring.scorer import attention_for

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert attention_for(cpu, bf16=True, training=True)[0] == "eager"
    assert attention_for(cpu, bf16=True, training=False)[0] == "sdpa"
    assert attention_for(cpu, bf16=False, training=True)[0] == "sdpa"
    assert attention_for(cuda, bf16=True, training=True)[0] == "sdpa"
    messages: list[str] = []

    class Collect(Reporter):
        def message(self, text: str) -> None:
            messages.append(text)

    train(_cfg(tiny_backbone, tmp_path, "bert", mixed_precision="bf16", epochs=1), Collect())
    assert any(m.startswith("attention eager (training in bf16 on CPU") for m in messages), messages
    saved = json.loads((tmp_path / "out" / "config.json").read_text())
    assert not any("attn" in k for k in saved), saved


def test_layout_flag_trains_a_model_engines_can_take(tiny_backbone, tmp_path):
    """--layout chat_template reaches the card, so `rewardlab export --target vllm` accepts the model
    (it refuses decoders trained with the rewardlab layout); steps + chat_template fails at once."""
    from rewardlab.config import ConfigError
    from rewardlab.integrations.export import export_model

    train(_cfg(tiny_backbone, tmp_path, "qwen2", layout="chat_template", epochs=1))
    card = json.loads((tmp_path / "out" / "rewardlab.json").read_text())
    assert card["layout"] == "chat_template"
    result = export_model(str(tmp_path / "out"), "vllm", str(tmp_path / "vllm"))
    assert result.config_changes["problem_type"] == "regression"
    with pytest.raises(ConfigError, match="--layout chat_template"):
        TrainConfig(layout="chat_template", objective="steps", data="x.jsonl")


class _Messages(Reporter):
    """A reporter that keeps the messages, to assert what a resume said."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def message(self, text: str) -> None:
        self.lines.append(text)


def _run_ids(out):
    return {c.name: json.loads((c / "run.json").read_text())["run_id"] for c in _ckpts(out)}


def _ckpts(out):
    return sorted((out / "checkpoints").glob("step-*"))


def test_a_second_run_into_the_folder_refuses_unless_overwrite(tiny_backbone, tmp_path):
    out = tmp_path / "out"
    first = _cfg(tiny_backbone, tmp_path, save_every=2, mixed_precision="no")
    train(first)
    first_ids = _run_ids(out)
    assert list(first_ids) == ["step-00000004", "step-00000006"]
    train(first)  # the same run again into its own folder: allowed, as before
    assert _run_ids(out) == first_ids
    other = _cfg(tiny_backbone, tmp_path, save_every=2, mixed_precision="no", seed=1)
    with pytest.raises(
        ValueError, match=r"--output-dir .*out already holds checkpoints of another run.*--overwrite"
    ):
        train(other)
    assert _run_ids(out) == first_ids  # refused before touching anything
    train(_cfg(tiny_backbone, tmp_path, save_every=2, mixed_precision="no", seed=1, overwrite=True))
    second_ids = _run_ids(out)
    assert list(second_ids) == ["step-00000004", "step-00000006"]  # retention kept the new run's two
    assert not set(second_ids.values()) & set(first_ids.values())  # the first run's are gone
    assert json.loads((out / "run.json").read_text())["run_id"] in second_ids.values()


def test_resume_latest_ignores_another_runs_higher_step(tiny_backbone, tmp_path):
    import shutil

    kw = dict(epochs=2, save_every=2, mixed_precision="no")
    other, mine = tmp_path / "other", tmp_path / "mine"
    train(_cfg(tiny_backbone, tmp_path, seed=1, output_dir=str(other), **kw))
    train(_cfg(tiny_backbone, tmp_path, output_dir=str(mine), **kw))
    w_full = _weights(mine)
    # this run was interrupted after step 10; another run's step-12 sits beside it, renamed higher
    shutil.rmtree(mine / "checkpoints" / "step-00000012")
    foreign = mine / "checkpoints" / "step-00000099"
    shutil.copytree(other / "checkpoints" / "step-00000012", foreign)
    messages = _Messages()
    result = train(_cfg(tiny_backbone, tmp_path, output_dir=str(mine), resume="latest", **kw), messages)
    assert result.steps == 12
    assert any("resumed from" in m and "step-00000010" in m for m in messages.lines), messages.lines
    w_res = _weights(mine)
    for k in w_full:
        assert torch.equal(w_full[k], w_res[k]), k
    assert foreign.is_dir()  # retention deleted only this run's old checkpoints
    # naming another run's checkpoint: refused with both ids, accepted with --force
    with pytest.raises(ValueError, match=r"belongs to run \w+, this config is run \w+.*--force"):
        train(_cfg(tiny_backbone, tmp_path, output_dir=str(mine), resume=str(foreign), **kw))
    forced = train(_cfg(tiny_backbone, tmp_path, output_dir=str(mine), resume=str(foreign), force=True, **kw))
    assert forced.steps == 12


@pytest.fixture(scope="module")
def two_checkpoints(tiny_backbone, tmp_path_factory):
    """One finished run with checkpoints at steps 4 and 6 (a pristine copy for each fault)."""
    tmp = tmp_path_factory.mktemp("faults")
    train(_cfg(tiny_backbone, tmp, save_every=2, mixed_precision="no"))
    return tmp


@pytest.mark.parametrize("fault", ["truncate", "delete"])
def test_a_damaged_newest_checkpoint_falls_back_to_the_older_one(
    tiny_backbone, two_checkpoints, tmp_path, fault
):
    import shutil

    newest = two_checkpoints / "out" / "checkpoints" / "step-00000006"
    names = sorted(f.name for f in newest.iterdir())
    assert {"model.safetensors", "scheduler.pt", "trainer_state.json"} <= set(names)
    for name in names:
        out = tmp_path / f"{fault}-{name}"
        shutil.copytree(two_checkpoints / "out" / "checkpoints", out / "checkpoints")
        f = out / "checkpoints" / "step-00000006" / name
        if fault == "delete":
            f.unlink()
        else:
            f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
        messages = _Messages()
        cfg = _cfg(tiny_backbone, two_checkpoints, save_every=2, mixed_precision="no")
        cfg = TrainConfig(**{**cfg.__dict__, "output_dir": str(out), "resume": "latest"})
        result = train(cfg, messages)
        assert result.steps == 6, name
        skipped = [m for m in messages.lines if "skipping" in m and "step-00000006" in m]
        assert skipped and name in skipped[0], (name, messages.lines)
        assert any("resumed from" in m and "step-00000004" in m for m in messages.lines), name


def test_resume_with_no_intact_checkpoint_names_the_folder(tiny_backbone, two_checkpoints, tmp_path):
    import shutil

    out = tmp_path / "out"
    shutil.copytree(two_checkpoints / "out" / "checkpoints", out / "checkpoints")
    for ckpt in _ckpts(out):
        (ckpt / "run.json").unlink()  # as an older rewardlab wrote them
    cfg = _cfg(tiny_backbone, two_checkpoints, save_every=2, mixed_precision="no")
    cfg = TrainConfig(**{**cfg.__dict__, "output_dir": str(out), "resume": "latest"})
    messages = _Messages()
    with pytest.raises(
        FileNotFoundError, match=r"no intact checkpoint of this run .* under .*out/checkpoints"
    ):
        train(cfg, messages)
    assert any("no run.json" in m and "--force" in m for m in messages.lines), messages.lines
    forced = TrainConfig(**{**cfg.__dict__, "force": True})
    assert train(forced).steps == 6


def test_weight_average_is_the_ema_of_the_steps_and_is_swapped_only_inside():
    from rewardlab.training.averaging import WeightAverage

    p = torch.nn.Parameter(torch.zeros(2))
    avg = WeightAverage([p], decay=0.5)
    expected = torch.zeros(2)
    for step, value in enumerate([1.0, 2.0, 3.0, 4.0]):
        with torch.no_grad():
            p.fill_(value)
        avg.update()
        d = min(0.5, (1 + step) / (10 + step))  # the warm-up rule in WeightAverage.update
        expected = d * expected + (1 - d) * value
    with avg.applied():
        assert torch.allclose(p.detach(), expected)
    assert torch.equal(p.detach(), torch.full((2,), 4.0))
    with pytest.raises(ValueError, match="--ema-decay"):
        WeightAverage([p], decay=1.0)


def test_ema_model_is_saved_and_a_resumed_run_continues_the_average(tiny_backbone, tmp_path):
    import shutil

    last = _cfg(tiny_backbone, tmp_path, epochs=2, output_dir=str(tmp_path / "last"))
    full = _cfg(
        tiny_backbone, tmp_path, epochs=2, save_every=2, ema_decay=0.9, output_dir=str(tmp_path / "full")
    )
    train(last)
    train(full)
    w_last, w_full = _weights(tmp_path / "last"), _weights(tmp_path / "full")
    assert any(not torch.allclose(w_last[k], w_full[k]) for k in w_last)  # the average, not the last step
    ckpts = sorted((tmp_path / "full" / "checkpoints").glob("step-*"))
    resumed_dir = tmp_path / "resumed"
    shutil.copytree(ckpts[0], resumed_dir / "checkpoints" / ckpts[0].name)
    resumed = _cfg(
        tiny_backbone,
        tmp_path,
        epochs=2,
        save_every=2,
        ema_decay=0.9,
        output_dir=str(resumed_dir),
        resume="latest",
    )
    train(resumed)
    w_res = _weights(resumed_dir)
    for k in w_full:
        assert torch.equal(w_full[k], w_res[k]), k


def test_bad_ema_decay_names_the_flag():
    with pytest.raises(ValueError, match="--ema-decay must be below 1"):
        TrainConfig(ema_decay=1.0)


def test_head_lr_scales_only_the_reward_head(tiny_backbone, tmp_path):
    """`--head-lr` gives the fresh head its own learning rate: near 0, the head stays at its seeded
    initialisation (the lr-0 run's weights) while the backbone trains at --lr as usual."""
    init = _cfg(tiny_backbone, tmp_path, lr=0.0, output_dir=str(tmp_path / "init"))
    slow_head = _cfg(tiny_backbone, tmp_path, head_lr=1e-9, output_dir=str(tmp_path / "slow"))
    plain = _cfg(tiny_backbone, tmp_path, output_dir=str(tmp_path / "plain"))
    for cfg in (init, slow_head, plain):
        train(cfg)
    w0, ws, wp = (_weights(tmp_path / name) for name in ("init", "slow", "plain"))
    assert torch.allclose(ws["score.weight"], w0["score.weight"], atol=1e-6)
    assert not torch.allclose(wp["score.weight"], w0["score.weight"], atol=1e-4)
    body = [k for k in w0 if k != "score.weight"]
    assert any(not torch.allclose(ws[k], w0[k], atol=1e-4) for k in body)


def test_head_lr_must_be_positive():
    with pytest.raises(ValueError, match="--head-lr must be greater than 0"):
        TrainConfig(head_lr=0.0)


@pytest.mark.parametrize("kind", ["llama", "bert"])
def test_layer_decay_gives_each_block_its_depths_learning_rate(tiny_backbone, kind):
    """`--layer-decay D`: block i of L at lr·D^(L-i), the embeddings below at lr·D^(L+1), the final norm /
    pooler and the reward head at lr; every trainable parameter in exactly one group."""
    from rewardlab.model.build import build_reward_model, transformer_layers
    from rewardlab.model.reward_model import inner_hf
    from rewardlab.training.run import param_groups

    model, _, _ = build_reward_model(tiny_backbone(kind), max_length=32)
    cfg = TrainConfig(lr=1e-3, layer_decay=0.5, head_lr=4.0)
    lr_of = {id(p): g["lr"] for g in param_groups(model, cfg) for p in g["params"]}
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert sorted(lr_of) == sorted(id(p) for p in trainable)
    hf = inner_hf(model)
    base = getattr(hf, hf.base_model_prefix)
    blocks = transformer_layers(base)
    n = len(blocks)
    for i, block in enumerate(blocks):
        assert [lr_of[id(p)] for p in block.parameters()] == pytest.approx(
            [1e-3 * 0.5 ** (n - i)] * len(list(block.parameters()))
        )
    assert lr_of[id(base.get_input_embeddings().weight)] == pytest.approx(1e-3 * 0.5 ** (n + 1))
    head = hf.score if kind == "llama" else hf.classifier
    assert [lr_of[id(p)] for p in head.parameters()] == pytest.approx([4e-3] * len(list(head.parameters())))
    in_blocks = {id(p) for b in blocks for p in b.parameters()}
    last = [p for p in base.parameters() if id(p) not in in_blocks][-1]  # final norm or pooler
    assert lr_of[id(last)] == pytest.approx(1e-3)


def test_layer_decay_slows_the_bottom_of_the_backbone(tiny_backbone, tmp_path):
    """Trained with a tiny decay, the embeddings stay at their pretrained values while the top trains."""
    init = _cfg(tiny_backbone, tmp_path, lr=0.0, output_dir=str(tmp_path / "init"))
    decayed = _cfg(tiny_backbone, tmp_path, layer_decay=1e-4, output_dir=str(tmp_path / "decayed"))
    for cfg in (init, decayed):
        train(cfg)
    w0, wd = _weights(tmp_path / "init"), _weights(tmp_path / "decayed")
    embed = next(k for k in w0 if "embed_tokens" in k)
    assert torch.allclose(wd[embed], w0[embed], atol=1e-6)
    assert not torch.allclose(wd["score.weight"], w0["score.weight"], atol=1e-4)


@pytest.mark.parametrize("value", [0.0, 1.5])
def test_layer_decay_must_be_in_0_1(value):
    with pytest.raises(ValueError, match="--layer-decay"):
        TrainConfig(layer_decay=value)
