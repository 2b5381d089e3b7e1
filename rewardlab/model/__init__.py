"""The reward model: RewardModel (reward_model.py), building one from a backbone (build.py), the saved folder
(saved.py). Each name is imported from its module; this face re-exports the ones users hold."""

from rewardlab.model.build import build_reward_model
from rewardlab.model.reward_model import RewardModel
from rewardlab.model.saved import ModelCard, load_reward_model, save_reward_model

__all__ = ["ModelCard", "RewardModel", "build_reward_model", "load_reward_model", "save_reward_model"]
