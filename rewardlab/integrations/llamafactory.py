"""LLaMA-Factory: its reward API, ``POST /v1/score/evaluation``, on ``rewardlab serve``.

    rewardlab serve runs/rm --port 8000
    # LLaMA-Factory PPO: --reward_model_type api --reward_model http://127.0.0.1:8000/v1/score/evaluation

The body is LLaMA-Factory's ``ScoreEvaluationRequest`` (``model``, ``messages``: whole texts, ``max_length``)
and the answer its ``ScoreEvaluationResponse`` (``id``, ``object: "score.evaluation"``, ``model``,
``scores``), as in its api/protocol.py. Each text is scored as one response with no separate prompt, so
a ``chat_template`` model reads it as the templated text it is. ``max_length`` is accepted and ignored:
the model's own budget (rewardlab.json) applies, as everywhere else. Scores follow the server's
``--normalize``/``--clip`` like /score.
"""

from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, Literal

ROUTE = "/v1/score/evaluation"


PROBLEMS = (400, 401, 408, 413, 503)  # the body limit, auth, slow bodies and shutdown answer these


def router(
    rewards_for: Callable[[Sequence[Any], Sequence[Any]], Awaitable[tuple[list[float], list[float]]]],
    model_id: str,
    settings: Any,
    dependencies: Sequence[Any] = (),
) -> Any:
    """An APIRouter with the route; `rewards_for(prompts, responses)` is the server's (raw, returned)."""
    import uuid

    from fastapi import APIRouter
    from pydantic import BaseModel, ConfigDict, Field

    Str = Annotated[str, Field(max_length=settings.max_chars)]

    class ScoreEvaluationRequest(BaseModel):
        model_config = ConfigDict(extra="ignore", strict=True)  # strict: no true -> 1, "3" -> 3 coercions
        model: str = ""
        messages: Annotated[list[Str], Field(max_length=settings.max_texts)]
        max_length: int | None = None

    class ScoreEvaluationResponse(BaseModel):
        id: str
        object: Literal["score.evaluation"] = "score.evaluation"
        model: str
        scores: list[float]

    api = APIRouter()

    problems = {c: {"description": "an error as the server's other routes give it"} for c in PROBLEMS}

    @api.post(
        ROUTE, response_model=ScoreEvaluationResponse, dependencies=list(dependencies), responses=problems
    )
    async def score_evaluation(body: ScoreEvaluationRequest) -> Any:
        """LLaMA-Factory's reward API: one score per text in `messages`."""
        _, scores = await rewards_for([""] * len(body.messages), body.messages)
        return {"id": f"scoreval-{uuid.uuid4().hex}", "model": model_id, "scores": scores}

    return api
