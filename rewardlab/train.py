"""Deprecated path: training moved to rewardlab.training (run.py: train; loop.py; checkpoint.py; data.py)."""

from rewardlab import moved

_RUN = "rewardlab.training.run"
__getattr__ = moved(
    __name__,
    {
        **dict.fromkeys(["train", "TrainResult", "resolve_mixed_precision", "check_sharding"], _RUN),
        **dict.fromkeys(["make_accelerator"], _RUN),
        **dict.fromkeys(["TrainingInterrupted", "stop_on_signals"], "rewardlab.training.loop"),
        **dict.fromkeys(
            ["latest_checkpoint", "save_checkpoint", "STATE_FILE"], "rewardlab.training.checkpoint"
        ),
        **dict.fromkeys(["split_by_prompt", "load_datasets"], "rewardlab.training.data"),
        "TrainConfig": "rewardlab.config",
    },
)
