"""--stream: the on-disk token cache holds exactly what the in-memory path encodes, and trains the same."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from rewardlab.data.batch_plan import plan_batches
from rewardlab.data.batching import batch_indices, encode_groups
from rewardlab.data.loading import data_hash, load_preferences
from rewardlab.data.token_cache import META_FILE, open_token_cache
from rewardlab.data.types import DataError


def _rows(n: int = 30) -> list[dict]:
    rows = [
        {
            "prompt": f"help me with bread number {i}, " + "please " * (i % 5),
            "chosen": " thanks, here is good help " + "with the cake " * (i % 4),
            "rejected": " no.",
            "subset": "odd" if i % 2 else "even",
            **({"margin": 0.5} if i % 3 == 0 else {}),
        }
        for i in range(n)
    ]
    return rows + [rows[4], {"prompt": "hi", "chosen": " same", "rejected": " same"}]  # duplicate, tie


def _write(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _encoder(tiny_backbone, kind: str, max_length: int = 24):
    from transformers import AutoTokenizer

    from rewardlab.data.encoding import TextEncoder

    return TextEncoder(AutoTokenizer.from_pretrained(tiny_backbone(kind)), max_length=max_length)


def _held(group) -> bool:
    return "number 7," in group.prompt or "number 12," in group.prompt


@pytest.mark.parametrize("kind", ["bert", "llama", "qwen2"])
def test_encode_groups_gives_encode_ids_when_nothing_is_cut(tiny_backbone, kind):
    enc = _encoder(tiny_backbone, kind, max_length=64)
    chat = [{"role": "user", "content": "help with bread"}]
    groups = [
        ("help me with the cake please", [" thanks here is help", " no"]),  # one prompt, tokenised once
        ("", ["a whole transcript with no prompt"]),
        (chat, [" sure, here is the bread", [{"role": "assistant", "content": "no"}]]),
    ]
    expected = [[enc.encode(p, r) for r in rs] for p, rs in groups]
    assert not any(e.truncated for g in expected for e in g)
    assert enc.encode_groups(groups) == expected
    assert enc.encode_groups([]) == []


def test_cache_holds_what_encode_groups_makes_and_reports_the_same(tiny_backbone, tmp_path):
    data = _write(tmp_path / "prefs.jsonl", _rows())
    for kind in ("bert", "llama"):  # token type ids, and none
        enc = _encoder(tiny_backbone, kind)
        cache = open_token_cache(data, enc, holdout=_held, holdout_key="two", cache_dir=tmp_path / "c")
        groups, summary = load_preferences(data)
        train = [g for g in groups if not _held(g)]
        expected, report = encode_groups(train, enc)
        assert len(cache) == 28 and cache.num_pairs == 28 and not cache.reused
        assert cache.take(range(len(cache))) == expected
        assert cache.take([5, 0, 5]) == [expected[5], expected[0], expected[5]]
        assert cache.lengths.tolist() == [g.num_tokens for g in expected]
        assert report.responses_cut > 0 and cache.truncation == report
        assert cache.summary.lines() == summary.lines()
        assert "dropped 1: exact duplicate" in "\n".join(cache.summary.lines())
        assert cache.data_hash == data_hash(train)
        assert cache.heldout == [g for g in groups if _held(g)]
        again = open_token_cache(data, enc, holdout=_held, holdout_key="two", cache_dir=tmp_path / "c")
        assert again.reused and again.folder == cache.folder
        assert again.take(range(len(again))) == expected and again.heldout == cache.heldout
        assert again.summary.lines() == summary.lines() and again.truncation == report


def test_cache_key_follows_data_tokenizer_budget_and_holdout(tiny_backbone, tmp_path):
    data = _write(tmp_path / "prefs.jsonl", _rows())
    root = tmp_path / "c"
    first = open_token_cache(data, _encoder(tiny_backbone, "llama"), cache_dir=root)
    assert open_token_cache(data, _encoder(tiny_backbone, "llama"), cache_dir=root).reused
    others = [
        open_token_cache(data, _encoder(tiny_backbone, "llama", max_length=32), cache_dir=root),
        open_token_cache(data, _encoder(tiny_backbone, "gpt2"), cache_dir=root),
        open_token_cache(
            data, _encoder(tiny_backbone, "llama"), holdout=_held, holdout_key="x", cache_dir=root
        ),
    ]
    assert not any(o.reused for o in others)
    assert len({first.folder, *(o.folder for o in others)}) == 4
    _write(tmp_path / "prefs.jsonl", _rows(31))  # the file changed: its cache is stale
    changed = open_token_cache(data, _encoder(tiny_backbone, "llama"), cache_dir=root)
    assert not changed.reused and len(changed) == 31


def test_bad_rows_raise_with_file_line_and_leave_no_cache(tiny_backbone, tmp_path):
    rows = _rows(6)
    rows[2] = {"prompt": "p", "chosen": 3, "rejected": "r"}
    data = _write(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError) as err:
        open_token_cache(data, _encoder(tiny_backbone, "llama"), cache_dir=tmp_path / "c")
    assert f"{data}:3: field 'chosen' must be a string" in str(err.value)
    assert "none of it was used" in str(err.value)
    assert not [p for p in (tmp_path / "c").iterdir() if p.is_dir()]


def test_a_build_that_died_is_rebuilt(tiny_backbone, tmp_path):
    data = _write(tmp_path / "prefs.jsonl", _rows())
    enc = _encoder(tiny_backbone, "llama")
    cache = open_token_cache(data, enc, cache_dir=tmp_path / "c")
    (cache.folder / META_FILE).unlink()
    rebuilt = open_token_cache(data, enc, cache_dir=tmp_path / "c")
    assert not rebuilt.reused and rebuilt.take(range(3)) == cache.take(range(3))


def test_shared_prompts_finds_leaked_prompts_after_normalising(tiny_backbone, tmp_path):
    data = _write(tmp_path / "prefs.jsonl", _rows(10))
    cache = open_token_cache(data, _encoder(tiny_backbone, "llama"), cache_dir=tmp_path / "c")
    groups, _ = load_preferences(_write(tmp_path / "other.jsonl", [_rows(10)[0], _rows(12)[11]]))
    groups[0].prompt = groups[0].prompt.replace(" ", "   ") + "\n"  # same prompt, other whitespace
    assert cache.shared_prompts(groups) == ["help me with bread number 0,"]


@pytest.mark.parametrize(
    ("n", "size", "grouped", "shuffle"),
    [
        (0, 4, True, True),
        (103, 4, True, True),
        (97, 3, False, True),
        (250, 8, True, False),
        (57, 1, True, True),
    ],
)
def test_plan_batches_draws_batch_indices_batches(n, size, grouped, shuffle):
    lengths = np.random.default_rng(n).integers(1, 60, n)
    for epoch in (0, 1):
        expected = batch_indices(lengths.tolist(), size, 3, epoch, shuffle=shuffle, length_grouped=grouped)
        plan = plan_batches(lengths.astype(np.int32), size, 3, epoch, shuffle=shuffle, length_grouped=grouped)
        assert [b.tolist() for b in plan] == expected
        shard = plan.shard(1, 2)
        assert [b.tolist() for b in shard] == expected[1::2][: len(expected) // 2]
        steps = shard.steps(3)
        share = expected[1::2][: len(expected) // 2]
        assert [[b.tolist() for b in s] for s in steps] == [share[i : i + 3] for i in range(0, len(share), 3)]


def test_stream_trains_exactly_like_in_memory(tiny_backbone, tmp_path, monkeypatch):
    from rewardlab.config import TrainConfig
    from rewardlab.training.run import train

    monkeypatch.setenv("REWARDLAB_TOKEN_CACHE", str(tmp_path / "cache"))
    data = _write(tmp_path / "prefs.jsonl", _rows(40))

    def run(name: str, stream: bool):
        cfg = TrainConfig(
            backbone=tiny_backbone("llama"), data=data, output_dir=str(tmp_path / name), max_length=24,
            batch_size=3, grad_accum=2, lr=2e-3, mixed_precision="no", eval_fraction=0.2, stream=stream,
        )  # fmt: skip
        result = train(cfg)
        losses = [
            json.loads(x).get("loss") for x in (tmp_path / name / "metrics.jsonl").read_text().splitlines()
        ]
        return result, losses, load_file(str(tmp_path / name / "model.safetensors"))

    base, base_losses, base_w = run("memory", False)
    streamed, losses, weights = run("stream", True)
    assert (
        streamed.steps == base.steps == 6 and streamed.train_pairs == base.train_pairs == 31
    )  # 40 rows, 9 held out
    assert losses == pytest.approx(base_losses, abs=1e-6)
    assert weights.keys() == base_w.keys()
    assert all(torch.allclose(weights[k], base_w[k], atol=1e-6) for k in weights)
    assert streamed.eval.accuracy == base.eval.accuracy
    assert [line for line in streamed.data_lines if "token cache" not in line] == base.data_lines
    card = json.loads((tmp_path / "stream" / "rewardlab.json").read_text())
    assert card["data_hash"] == json.loads((tmp_path / "memory" / "rewardlab.json").read_text())["data_hash"]
