"""rewardlab: reward modeling for RLHF."""

__version__ = "0.1.0"
