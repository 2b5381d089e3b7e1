"""rewardlab models inside other engines' RL loops, with the reward rewardlab itself computes.

- `export`: ``rewardlab export MODEL --target vllm|sglang|openrlhf|trl|reward-bench -o OUT`` writes a folder
  that engine loads as is, or refuses (exit 2, nothing written) where it cannot reproduce the reward;
- `trl`: a TRL ``GRPOTrainer`` reward function running the Scorer in process (sync and async);
- `verl`: a verl custom ``compute_score`` (async), backed by an in-process Scorer or ``rewardlab serve``;
- `openrlhf`: OpenRLHF's ``reward_func(queries, prompts, labels)`` (``--remote_rm_url this_file.py``);
- `llamafactory`: LLaMA-Factory's ``/v1/score/evaluation`` route, mounted on ``rewardlab serve``.

Every adapter scores through `rewardlab.scoring.Scorer`; docs/integrations.md has the snippets and the
parity table (tests/test_integrations_*.py feed each engine's own code path and the Scorer the same
conversation).
"""
