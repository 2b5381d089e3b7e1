"""Reward-model losses as pure tensor functions: rewards in, a scalar loss (or accuracy) out.

Kept free of models, batches and configs so each formula can be read next to its paper and checked
against hand-derived values (tests/test_losses.py). Notation: r_w / r_l are the scalar rewards of the
preferred (winner) and rejected (loser) response of each pair, Δ = r_w - r_l, σ the logistic function.
torch is imported at module level because only training and evaluation code imports this module.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def bradley_terry(r_w: Tensor, r_l: Tensor, margin: Tensor | float | None = None) -> Tensor:
    """Bradley-Terry loss: mean over pairs of -log σ(r_w - r_l - m).

    `margin` m (scalar or one value per pair, default 0) asks the winner to lead by at least m
    (Llama 2 uses the annotators' preference strength). Computed with logsigmoid, so it stays finite
    for any |Δ|: Δ = 0 gives log 2, Δ = ln 3 gives log(4/3).
    """
    delta = r_w - r_l
    if margin is not None:
        delta = delta - margin
    return -F.logsigmoid(delta).mean()


def centering(r_w: Tensor, r_l: Tensor, coef: float) -> Tensor:
    """Centering regulariser: coef · mean((r_w + r_l)²).

    The Bradley-Terry loss only sees differences, so rewards can drift to any offset; this term
    pulls the mean reward of each pair towards 0 (Eisenstein et al. 2023; TRL's
    `center_rewards_coefficient`, where 0.01 is typical). Add it to the pair loss.
    """
    return coef * (r_w + r_l).pow(2).mean()


def label_smoothed_bt(r_w: Tensor, r_l: Tensor, eps: float) -> Tensor:
    """Label-smoothed Bradley-Terry for noisy labels: mean of -(1-ε) log σ(Δ) - ε log σ(-Δ).

    Treats each label as correct with probability 1-ε, so the loss stops pushing once σ(Δ) reaches
    1-ε instead of driving Δ to infinity on pairs the annotators may have flipped. ε = 0 is
    `bradley_terry`; ε = 0.5 makes the loss symmetric (minimised at Δ = 0).
    """
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"label smoothing eps={eps} must lie in [0, 1] (typical: 0.05-0.2)")
    delta = r_w - r_l
    return -((1.0 - eps) * F.logsigmoid(delta) + eps * F.logsigmoid(-delta)).mean()


def group_mean(values: Tensor, group_index: Tensor) -> Tensor:
    """Mean over groups of the per-group mean of `values`: (1/G) Σ_g (1/|g|) Σ_{p ∈ g} values[p].

    `group_index[p]` names the group of element p (any non-negative ints; groups with no element are
    ignored), so a group with many elements counts as much as a group with two.
    """
    if values.numel() == 0:
        return values.sum()  # 0, still attached to the graph
    group_index = group_index.to(values.device)
    n_groups = int(group_index.max()) + 1
    counts = torch.bincount(group_index, minlength=n_groups).to(values.dtype)
    sums = torch.zeros(n_groups, dtype=values.dtype, device=values.device).index_add(0, group_index, values)
    present = counts > 0
    return (sums[present] / counts[present]).mean()


def grouped_bt(
    rewards: Tensor,
    group_index: Tensor,
    pairs: Tensor,
    margins: Tensor | None = None,
    eps: float = 0.0,
) -> Tensor:
    """K-wise loss: Bradley-Terry averaged over the C(K,2) pairs of each prompt, then over prompts.

        loss = (1/G) Σ_g (1/P_g) Σ_{(w,l) ∈ g} -log σ(r[w] - r[l] - m_wl)

    `rewards` (N,) holds every response of the batch once; `pairs` (P, 2) is a LongTensor of
    (winner, loser) indices into `rewards`; `group_index` (P,) says which group (prompt) each pair
    belongs to; `margins` (P,) is optional. Averaging within each group first makes each prompt count
    once rather than K(K-1)/2 times (InstructGPT, section 3.5). `eps` > 0 applies the label smoothing
    of `label_smoothed_bt` to each pair; ε = 0 (default) is plain Bradley-Terry.
    """
    if pairs.ndim != 2 or pairs.shape[-1] != 2:
        raise ValueError(f"pairs must have shape (P, 2) of (winner, loser) indices, got {tuple(pairs.shape)}")
    if group_index.shape != pairs.shape[:1]:
        raise ValueError(
            f"group_index has shape {tuple(group_index.shape)} but there are {pairs.shape[0]} pairs; "
            "give one group id per pair"
        )
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"label smoothing eps={eps} must lie in [0, 1] (typical: 0.05-0.2)")
    pairs = pairs.to(rewards.device)
    delta = rewards[pairs[:, 0]] - rewards[pairs[:, 1]]
    if margins is not None:
        delta = delta - margins.to(delta)
    per_pair = -F.logsigmoid(delta)
    if eps:
        per_pair = (1.0 - eps) * per_pair - eps * F.logsigmoid(-delta)
    return group_mean(per_pair, group_index)


def plackett_luce(rewards: Tensor, ranking_order: Tensor) -> Tensor:
    """Plackett-Luce negative log-likelihood of full rankings, averaged over rankings.

    For a ranking o_1 ≻ o_2 ≻ … ≻ o_K (best first):

        -log P(o) = Σ_{i=1}^{K-1} [ log Σ_{j=i}^{K} exp(r[o_j]) - r[o_i] ]

    i.e. the best response is picked from all K by softmax, the next from the remaining K-1, and so
    on. For K = 2 this is exactly `bradley_terry`. `rewards` is the flat (N,) tensor of the batch;
    `ranking_order` is a LongTensor (B, K) of indices into `rewards`, best first (a 1-D tensor is one
    ranking); rankings shorter than K are padded at the end with -1.

    Ties: only strict orders are accepted. A tied block has no order to learn, and breaking it by
    index would teach a preference the annotator never expressed; train rankings with ties through
    `grouped_bt`, which simply has no pair between tied responses.
    """
    order = ranking_order.to(rewards.device)
    if order.ndim == 1:
        order = order.unsqueeze(0)
    if order.ndim != 2:
        raise ValueError(f"ranking_order must be (B, K) or (K,), got shape {tuple(ranking_order.shape)}")
    valid = order >= 0
    scores = rewards[order.clamp(min=0)]
    # Padding gets a finite, hugely negative score (exp underflows to 0); -inf would give NaN gradients.
    floor = scores.detach().min() - 1e4
    scores = torch.where(valid, scores, floor)
    # Suffix log-sum-exp: lse[i] = log Σ_{j >= i} exp(scores[j]).
    lse = torch.logcumsumexp(scores.flip(-1), dim=-1).flip(-1)
    # Stage i counts when item i and item i+1 exist (the last item's stage is log 1 = 0).
    stage = valid[:, :-1] & valid[:, 1:]
    nll = ((lse[:, :-1] - scores[:, :-1]) * stage).sum(-1)
    return nll.mean()


def pairwise_accuracy(r_w: Tensor, r_l: Tensor) -> Tensor:
    """Fraction of pairs the rewards order correctly: mean of 1[r_w > r_l] + ½·1[r_w = r_l].

    Ties count half, so a constant reward model scores exactly 0.5 rather than 0 or 1.
    """
    return ((r_w > r_l).to(torch.float32) + 0.5 * (r_w == r_l).to(torch.float32)).mean()


# --- process and outcome reward models (rewardlab.prm.objective) ------------------------------------


def step_bce(token_logits: Tensor, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """Mean binary cross-entropy over the labelled steps of a batch (soft targets), and step accuracy.

    `token_logits` (batch, seq) is the head at every token; the batch names each labelled step's
    (step_rows, step_cols) marker position and its label y in [0, 1] (soft labels stay floats, unlike
    TRL's PRMTrainer): mean of -y log σ(z) - (1-y) log σ(-z). A logit 0 gives log 2 whatever y is.
    """
    logits = token_logits[batch["step_rows"], batch["step_cols"]]
    y = batch["step_labels"].to(logits.dtype)
    if not len(y):  # every step of this micro-batch lost its label: no signal, but keep the graph
        return token_logits.sum() * 0.0, token_logits.new_tensor(0.0)
    loss = F.binary_cross_entropy_with_logits(logits, y)
    return loss, ((logits.detach() > 0) == (y >= 0.5)).float().mean()


def outcome_bce(rewards: Tensor, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """Pointwise binary cross-entropy of the solution reward against its outcome label, and accuracy.

    Solutions without an outcome label (NaN in ``batch["outcomes"]``) are left out of the mean.
    """
    y = batch["outcomes"].to(rewards.dtype)
    keep = ~y.isnan()
    if not keep.any():
        return rewards.sum() * 0.0, rewards.new_tensor(0.0)
    loss = F.binary_cross_entropy_with_logits(rewards[keep], y[keep])
    return loss, ((rewards[keep].detach() > 0) == (y[keep] >= 0.5)).float().mean()


def attribute_mse(predicted: Tensor, target: Tensor) -> Tensor:
    """Regression of a multi-attribute head on ratings (SteerLM / HelpSteer2 style):

        loss = (1/(N·A)) Σ_i Σ_a (ŷ[i, a] - y[i, a])²

    `predicted` and `target` are (N, A): N responses, A attributes, on the ratings' own scale.
    """
    if predicted.shape != target.shape:
        raise ValueError(
            f"predicted {tuple(predicted.shape)} and target {tuple(target.shape)} differ in shape"
        )
    return F.mse_loss(predicted, target.to(predicted))


def scaled_bt(rewards: Tensor, group_index: Tensor, pairs: Tensor, magnitudes: Tensor) -> Tensor:
    """Scaled Bradley-Terry (Nemotron, arXiv 2410.01257): each pair's -log σ(r_w - r_l) weighted by the
    strength of the preference, here the gap between its two ratings, then averaged as `grouped_bt`
    averages (over each prompt's pairs, then over prompts):

        loss = (1/G) Σ_g (1/P_g) Σ_{(w,l) ∈ g} m_wl · -log σ(r[w] - r[l])

    A pair two rating points apart pushes twice as hard as one a point apart; there is no margin.
    """
    pairs = pairs.to(rewards.device)
    delta = rewards[pairs[:, 0]] - rewards[pairs[:, 1]]
    per_pair = magnitudes.to(delta) * -F.logsigmoid(delta)
    return group_mean(per_pair, group_index)
