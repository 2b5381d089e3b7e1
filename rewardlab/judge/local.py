"""A local causal LM as a judge backend: exact label log-probabilities from its next-token logits (no
sampling), batched forward passes, and the hidden state the drift statistics read.

The model is any `AutoModelForCausalLM` that `rewardlab.model.build.resolve_backbone` resolves: the
packaged ``smollm2`` (SmolLM2-135M-Instruct, GGUF, offline), a folder, a .gguf file, a cached hub name.
The judge prompt is the template's body as one user message through the tokenizer's chat template
(plain text when it has none), then the template's ``answer_prefix`` as the start of the answer.

Each label's tokens are found by encoding ``context + label`` and cutting at the longest prefix all
labels share with the context, so a label that merges with the prefix's trailing space (SmolLM2's
"Answer: A" is "Answer", ":", " A") is read as the model would write it. One forward pass per item
covers a multi-token label: the logits along ``context + "1"`` give both P(1 | context) and
P(0 | context, 1) for "10" (rewardlab.judge.ratings).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rewardlab.judge.ratings import JudgeItemError, label_logprobs, tree_prefixes

log = logging.getLogger(__name__)


def model_fingerprint(path: str, gguf: str | None) -> str:
    """A cache identity for local weights: the path plus each weight file's size and the SHA-256 of its
    first and last MiB (cheap on a 270 MB file, and it changes when the weights do)."""
    folder = Path(path)
    files = [folder / gguf] if gguf else sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin"))
    h = hashlib.sha256(str(folder.resolve() / (gguf or "")).encode())
    for f in files:
        size = f.stat().st_size
        h.update(f"{f.name}:{size}".encode())
        with open(f, "rb") as fh:
            h.update(fh.read(1 << 20))
            fh.seek(max(0, size - (1 << 20)))
            h.update(fh.read(1 << 20))
    if not files:  # a hub name resolved by transformers' cache: its name is all we have
        h.update(path.encode())
    return "local:" + h.hexdigest()[:32]


def _common_prefix(seqs: Sequence[Sequence[int]]) -> int:
    n = min(len(s) for s in seqs)
    for i in range(n):
        if any(s[i] != seqs[0][i] for s in seqs[1:]):
            return i
    return n


class LocalBackend:
    """Label log-probabilities and embeddings from a local causal LM."""

    def __init__(
        self,
        model: str,
        device: str | None = None,
        bf16: bool = False,
        max_length: int = 2048,
        max_batch_tokens: int = 4096,
        hf_model: Any = None,
        tokenizer: Any = None,
    ) -> None:
        import torch

        from rewardlab.model.build import resolve_backbone
        from rewardlab.scoring.scorer import pick_device

        path, gguf = resolve_backbone(model)
        self.device = pick_device(device)
        if hf_model is None:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            kw = {"gguf_file": gguf} if gguf else {}
            tokenizer = AutoTokenizer.from_pretrained(path, **kw)
            dtype = torch.bfloat16 if bf16 else torch.float32
            hf_model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **kw)
        self.model = hf_model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.chat = bool(getattr(tokenizer, "chat_template", None))
        self.max_length = max_length
        self.max_batch_tokens = max_batch_tokens
        self.model_id = model_fingerprint(path, gguf)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.pad_id = int(pad if pad is not None else 0)

    def render(self, user_text: str, answer_prefix: str) -> str:
        """The exact text the model reads: one user turn, the assistant turn opened, the answer prefix."""
        if not self.chat:
            return f"{user_text}\n{answer_prefix}"
        messages = [{"role": "user", "content": user_text}]
        opened = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return opened + answer_prefix

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=not self.chat)["input_ids"])

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(x) for x in self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]]

    def label_logprobs(
        self, contexts: Sequence[str], labels: Sequence[str]
    ) -> list[dict[str, float] | JudgeItemError]:
        """log P(label | context) for every label, per context; an item that cannot be scored (too long)
        is a JudgeItemError in its place."""
        plans: list[Any] = []
        rows: list[tuple[int, list[int], int, tuple]] = []  # (item, token ids, root length, chain)
        for i, ctx in enumerate(contexts):
            ids = self.encode(ctx)
            full = {label: self.encode(ctx + label) for label in labels}
            root = _common_prefix([ids, *full.values()])
            tails = {label: tuple(seq[root:]) for label, seq in full.items()}
            if root == 0 or any(not t for t in tails.values()):
                plans.append(JudgeItemError(f"labels {list(labels)} cannot be separated from the prompt"))
                continue
            needed = tree_prefixes(tails)
            chains = [p for p in needed if not any(len(q) > len(p) and q[: len(p)] == p for q in needed)]
            if root + max(len(c) for c in chains) > self.max_length:
                plans.append(JudgeItemError(f"prompt of {root} tokens exceeds max_length {self.max_length}"))
                continue
            plans.append((tails, needed))
            for chain in chains:
                rows.append((i, ids[:root] + list(chain), root, chain))
        dists: dict[int, dict[tuple, dict[int, float]]] = {}
        for i, row_dists in self._forward(rows, plans):
            dists.setdefault(i, {}).update(row_dists)
        out: list[dict[str, float] | JudgeItemError] = []
        for i, plan in enumerate(plans):
            out.append(plan if isinstance(plan, JudgeItemError) else label_logprobs(plan[0], dists[i]))
        return out

    def _forward(self, rows: list[tuple[int, list[int], int, tuple]], plans: list[Any]) -> list[tuple]:
        """Run the rows in token-budget batches; per row, the log-probabilities of the tokens each label
        tree needs after each prefix along its chain."""
        import torch

        from rewardlab.data.batching import token_budget_batches
        from rewardlab.scoring.scorer import no_grad_for

        results = []
        lengths = [len(r[1]) for r in rows]
        with no_grad_for(self.model):
            for idx in token_budget_batches(lengths, self.max_batch_tokens):
                batch = [rows[j] for j in idx]
                width = max(len(r[1]) for r in batch)
                ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for b, (_, seq, _, _) in enumerate(batch):  # left padding: every row ends at width - 1
                    ids[b, width - len(seq) :] = torch.tensor(seq)
                    mask[b, width - len(seq) :] = 1
                pos = (mask.cumsum(-1) - 1).clamp(min=0)
                # rows end together (left padding), so the positions read are the last `keep` ones: the
                # vocabulary projection runs there only (all positions: batch x width x 49k floats)
                keep = 1 + max(len(r[3]) for r in batch)
                kw = {"input_ids": ids.to(self.device), "attention_mask": mask.to(self.device)}
                kw["position_ids"] = pos.to(self.device)
                try:
                    logits = self.model(**kw, logits_to_keep=keep).logits
                except TypeError:  # a model class without logits_to_keep: project everything, then slice
                    logits = self.model(**kw).logits[:, -keep:]
                for b, (item, _seq, _root, chain) in enumerate(batch):
                    tails, needed = plans[item]
                    row: dict[tuple, dict[int, float]] = {}
                    for k in range(len(chain) + 1):
                        prefix = chain[:k]
                        if prefix not in needed:
                            continue
                        at = logits.shape[1] - 1 - len(chain) + k
                        lp = torch.log_softmax(logits[b, at].float(), -1)
                        toks = {t[k] for t in tails.values() if len(t) > k and t[:k] == prefix}
                        row[prefix] = {t: float(lp[t]) for t in toks}
                    results.append((item, row))
        return results

    def embed(self, contexts: Sequence[str]) -> list[list[float]]:
        """The last layer's hidden state at each context's final token (what the next-token head reads)."""
        import torch

        from rewardlab.data.batching import token_budget_batches
        from rewardlab.scoring.scorer import no_grad_for

        encoded = [self.encode(c)[-self.max_length :] for c in contexts]
        out: list[list[float]] = [[] for _ in encoded]
        with no_grad_for(self.model):
            for idx in token_budget_batches([len(e) for e in encoded], self.max_batch_tokens):
                width = max(len(encoded[j]) for j in idx)
                ids = torch.full((len(idx), width), self.pad_id, dtype=torch.long)
                mask = torch.zeros((len(idx), width), dtype=torch.long)
                for b, j in enumerate(idx):
                    ids[b, width - len(encoded[j]) :] = torch.tensor(encoded[j])
                    mask[b, width - len(encoded[j]) :] = 1
                pos = (mask.cumsum(-1) - 1).clamp(min=0)
                hidden = self.model(
                    input_ids=ids.to(self.device),
                    attention_mask=mask.to(self.device),
                    position_ids=pos.to(self.device),
                    output_hidden_states=True,
                ).hidden_states[-1]
                for b, j in enumerate(idx):
                    out[j] = hidden[b, -1].float().cpu().tolist()
        return out
