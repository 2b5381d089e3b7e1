"""Deprecated path: the reward server's client moved to rewardlab.serve.client."""

from rewardlab import moved

__getattr__ = moved(
    __name__,
    dict.fromkeys(
        ["RewardClient", "RewardServerError", "TRLRewardFunction", "openrlhf_reward_func"],
        "rewardlab.serve.client",
    ),
)
