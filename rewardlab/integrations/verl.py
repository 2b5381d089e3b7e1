"""verl: a custom reward function ``compute_score(data_source, solution_str, ground_truth, extra_info)``.

    # verl config
    custom_reward_function:
      path: /path/to/site-packages/rewardlab/integrations/verl.py
      name: compute_score
      reward_kwargs: {model: runs/rm}          # or {url: http://127.0.0.1:8000}

verl's reward managers call it once per response with the decoded response only
(verl/workers/reward_manager/naive.py, ``NaiveRewardManager.__call__``) and merge ``reward_kwargs`` into
the call (verl/trainer/ppo/reward.py, ``get_custom_reward_fn``; coroutine functions are awaited). The
prompt must come through ``extra_info``: put ``extra_info["prompt"]`` (text, or the chat messages, i.e.
verl's ``prompt`` column) in the dataset. The response is scored as the assistant's reply to it, the EOS
text verl may leave in ``solution_str`` removed first, as verl's own DisRM path does
(verl/experimental/reward_loop/reward_loop.py, ``RewardLoopWorker._preprocess_reward_inputs``).

Backed by an in-process Scorer (``model``, or $REWARDLAB_MODEL; the forward pass runs in a worker
thread) or by ``rewardlab serve`` (``url``; its micro-batcher groups verl's concurrent per-item calls
into one forward, the better choice for throughput; a bearer token is read from $REWARDLAB_SERVE_TOKEN;
the adapter has no tokenizer then, so add ``eos_token`` to ``reward_kwargs`` if your verl version
leaves the EOS text in ``solution_str``).
"""

from __future__ import annotations

import asyncio
import json
import os
import urllib.request
from pathlib import Path
from typing import Any

from rewardlab.integrations.local import normalized, scorer_for

PROMPT_KEYS = ("prompt", "raw_prompt")


def prompt_and_response(solution_str: str, extra_info: dict | None, eos_token: str | None) -> tuple[Any, Any]:
    """The (prompt, response) pair verl's call stands for (module docstring)."""
    info = extra_info or {}
    prompt = next((info[k] for k in PROMPT_KEYS if k in info), None)
    if prompt is None:
        raise ValueError(
            "compute_score needs the prompt in extra_info['prompt'] (text or chat messages); add it to "
            f"the dataset's extra_info column (keys tried: {', '.join(PROMPT_KEYS)})"
        )
    response = solution_str.replace(eos_token, "") if eos_token else solution_str
    if isinstance(prompt, str):
        return prompt, response
    messages = [{"role": m["role"], "content": m["content"]} for m in list(prompt)]
    return messages, [{"role": "assistant", "content": response}]


async def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: dict | None = None,
    model: str | Path | None = None,
    url: str | None = None,
    normalize: bool = False,
    device: str | None = None,
    **kwargs: Any,
) -> float:
    """The reward of `solution_str` as the reply to ``extra_info["prompt"]`` (verl's signature)."""
    if url:
        prompt, response = prompt_and_response(solution_str, extra_info, kwargs.get("eos_token"))
        return (await asyncio.to_thread(_post_score, url, prompt, response))[0]
    scorer, lock = scorer_for(model, device)
    prompt, response = prompt_and_response(solution_str, extra_info, scorer.encoder.tokenizer.eos_token)

    def run() -> list[float]:
        with lock:
            return scorer.score([prompt], [response])

    raw = await asyncio.to_thread(run)
    return normalized(raw, scorer.card, normalize)[0]


def compute_score_sync(*args: Any, **kwargs: Any) -> float:
    """`compute_score` for callers that do not await (verl versions whose managers call it plainly)."""
    return asyncio.run(compute_score(*args, **kwargs))


def _post_score(url: str, prompt: Any, response: Any) -> list[float]:
    """POST one pair to ``rewardlab serve``'s /score (stdlib only, so the adapter needs no extra)."""
    body = json.dumps({"pairs": [{"prompt": prompt, "response": response}]}).encode()
    headers = {"Content-Type": "application/json"}
    token = os.environ.get("REWARDLAB_SERVE_TOKEN", "")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url.rstrip("/") + "/score", data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=180) as reply:
        return json.loads(reply.read())["rewards"]
