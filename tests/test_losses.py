"""Losses against values derived by hand (σ(x) = 1 / (1 + e^-x) throughout).

Useful identities: σ(0) = 1/2, σ(ln 3) = 3/4, σ(2 ln 3) = 9/10, σ(-ln 3) = 1/4.
"""

import math

import pytest
import torch

from rewardlab.losses import (
    bradley_terry,
    centering,
    group_mean,
    grouped_bt,
    label_smoothed_bt,
    pairwise_accuracy,
    plackett_luce,
)

LN3 = math.log(3.0)


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def test_bradley_terry_hand_values():
    """Δ = 0: -log σ(0) = log 2. Δ = ln 3: -log(3/4) = log(4/3). Mean of both: (log 2 + log 4/3)/2."""
    assert bradley_terry(t(0.0), t(0.0)).item() == pytest.approx(math.log(2))
    assert bradley_terry(t(LN3 + 5.0), t(5.0)).item() == pytest.approx(math.log(4 / 3))
    both = bradley_terry(t(0.0, LN3), t(0.0, 0.0)).item()
    assert both == pytest.approx((math.log(2) + math.log(4 / 3)) / 2)


def test_bradley_terry_margin_shifts_delta():
    """Δ = ln 3 + 1 with m = 1 is Δ_eff = ln 3 → log(4/3).
    Per-pair margins [1, 0] on Δ = [1, 0] → Δ_eff = 0 → log 2 each."""
    assert bradley_terry(t(LN3 + 1.0), t(0.0), margin=1.0).item() == pytest.approx(math.log(4 / 3))
    per_pair = bradley_terry(t(1.0, 0.0), t(0.0, 0.0), margin=t(1.0, 0.0)).item()
    assert per_pair == pytest.approx(math.log(2))
    # A margin makes the same pair cost more.
    assert bradley_terry(t(1.0), t(0.0), margin=0.5) > bradley_terry(t(1.0), t(0.0))


def test_bradley_terry_gradient_at_zero():
    """d/dr_w of -log σ(r_w - r_l) is -σ(-Δ) = -1/2 at Δ = 0; divided by N = 2 pairs: -1/4."""
    r_w = t(0.0, 0.0).requires_grad_()
    bradley_terry(r_w, t(0.0, 0.0)).backward()
    assert r_w.grad.tolist() == pytest.approx([-0.25, -0.25])


def test_centering():
    """r_w + r_l = [2, 0] → mean of squares (4 + 0)/2 = 2 → times coef 0.5 = 1."""
    assert centering(t(1.0, 2.0), t(1.0, -2.0), coef=0.5).item() == pytest.approx(1.0)
    assert centering(t(3.0), t(-3.0), coef=10.0).item() == 0.0


def test_label_smoothing():
    """ε = 0 is BT; ε = 1 is BT with the pair swapped.
    ε = 0.5 at Δ = ln 3: ½(-log 3/4 - log 1/4) = ½(log 4/3 + log 4) = ½ log(16/3)."""
    r_w, r_l = t(LN3, 0.3, -2.0), t(0.0, 1.0, 4.0)
    assert label_smoothed_bt(r_w, r_l, 0.0).item() == pytest.approx(bradley_terry(r_w, r_l).item())
    assert label_smoothed_bt(t(LN3), t(0.0), 0.5).item() == pytest.approx(0.5 * math.log(16 / 3))
    assert label_smoothed_bt(r_w, r_l, 1.0).item() == pytest.approx(bradley_terry(r_l, r_w).item())
    # With ε = 0.1 the loss is minimised where σ(Δ) = 0.9, i.e. Δ = 2 ln 3, not at Δ → ∞.
    delta = torch.tensor([2 * LN3], dtype=torch.float64, requires_grad=True)
    label_smoothed_bt(delta, t(0.0), 0.1).backward()
    assert delta.grad.item() == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="eps"):
        label_smoothed_bt(r_w, r_l, 1.5)


def test_grouped_bt_averages_within_then_across_groups():
    """Group 0: K = 3 rewards [ln 3, 0, -ln 3], pairs (0,1), (1,2) each Δ = ln 3 → log(4/3), and (0,2)
    with Δ = 2 ln 3 → -log(9/10) = log(10/9); group mean g0 = (2 log 4/3 + log 10/9) / 3.
    Group 1: K = 2 rewards [0, 0] → log 2. Loss = (g0 + log 2) / 2, not the flat mean over 4 pairs.
    """
    rewards = t(LN3, 0.0, -LN3, 0.0, 0.0)
    pairs = torch.tensor([[0, 1], [0, 2], [1, 2], [3, 4]])
    group_index = torch.tensor([0, 0, 0, 1])
    g0 = (2 * math.log(4 / 3) + math.log(10 / 9)) / 3
    loss = grouped_bt(rewards, group_index, pairs).item()
    assert loss == pytest.approx((g0 + math.log(2)) / 2)
    flat = (2 * math.log(4 / 3) + math.log(10 / 9) + math.log(2)) / 4
    assert abs(loss - flat) > 1e-3

    # One group alone equals the mean of its three pair losses (= plain BT on those pairs).
    alone = grouped_bt(rewards, torch.tensor([0, 0, 0]), pairs[:3]).item()
    assert alone == pytest.approx(g0)
    assert alone == pytest.approx(bradley_terry(rewards[pairs[:3, 0]], rewards[pairs[:3, 1]]).item())


def test_grouped_bt_margins_smoothing_and_sparse_group_ids():
    """Margins per pair shift Δ as in BT; group ids need not be contiguous.
    ε = 0.5 at Δ = ln 3 → ½ log(16/3) as in test_label_smoothing."""
    rewards = t(LN3 + 2.0, 0.0, 0.0, 0.0)
    pairs = torch.tensor([[0, 1], [2, 3]])
    loss = grouped_bt(rewards, torch.tensor([7, 2]), pairs, margins=t(2.0, 0.0)).item()
    assert loss == pytest.approx((math.log(4 / 3) + math.log(2)) / 2)
    smoothed = grouped_bt(t(LN3, 0.0), torch.tensor([0]), torch.tensor([[0, 1]]), eps=0.5).item()
    assert smoothed == pytest.approx(0.5 * math.log(16 / 3))


def test_grouped_bt_rejects_bad_shapes():
    with pytest.raises(ValueError, match="one group id per pair"):
        grouped_bt(t(0.0, 1.0), torch.tensor([0, 0]), torch.tensor([[0, 1]]))
    with pytest.raises(ValueError, match="shape"):
        grouped_bt(t(0.0, 1.0), torch.tensor([0]), torch.tensor([0, 1]))


def test_group_mean():
    """Groups {0: [1, 3], 1: [10]} → means 2 and 10 → 6 (the flat mean would be 14/3)."""
    assert group_mean(t(1.0, 3.0, 10.0), torch.tensor([0, 0, 1])).item() == pytest.approx(6.0)


def test_plackett_luce_k2_equals_bt():
    rewards = t(0.7, -1.2, 2.0, 2.5)
    order = torch.tensor([[0, 1], [2, 3]])
    expected = bradley_terry(rewards[order[:, 0]], rewards[order[:, 1]]).item()
    assert plackett_luce(rewards, order).item() == pytest.approx(expected)


def test_plackett_luce_k3_hand_value():
    """r = [ln 2, 0, 0], so exp(r) = [2, 1, 1].
    Order 0 ≻ 1 ≻ 2: P = 2/4 · 1/2 = 1/4 → NLL log 4.
    Order 2 ≻ 1 ≻ 0: P = 1/4 · 1/3 = 1/12 → NLL log 12.
    """
    rewards = t(math.log(2), 0.0, 0.0)
    assert plackett_luce(rewards, torch.tensor([0, 1, 2])).item() == pytest.approx(math.log(4))
    assert plackett_luce(rewards, torch.tensor([2, 1, 0])).item() == pytest.approx(math.log(12))
    both = plackett_luce(rewards, torch.tensor([[0, 1, 2], [2, 1, 0]])).item()
    assert both == pytest.approx((math.log(4) + math.log(12)) / 2)


def test_plackett_luce_padding():
    """A K = 3 ranking (NLL log 4) batched with a K = 2 ranking padded by -1 (Δ = ln 3 → log 4/3)."""
    rewards = t(math.log(2), 0.0, 0.0, LN3, 0.0)
    order = torch.tensor([[0, 1, 2], [3, 4, -1]])
    assert plackett_luce(rewards, order).item() == pytest.approx((math.log(4) + math.log(4 / 3)) / 2)


def test_plackett_luce_gradient_matches_bt_for_k2():
    a = t(0.3, -0.4).requires_grad_()
    plackett_luce(a, torch.tensor([1, 0])).backward()
    b = t(0.3, -0.4).requires_grad_()
    bradley_terry(b[1:], b[:1]).backward()
    assert a.grad.tolist() == pytest.approx(b.grad.tolist())


@pytest.mark.parametrize("big", [1e4, -1e4])
def test_losses_finite_at_large_delta(big):
    """At |Δ| = 1e4 (float32) every loss and gradient stays finite; Δ = -1e4 costs about 1e4."""
    r_w = torch.tensor([big, 0.0], requires_grad=True)
    r_l = torch.tensor([0.0, 0.0], requires_grad=True)
    rewards = torch.tensor([big, 0.0, 0.0], requires_grad=True)
    losses = [
        bradley_terry(r_w, r_l),
        bradley_terry(r_w, r_l, margin=1.0),
        label_smoothed_bt(r_w, r_l, 0.1),
        centering(r_w, r_l, 0.01),
        grouped_bt(rewards, torch.tensor([0, 0, 0]), torch.tensor([[0, 1], [0, 2], [1, 2]])),
        plackett_luce(rewards, torch.tensor([[0, 1, 2], [1, 0, -1]])),
    ]
    total = sum(losses)
    total.backward()
    assert all(torch.isfinite(loss) for loss in losses)
    assert torch.isfinite(r_w.grad).all() and torch.isfinite(r_l.grad).all()
    assert torch.isfinite(rewards.grad).all()
    if big < 0:  # -log σ(-1e4) = 1e4 (+ log 2 for the second pair), averaged over 2 pairs
        assert losses[0].item() == pytest.approx((1e4 + math.log(2)) / 2, rel=1e-6)


def test_pairwise_accuracy_ties_count_half():
    """Pairs: win, tie, loss → (1 + 0.5 + 0) / 3 = 0.5; a constant model scores 0.5."""
    assert pairwise_accuracy(t(1.0, 0.0, 0.0), t(0.0, 0.0, 1.0)).item() == pytest.approx(0.5)
    assert pairwise_accuracy(t(2.0, 3.0, 4.0, 5.0), t(1.0, 1.0, 1.0, 9.0)).item() == pytest.approx(0.75)
    assert pairwise_accuracy(torch.zeros(5), torch.zeros(5)).item() == 0.5
