"""Request and response bodies of the reward server (rewardlab/serve.py), with its limits in the schema,
and how a body that does not fit them is answered (`validation_response`).

The models are built per app by `api_models(settings)` so that ``--max-texts`` and ``--max-chars``
appear in the OpenAPI schema as ``maxItems``/``maxLength``: a client (or a fuzzer) reading the schema
knows what the server accepts, and FastAPI rejects an oversized request before any work is done.

(No ``from __future__ import annotations`` here: pydantic resolves these annotations at class creation,
inside a function.)
"""

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


def api_models(settings: Any) -> SimpleNamespace:
    """The pydantic models for one app, with `settings.max_texts` and `settings.max_chars` built in."""
    n, chars = settings.max_texts, settings.max_chars
    Str = Annotated[str, Field(max_length=chars)]

    class Message(BaseModel):
        """A chat message; extra keys (e.g. TRL's) are ignored."""

        model_config = ConfigDict(extra="ignore")
        role: Literal["system", "user", "assistant"]
        content: Str

    Chat = Annotated[list[Message], Field(min_length=1, max_length=n)]
    TextOrChat = Str | Chat

    class Pair(BaseModel):
        model_config = ConfigDict(extra="forbid")
        prompt: TextOrChat = ""
        response: TextOrChat

    class ScoreTexts(BaseModel):
        """Whole texts (e.g. full transcripts), each scored with an empty prompt."""

        model_config = ConfigDict(extra="forbid")
        texts: Annotated[list[Str], Field(max_length=n)]

        def inputs(self) -> tuple[list, list]:
            return [""] * len(self.texts), list(self.texts)

    class ScorePairs(BaseModel):
        """Prompt/response pairs; either side may be plain text or a list of chat messages."""

        model_config = ConfigDict(extra="forbid")
        pairs: Annotated[list[Pair], Field(max_length=n)]

        def inputs(self) -> tuple[list, list]:
            return [_plain(p.prompt) for p in self.pairs], [_plain(p.response) for p in self.pairs]

    class ScoreMessages(BaseModel):
        """Conversations; the last message of each (the assistant's) is the response scored."""

        model_config = ConfigDict(extra="forbid")
        messages: Annotated[list[Chat], Field(max_length=n)]

        @model_validator(mode="after")
        def ends_with_assistant(self) -> "ScoreMessages":
            for i, chat in enumerate(self.messages):
                if chat[-1].role != "assistant":
                    raise ValueError(
                        f"messages[{i}] ends with a {chat[-1].role!r} message; the last message of each "
                        "conversation is the response scored and must be the assistant's"
                    )
            return self

        def inputs(self) -> tuple[list, list]:
            return [_plain(c[:-1]) for c in self.messages], [_plain(c[-1:]) for c in self.messages]

    class GetRewardRequest(BaseModel):
        """OpenRLHF's remote reward request. `prompts`, when given, is used to split each query into
        prompt and response; `labels` and any other field are accepted and ignored."""

        model_config = ConfigDict(extra="allow")
        query: Annotated[list[Str], Field(max_length=n)]
        prompts: Annotated[list[Str], Field(max_length=n)] | None = None
        labels: list[Any] | None = None

        @model_validator(mode="after")
        def one_prompt_per_query(self) -> "GetRewardRequest":
            if self.prompts is not None and len(self.prompts) != len(self.query):
                raise ValueError(
                    f"prompts has {len(self.prompts)} items but query has {len(self.query)}: give one "
                    "prompt per query (prompts[i] is the start of query[i]), or leave prompts out"
                )
            return self

    class StepItem(BaseModel):
        model_config = ConfigDict(extra="forbid")
        prompt: Str = ""
        steps: Annotated[list[Str], Field(min_length=1, max_length=n)]

    class StepsRequest(BaseModel):
        """Solutions split into steps, scored step by step by a process reward model."""

        model_config = ConfigDict(extra="forbid")
        items: Annotated[list[StepItem], Field(max_length=n)]
        aggregate: Literal["product", "min", "last", "mean"] = "product"
        """product: P(every step correct); min: the weakest step; last: the final step; mean."""

    class ScoreResponse(BaseModel):
        rewards: list[float]
        model: str
        normalized: bool

    class GetRewardResponse(BaseModel):
        rewards: list[float]
        scores: list[float]
        extra_logs: dict[str, list[float]]

    class StepsResponse(BaseModel):
        step_rewards: list[list[float | None]]
        rewards: list[float | None]
        model: str

    class Health(BaseModel):
        status: str
        ready: bool
        model: str
        kind: str
        """reward model, process reward model, or ensemble of k (rule)."""

    class Problem(BaseModel):
        detail: str

    return SimpleNamespace(
        ScoreRequest=ScoreTexts | ScorePairs | ScoreMessages,
        GetRewardRequest=GetRewardRequest,
        StepsRequest=StepsRequest,
        ScoreResponse=ScoreResponse,
        GetRewardResponse=GetRewardResponse,
        StepsResponse=StepsResponse,
        Health=Health,
        Problem=Problem,
    )


def _plain(value: Any) -> Any:
    """Text, or chat messages as the plain dicts `TextEncoder` takes."""
    if isinstance(value, str):
        return value
    return [{"role": m.role, "content": m.content} for m in value]


LIMIT_FLAGS = {"too_long": ("items", "--max-texts"), "string_too_long": ("characters", "--max-chars")}


def validation_response(errors: Sequence[dict]) -> Any:
    """400 for a body that is not JSON, else 422 with the errors that matter, limits first.

    A limit error names the flag that raises the limit. Of a union body (/score), only the errors of the
    forms whose keys the body used are kept. Inputs are never echoed back (pydantic's ``input`` is
    dropped): bodies can be large.
    """
    from fastapi.responses import JSONResponse

    for e in errors:
        if e.get("type") == "json_invalid":
            where = (e.get("ctx") or {}).get("error", "")
            return JSONResponse({"detail": f"request body is not valid JSON ({where})"}, status_code=400)
    chosen = [e for e in errors if e.get("type") in LIMIT_FLAGS] or _relevant(errors)
    return JSONResponse({"detail": [_problem(e) for e in chosen]}, status_code=422)


def _problem(e: dict) -> dict[str, Any]:
    loc, kind, msg = list(e.get("loc", ())), str(e.get("type", "")), str(e.get("msg", ""))
    if kind in LIMIT_FLAGS:
        unit, flag = LIMIT_FLAGS[kind]
        limit = (e.get("ctx") or {}).get("max_length")
        msg = f"{where(loc)} has more than {limit} {unit}, the server's limit (rewardlab serve {flag})"
    return {"loc": loc, "msg": msg, "type": kind}


def _member(loc: Sequence[Any]) -> str | None:
    """The union member an error belongs to: ``ScoreTexts`` in ``("body", "ScoreTexts", "texts")``."""
    if len(loc) > 1 and loc[0] == "body" and isinstance(loc[1], str):
        if loc[1][:1].isupper() or loc[1].startswith("function-"):
            return loc[1]
    return None


def _relevant(errors: Sequence[dict]) -> list[dict]:
    groups: dict[str | None, list[dict]] = {}
    for e in errors:
        groups.setdefault(_member(e.get("loc", ())), []).append(e)
    if None in groups or len(groups) < 2:
        return list(errors)
    fitting = [
        g for g in groups.values()
        if not any(e.get("type") == "extra_forbidden" and len(e.get("loc", ())) == 3 for e in g)
    ]  # fmt: skip
    return [e for g in fitting for e in g] or list(errors)


def where(loc: Sequence[Any]) -> str:
    """``("body", "ScoreTexts", "texts", 1)`` → ``texts[1]`` (union member names dropped)."""
    out = ""
    for part in loc[1:]:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _member(["body", part]) is None:
            out += ("." if out else "") + part
    return out or "body"
