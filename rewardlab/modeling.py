"""Deprecated path: the reward model moved to rewardlab.model (reward_model.py, build.py, saved.py)."""

from rewardlab import moved

_SAVED = "rewardlab.model.saved"
_BUILD = "rewardlab.model.build"
_MODEL = "rewardlab.model.reward_model"
__getattr__ = moved(
    __name__,
    {
        **dict.fromkeys(
            ["ModelCard", "CARD_NAME", "CARD_VERSION", "load_reward_model", "save_reward_model"], _SAVED
        ),
        **dict.fromkeys(["unwrap_hf_model"], _SAVED),
        **dict.fromkeys(["build_reward_model", "resolve_backbone", "ensure_pad_token", "PAD_TOKEN"], _BUILD),
        **dict.fromkeys(
            ["apply_lora", "disable_dropout", "freeze_bottom_layers", "is_encoder_config"], _BUILD
        ),
        **dict.fromkeys(["RewardModel", "POOLINGS", "score_head"], _MODEL),
    },
)
