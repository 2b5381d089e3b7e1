"""The shipped accelerate configs (configs/accelerate/) parse, and accelerate's own launcher code turns
each into the plugin it promises, without a GPU: DDP on 8 GPUs, FSDP2 full shard wrapping each
transformer block, DeepSpeed ZeRO-2 and ZeRO-3 (gathering full weights on save), and 2 nodes.

Nothing here launches a run: docs/scaling.md says what was and was not run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

CONFIGS = Path(__file__).resolve().parent.parent / "configs" / "accelerate"
NAMES = ["ddp-8gpu", "fsdp-8gpu", "fsdp-2node", "zero2-8gpu", "zero3-8gpu"]


def _launch_env(name: str) -> tuple[Any, dict[str, str]]:
    """What `accelerate launch --config_file NAME.yaml -m rewardlab train` hands its processes."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env

    argv = ["--config_file", str(CONFIGS / f"{name}.yaml"), "-m", "rewardlab", "train"]
    args, defaults, _ = _validate_launch_command(launch_command_parser().parse_args(argv))
    if args.use_deepspeed:
        args.deepspeed_fields_from_accelerate_config = ",".join(defaults.deepspeed_config)
        _, env = prepare_deepspeed_cmd_env(args)
    else:
        env = prepare_multi_gpu_env(args)
    return args, {k: v for k, v in env.items() if k.startswith(("ACCELERATE_", "FSDP_"))}


def test_every_shipped_config_is_tested():
    assert sorted(p.stem for p in CONFIGS.glob("*.yaml")) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_config_parses_with_only_keys_accelerate_knows(name):
    from accelerate.commands.config.config_args import load_config_from_file

    raw = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())
    cfg = load_config_from_file(str(CONFIGS / f"{name}.yaml"))  # unknown top-level keys raise here
    assert cfg.num_processes == raw["num_processes"] == 8 * raw["num_machines"]
    assert cfg.mixed_precision == "bf16" and cfg.use_cpu is False


def test_ddp_config_launches_8_processes_without_sharding():
    args, env = _launch_env("ddp-8gpu")
    assert args.multi_gpu and args.num_processes == 8 and args.num_machines == 1
    assert not args.use_fsdp and not args.use_deepspeed
    assert "ACCELERATE_USE_FSDP" not in env and "ACCELERATE_USE_DEEPSPEED" not in env


@pytest.mark.parametrize("name", ["fsdp-8gpu", "fsdp-2node"])
def test_fsdp_config_builds_fsdp2_full_shard_wrapping_each_block(name, monkeypatch, tiny_backbone):
    from accelerate.utils import FullyShardedDataParallelPlugin
    from accelerate.utils.fsdp_utils import fsdp2_prepare_auto_wrap_policy
    from torch.distributed.fsdp import StateDictType

    from rewardlab.model.build import build_reward_model

    args, env = _launch_env(name)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    plugin = FullyShardedDataParallelPlugin()
    assert plugin.fsdp_version == 2 and plugin.reshard_after_forward is True  # full shard
    assert plugin.state_dict_type == StateDictType.SHARDED_STATE_DICT  # checkpoints; the model is gathered
    assert plugin.cpu_offload is not None and env["FSDP_OFFLOAD_PARAMS"] == "false"

    # The transformer block class comes from the backbone's _no_split_modules through RewardModel:
    # every decoder layer becomes its own FSDP unit, nothing else does.
    model, _, _ = build_reward_model(tiny_backbone("llama"), max_length=32)
    policy = fsdp2_prepare_auto_wrap_policy(plugin, model)
    wrapped = [name for name, m in model.named_modules() if policy(m)]
    assert wrapped == ["hf_model.model.layers.0", "hf_model.model.layers.1"]
    if name == "fsdp-2node":
        assert args.num_machines == 2 and args.num_processes == 16 and args.main_process_ip


@pytest.mark.parametrize(("name", "stage"), [("zero2-8gpu", 2), ("zero3-8gpu", 3)])
def test_deepspeed_config_builds_the_zero_stage_and_gathers_weights_on_save(name, stage, monkeypatch):
    from accelerate.utils import DeepSpeedPlugin

    args, env = _launch_env(name)
    assert args.use_deepspeed and args.num_processes == 8
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    plugin = DeepSpeedPlugin()  # reads the launcher's environment, as each process does
    ds = plugin.deepspeed_config
    assert plugin.zero_stage == stage == ds["zero_optimization"]["stage"]
    assert ds["gradient_accumulation_steps"] == 1  # rewardlab's --grad-accum must stay 1 (docs/scaling.md)
    assert ds["gradient_clipping"] == 1.0  # = TrainConfig.max_grad_norm's default
    # ZeRO-3 gathers the shards into full 16-bit weights on save, so --output-dir is a plain HF folder.
    assert ds["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is (stage == 3)
    assert ds["zero_optimization"]["offload_optimizer"]["device"] == "none"


def test_max_grad_norm_default_matches_the_deepspeed_configs():
    from rewardlab.config import TrainConfig

    assert TrainConfig().max_grad_norm == 1.0 and TrainConfig().grad_accum == 1


def test_train_loop_fills_deepspeed_batch_size_and_refuses_grad_accum(monkeypatch):
    """train.check_sharding on the plugin zero3-8gpu.yaml builds (the accelerator around it stands in:
    a real DeepSpeed accelerator needs GPUs)."""
    from types import SimpleNamespace

    from accelerate.utils import DeepSpeedPlugin, DistributedType

    from rewardlab.config import TrainConfig
    from rewardlab.training.run import check_sharding

    _, env = _launch_env("zero3-8gpu")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    plugin = DeepSpeedPlugin()
    accelerator = SimpleNamespace(
        distributed_type=DistributedType.DEEPSPEED, state=SimpleNamespace(deepspeed_plugin=plugin)
    )
    assert plugin.deepspeed_config["train_micro_batch_size_per_gpu"] == "auto"  # accelerate would raise
    assert check_sharding(accelerator, TrainConfig(batch_size=6)) is True
    assert plugin.deepspeed_config["train_micro_batch_size_per_gpu"] == 6
    with pytest.raises(ValueError, match="--grad-accum 2 under DeepSpeed"):
        check_sharding(accelerator, TrainConfig(grad_accum=2))
    for kind, expected in ((DistributedType.FSDP, True), (DistributedType.MULTI_GPU, False)):
        assert check_sharding(SimpleNamespace(distributed_type=kind), TrainConfig(grad_accum=2)) is expected
