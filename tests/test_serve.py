"""The reward server as a real uvicorn server on loopback: every endpoint, OpenRLHF's schema, auth,
limits, malformed input, micro-batch equivalence, draining shutdown, clean logs, and the client."""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")
pytest.importorskip("fastapi")

from rewardlab.serve.app import ServeSettings, create_app, strip_special  # noqa: E402
from rewardlab.serve.client import (  # noqa: E402
    RewardClient,
    RewardServerError,
    TRLRewardFunction,
    openrlhf_reward_func,
)

SECRET = "zebra-payload-7731"  # a marker that must never reach a log line
MEAN, STD = 0.25, 2.0


@pytest.fixture(scope="module")
def model_dir(tiny_backbone, tmp_path_factory) -> str:
    """A tiny Qwen2-style reward model (chat template, pad == EOS repaired) with reward statistics."""
    from rewardlab.model.build import build_reward_model
    from rewardlab.model.saved import save_reward_model

    model, encoder, card = build_reward_model(tiny_backbone("qwen2"), max_length=64)
    card.reward_mean, card.reward_std, card.reward_stats_from = MEAN, STD, "test fixture"
    path = tmp_path_factory.mktemp("served") / "tiny-rm"
    save_reward_model(model, encoder, card, path)
    return str(path)


@pytest.fixture(scope="module")
def scorer(model_dir):
    from rewardlab.scoring.scorer import Scorer

    return Scorer.from_pretrained(model_dir, device="cpu")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """create_app(scorer, settings) under a real uvicorn server in a thread, on a free loopback port."""

    def __init__(self, scorer, **settings) -> None:
        self.app = create_app(scorer, ServeSettings(model_id="tiny", **settings))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        raise AssertionError("server did not become ready")

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def post(self, path: str, body=None, **kw) -> httpx.Response:
        return httpx.post(self.url + path, json=body, timeout=30, **kw)


@pytest.fixture(scope="module")
def live(scorer):
    with LiveServer(scorer, max_texts=8, max_chars=200, max_body_bytes=4000) as server:
        yield server


def test_score_texts_pairs_and_messages_match_the_scorer(live, scorer) -> None:
    texts = ["hello world", "the cake is good", ""]
    r = live.post("/score", {"texts": texts})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "tiny" and body["normalized"] is False
    assert body["rewards"] == pytest.approx(scorer.score_texts(texts), abs=1e-5)

    chat_prompt = [{"role": "user", "content": "explain bread"}]
    pairs = [
        {"prompt": "how do I fix python code?", "response": " please explain"},
        {"prompt": chat_prompt, "response": [{"role": "assistant", "content": "thanks for the question"}]},
        {"response": "no prompt at all"},
    ]
    r = live.post("/score", {"pairs": pairs})
    assert r.status_code == 200, r.text
    expected = scorer.score([p.get("prompt", "") for p in pairs], [p["response"] for p in pairs])
    assert r.json()["rewards"] == pytest.approx(expected, abs=1e-5)
    assert expected[0] != pytest.approx(expected[1], abs=1e-4)  # the inputs really differ

    convo = chat_prompt + [{"role": "assistant", "content": "thanks for the question"}]
    r = live.post("/score", {"messages": [convo]})
    assert r.json()["rewards"] == pytest.approx(expected[1:2], abs=1e-5)  # same text as pair 2


def test_get_reward_is_openrlhf_compatible(live, scorer) -> None:
    eos = scorer.encoder.tokenizer.eos_token
    queries = ["<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\nhi there", "good answer"]
    # OpenRLHF's client: requests.post(url, json={"query": ..., "prompts": ..., "labels": ...})
    r = live.post("/get_reward", {"query": [q + eos for q in queries], "labels": [None, "x"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"rewards", "scores", "extra_logs"}
    raw = scorer.score_texts(queries)  # the trailing EOS was stripped: the encoder appends it once
    assert body["rewards"] == pytest.approx(raw, abs=1e-5)
    assert body["scores"] == body["rewards"]
    assert body["extra_logs"]["raw_reward"] == pytest.approx(raw, abs=1e-5)

    prompts = ["how do I bake", "q"]
    r = live.post("/get_reward", {"query": ["how do I bake a cake", "unrelated"], "prompts": prompts})
    # the first query starts with its prompt and is split; the second is scored whole
    expected = scorer.score(["how do I bake", ""], [" a cake", "unrelated"])
    assert r.json()["rewards"] == pytest.approx(expected, abs=1e-5)


def test_strip_special_removes_whole_tokens_only() -> None:
    assert strip_special("<pad><pad>answer is</s></s>", ["<pad>", "</s>"]) == "answer is"
    assert strip_special("yes", ["</s>"]) == "yes"  # str.strip("</s>") would also eat the final "s"
    assert strip_special("text", [None, ""]) == "text"


def test_normalisation_and_clipping_use_the_card_statistics(scorer) -> None:
    texts = ["hello world", "bread and cake", "sorry I cannot help"]
    raw = scorer.score_texts(texts)
    with LiveServer(scorer, normalize=True) as s:
        got = s.post("/score", {"texts": texts}).json()
    assert got["normalized"] is True
    assert got["rewards"] == pytest.approx([(r - MEAN) / STD for r in raw], abs=1e-5)
    clip = abs((raw[0] - MEAN) / STD) / 2  # half the first normalised reward: it must be clipped
    with LiveServer(scorer, normalize=True, clip=clip) as s:
        got = s.post("/get_reward", {"query": texts}).json()
    expected = [max(-clip, min(clip, (r - MEAN) / STD)) for r in raw]
    assert got["rewards"] == pytest.approx(expected, abs=1e-5)
    assert abs(got["rewards"][0]) == pytest.approx(clip)
    assert got["extra_logs"]["raw_reward"] == pytest.approx(raw, abs=1e-5)


def test_normalize_without_statistics_fails_with_the_fix(scorer) -> None:
    from dataclasses import replace

    class NoStats:
        encoder, score_encoded = scorer.encoder, scorer.score_encoded
        card = replace(scorer.card, reward_stats_from="", reward_mean=0.0, reward_std=1.0)

    with pytest.raises(ValueError, match="--normalize"):
        create_app(NoStats(), ServeSettings(normalize=True))


def test_ensemble_is_served_with_its_rule_or_another(model_dir, tiny_backbone, tmp_path) -> None:
    """Two members with different heads: /score equals EnsembleScorer.score under min and under mean."""
    import shutil

    import torch

    from rewardlab.model.build import build_reward_model
    from rewardlab.model.saved import save_reward_model
    from rewardlab.scoring.ensemble import EnsembleCard, EnsembleScorer

    folder = tmp_path / "ens"
    shutil.copytree(model_dir, folder / "member-0")
    torch.manual_seed(1)
    model, encoder, card = build_reward_model(tiny_backbone("qwen2"), max_length=64)
    card.reward_mean, card.reward_std, card.reward_stats_from = -0.5, 0.5, "test fixture"
    save_reward_model(model, encoder, card, folder / "member-1")
    EnsembleCard(members=["member-0", "member-1"], rule="min").save(folder)
    ens = EnsembleScorer.from_pretrained(folder, device="cpu")
    prompts, responses = ["explain bread", "hello"], [" it is baked", " world"]
    members = ens.score_members(prompts, responses)
    assert members[0] != pytest.approx(members[1], abs=1e-3)  # the members really disagree
    pairs = [{"prompt": p, "response": r} for p, r in zip(prompts, responses, strict=True)]
    with LiveServer(ens) as s:
        assert httpx.get(s.url + "/health").json()["kind"] == "ensemble of 2 (min)"
        got = s.post("/score", {"pairs": pairs}).json()
        assert s.post("/score_steps", {"items": [{"steps": ["a"]}]}).status_code == 501
    assert got["normalized"] is True  # members are standardised by their cards before combining
    assert got["rewards"] == pytest.approx([min(a, b) for a, b in zip(*members, strict=True)], abs=1e-5)
    with LiveServer(ens, ensemble_rule="mean") as s:
        got = s.post("/score", {"pairs": pairs}).json()["rewards"]
    assert got == pytest.approx([(a + b) / 2 for a, b in zip(*members, strict=True)], abs=1e-5)
    with pytest.raises(ValueError, match="--normalize"):
        create_app(ens, ServeSettings(normalize=True))


def test_bearer_token_from_the_environment(scorer, monkeypatch) -> None:
    monkeypatch.setenv("RL_TEST_TOKEN", "tok-123")
    with LiveServer(scorer, token_env="RL_TEST_TOKEN") as s:
        assert s.post("/score", {"texts": ["a"]}).status_code == 401
        r = s.post("/score", {"texts": ["a"]}, headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert "bearer token" in r.json()["detail"]
        assert httpx.get(s.url + "/metrics").status_code == 401
        assert s.post("/get_reward", {"query": ["a"]}).status_code == 401
        good = {"Authorization": "Bearer tok-123"}
        assert s.post("/score", {"texts": ["a"]}, headers=good).status_code == 200
        assert httpx.get(s.url + "/metrics", headers=good).status_code == 200
        assert httpx.get(s.url + "/health").status_code == 200  # probes need no token


def test_limits_answer_422_or_413_with_the_flag_to_change(live) -> None:
    def problem(r: httpx.Response) -> str:
        assert r.status_code == 422, r.text
        [err] = r.json()["detail"]  # only the limit, not the other /score forms' complaints
        return err["msg"]

    assert "more than 8 items" in problem(live.post("/score", {"texts": ["a"] * 9}))
    assert "--max-texts" in problem(live.post("/get_reward", {"query": ["a"] * 9}))
    msg = problem(live.post("/score", {"texts": ["ok", "x" * 201]}))
    assert "--max-chars" in msg and "texts[1]" in msg
    chat = [{"role": "user", "content": "x" * 201}]
    assert "--max-chars" in problem(live.post("/score", {"pairs": [{"prompt": chat, "response": "a"}]}))
    big = json.dumps({"texts": ["y" * 150] * 30}).encode()  # > max_body_bytes=4000
    r = httpx.post(live.url + "/score", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "--max-body-bytes" in r.json()["detail"]

    def chunks():  # no Content-Length: the limit must hold on a streamed body too
        for _ in range(10):
            yield b" " * 1000

    r = httpx.post(live.url + "/score", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert live.post("/score", {"texts": ["a"] * 8}).status_code == 200  # at the limit is fine


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b'{"texts": ["a"', 400),
        (b"not json at all", 400),
        (b"", 422),
        (b"[]", 422),
        (b'{"texts": "just a string"}', 422),
        (b'{"texts": [1, 2]}', 422),
        (b'{"texts": ["a"], "pairs": []}', 422),
        (b"{}", 422),
        (b'{"pairs": [{"prompt": "p"}]}', 422),
        (b'{"messages": [[{"role": "user", "content": "only a question"}]]}', 422),
        (b'{"messages": [[]]}', 422),
        (b'{"messages": [[{"role": "robot", "content": "x"}]]}', 422),
        (b'{"texts": [null]}', 422),
        (b"[" * 1900 + b"]" * 1900, 400),  # deeper than Python's recursion limit, under the body limit
        (b'{"a":' * 600 + b"1" + b"}" * 600, 422),
    ],
)
def test_malformed_input_is_a_4xx_never_a_500(live, raw: bytes, status: int) -> None:
    for path in ("/score", "/get_reward", "/score_steps"):
        r = httpx.post(live.url + path, content=raw, headers={"content-type": "application/json"})
        expected = 422 if path != "/score" and status == 422 else status
        assert r.status_code == expected, (path, r.text)
        assert r.headers["content-type"].startswith("application/json")


def test_errors_explain_without_echoing_input(live) -> None:
    r = live.post("/score", {"messages": [[{"role": "user", "content": SECRET}]]})
    assert r.status_code == 422
    [err] = r.json()["detail"]  # the messages form's complaint only, not "texts: field required"
    assert "must be the assistant's" in err["msg"] and SECRET not in r.text
    r = live.post("/score", {})
    assert {e["loc"][-1] for e in r.json()["detail"]} == {"texts", "pairs", "messages"}
    r = httpx.post(live.url + "/score", content=b"texts=a", headers={"content-type": "text/plain"})
    assert r.status_code == 422


def test_score_steps_is_501_until_a_prm_is_served(live) -> None:
    r = live.post("/score_steps", {"items": [{"prompt": "2+2?", "steps": ["2+2=4", "so 4"]}]})
    assert r.status_code == 501
    assert "process reward model" in r.json()["detail"] and "/score" in r.json()["detail"]
    assert live.post("/score_steps", {"items": [{"prompt": "p", "steps": []}]}).status_code == 422


def test_score_steps_serves_a_prm(tiny_backbone) -> None:
    """A PRM (rewardlab.json names a step marker): per-step P(correct) equal `Scorer.score_steps`, the
    aggregate equals `prm.aggregate`, and a step lost to truncation comes back as null."""
    import torch

    from rewardlab.data.step_encoding import STEP_MARKER
    from rewardlab.model.build import build_reward_model
    from rewardlab.prm.evaluate import aggregate
    from rewardlab.scoring.scorer import Scorer

    torch.manual_seed(0)
    model, encoder, card = build_reward_model(
        tiny_backbone("qwen2"), max_length=48, extra_tokens=[STEP_MARKER]
    )
    card.step_marker = STEP_MARKER
    prm = Scorer(model, encoder, card, device="cpu")
    prompt = "what is two plus two"
    short = ["two plus two", "is four"]
    long = short + ["the answer is " + "four " * 12, "so we are done " * 3]
    want = prm.score_steps([prompt, prompt], [short, long])
    assert any(math.isnan(p) for p in want[1]) and not any(math.isnan(p) for p in want[0])
    with LiveServer(prm) as s:
        assert "/score_steps" in httpx.get(s.url + "/openapi.json").json()["paths"]
        assert httpx.get(s.url + "/health").json()["kind"] == "process reward model"
        items = [{"prompt": prompt, "steps": short}, {"prompt": prompt, "steps": long}]
        got = s.post("/score_steps", {"items": items, "aggregate": "min"}).json()
    for g, w in zip(got["step_rewards"], want, strict=True):
        assert [None if math.isnan(p) else pytest.approx(p, abs=1e-5) for p in w] == g
    assert got["rewards"] == pytest.approx([aggregate(w, "min") for w in want], abs=1e-5)


def test_health_and_metrics_count_what_happened(scorer) -> None:
    with LiveServer(scorer) as s:
        h = httpx.get(s.url + "/health").json()
        assert h == {"status": "ok", "ready": True, "model": "tiny", "kind": "reward model"}
        for n in (1, 2, 3):
            assert s.post("/score", {"texts": ["hello"] * n}).status_code == 200
        assert s.post("/score", {"texts": 5}).status_code == 422
        text = httpx.get(s.url + "/metrics").text
    lines = dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    assert lines['rewardlab_requests_total{endpoint="/score",code="200"}'] == "3"
    assert lines['rewardlab_requests_total{endpoint="/score",code="422"}'] == "1"
    assert lines['rewardlab_request_seconds_count{endpoint="/score"}'] == "4"
    assert lines["rewardlab_texts_scored_total"] == "6"  # 1 + 2 + 3 (the warm-up is not counted)
    assert lines["rewardlab_batch_texts_count"] == "3"
    assert lines['rewardlab_batch_texts_bucket{le="2"}'] == "2"  # batches of 1 and 2 texts
    assert lines["rewardlab_queue_texts"] == "0" and lines["rewardlab_ready"] == "1"


def test_concurrent_requests_are_merged_and_equal_scoring_each_alone(model_dir, precision) -> None:
    """8 concurrent requests with different texts and lengths: fewer model calls than requests, and each
    request's rewards equal scoring it alone (same tokens; only the padding of the batch differs).
    Under `rewardlab serve --bf16` too, to bf16's rounding."""
    from rewardlab.scoring.scorer import Scorer

    scorer = Scorer.from_pretrained(model_dir, device="cpu", bf16=precision == "bf16")
    words = "the cake is good please explain how to fix python code thanks for the question".split()
    requests = [[" ".join(words[: 2 + (i * 3 + j) % 12]) for j in range(1 + i % 3)] for i in range(8)]
    with LiveServer(scorer, max_wait_ms=300) as s, ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda texts: s.post("/score", {"texts": texts}).json()["rewards"], requests))
        text = httpx.get(s.url + "/metrics").text
    for texts, rewards in zip(requests, got, strict=True):
        assert rewards == pytest.approx(scorer.score_texts(texts), abs=1e-5 if precision == "no" else 2e-2)
    calls = next(line for line in text.splitlines() if line.startswith("rewardlab_batch_requests_count"))
    assert int(calls.split()[-1]) < 8  # at least two requests shared a model call


def test_no_payload_in_logs(scorer, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    with LiveServer(scorer) as s:
        s.post("/score", {"texts": [SECRET]})
        s.post("/score", {"messages": [[{"role": "user", "content": SECRET}]]})
        s.post("/get_reward", {"query": [SECRET], "prompts": [SECRET]})
    assert any("batch:" in r.getMessage() for r in caplog.records)  # debug logging was really on
    assert SECRET not in caplog.text


def test_graceful_shutdown_drains_in_flight_requests(model_dir, scorer, tmp_path) -> None:
    """SIGTERM while requests wait in the micro-batcher: each still gets its rewards, then the process
    exits; its logs (access log and debug on) hold no payload."""
    port = free_port()
    log = tmp_path / "server.log"
    cmd = [sys.executable, "-m", "rewardlab", "-v", "serve", model_dir, "--port", str(port),
           "--max-wait-ms", "3000", "--access-log"]  # fmt: skip
    env = {**os.environ, "REWARDLAB_SERVE_TOKEN": ""}
    proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        client = RewardClient(url, retries=0, timeout_s=30)
        deadline = time.monotonic() + 60
        while not _ready(client):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        texts = [[f"{SECRET} number {i}", "hello world"] for i in range(4)]
        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(client.score, texts=t) for t in texts]
            _wait_for_metric(url, "rewardlab_queue_texts", 8)  # all four wait in the batcher (max 3 s)
            proc.send_signal(signal.SIGTERM)
            results = [f.result(timeout=30) for f in futures]
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once drained
    finally:
        if proc.poll() is None:
            proc.kill()
    for t, rewards in zip(texts, results, strict=True):
        assert rewards == pytest.approx(scorer.score_texts(t), abs=1e-5)
    with pytest.raises(httpx.TransportError):
        httpx.get(url + "/health", timeout=2)
    out = log.read_text()
    assert "POST /score" in out and "batch: 4 requests" in out  # the logs were really there
    assert SECRET not in out


def _wait_for_metric(url: str, name: str, value: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in httpx.get(url + "/metrics", timeout=5).text.splitlines():
            if line.startswith(name + " ") and int(float(line.split()[-1])) == value:
                return
        time.sleep(0.02)
    raise AssertionError(f"{name} never reached {value}")


def _ready(client: RewardClient) -> bool:
    try:
        return client.health().get("ready", False)
    except (ConnectionError, RewardServerError):
        return False


def test_client_and_trl_adapter(live, scorer) -> None:
    client = RewardClient(live.url, chunk_size=3)  # 7 pairs → 3 requests under max_texts=8
    prompts = [f"question {i}" for i in range(7)]
    responses = [f" answer with {i} words" for i in range(7)]
    assert client.score(prompts, responses) == pytest.approx(scorer.score(prompts, responses), abs=1e-5)
    assert client.attempts == 3

    reward_fn = TRLRewardFunction(client)
    assert reward_fn.__name__ == "rewardlab"
    conv_prompts = [[{"role": "user", "content": "explain bread"}]] * 2
    completions = [[{"role": "assistant", "content": c}] for c in ("thanks", "sorry I cannot")]
    got = reward_fn(
        prompts=conv_prompts, completions=completions, completion_ids=[[1], [2]], answer=["x", "y"]
    )
    assert got == pytest.approx(scorer.score(conv_prompts, completions), abs=1e-5)

    with pytest.raises(RewardServerError) as err:
        client.post("/score", {"texts": ["a"] * 9})
    assert err.value.status == 422
    assert str(err.value).endswith(
        "texts has more than 8 items, the server's limit (rewardlab serve --max-texts)"
    )


def test_openrlhf_reward_func_file_adapter(live, scorer, monkeypatch) -> None:
    import rewardlab.serve.client as sc

    monkeypatch.setenv("REWARDLAB_SERVE_URL", live.url)
    monkeypatch.setattr(sc, "_default_client", None)
    out = openrlhf_reward_func(["good answer", "bad"], prompts=["", ""], labels=[None, None])
    assert set(out) == {"rewards", "scores", "extra_logs"}
    assert out["rewards"].tolist() == pytest.approx(scorer.score_texts(["good answer", "bad"]), abs=1e-5)


def test_client_retries_transient_failures_only() -> None:
    seen = []

    def flaky(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if len(seen) < 3:
            return httpx.Response(503, json={"detail": "draining"})
        return httpx.Response(200, json={"rewards": [0.5], "model": "m", "normalized": False})

    client = RewardClient(
        "http://127.0.0.1:1", retries=3, backoff_s=0.01, transport=httpx.MockTransport(flaky)
    )
    assert client.score(texts=["a"]) == [0.5] and client.attempts == 3

    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(422, json={"detail": [{"loc": ["body"], "msg": "bad", "type": "x"}]})

    client = RewardClient(
        "http://127.0.0.1:1", retries=3, backoff_s=0.01, transport=httpx.MockTransport(refuse)
    )
    with pytest.raises(RewardServerError) as err:
        client.score(texts=["a"])
    assert err.value.status == 422 and client.attempts == 1  # a client error is not retried

    client = RewardClient(f"http://127.0.0.1:{free_port()}", retries=2, backoff_s=0.01)
    with pytest.raises(ConnectionError, match="3 attempts"):
        client.score(texts=["a"])
    assert client.attempts == 3


def test_serve_verb_is_registered() -> None:
    from rewardlab.cli import build_parser

    args = build_parser().parse_args(["serve", "m", "--max-texts", "7", "--normalize", "--clip", "3"])
    assert (args.model, args.max_texts, args.normalize, args.clip, args.host) == (
        "m",
        7,
        True,
        3.0,
        "127.0.0.1",
    )


FUZZ_CONFIG = """
[checks]
enabled = true  # every check: no 5xx, status codes, content types and bodies as documented, auth, ...

# /score answers 422 to a conversation whose last message is not the assistant's, and /get_reward to
# `prompts` of another length than `query`: rules JSON Schema cannot state, so a schema-valid body may be
# refused there (on purpose).
[[operations]]
include-path = "/score"
checks.positive_data_acceptance.enabled = false

[[operations]]
include-path = "/get_reward"
checks.positive_data_acceptance.enabled = false
"""


def fuzz_server(
    scorer, tmp_path: Path, monkeypatch, examples: int, phases: str = "examples,coverage,fuzzing"
) -> str:
    """schemathesis against the live server's own OpenAPI schema (with a token, so auth is checked too,
    and the schema itself is fetched with it); returns the summary line ("N generated, N passed")."""
    st = Path(sys.executable).with_name("st")
    if not st.exists():
        pytest.skip("schemathesis is not installed (pip install 'rewardlab[dev]')")
    monkeypatch.setenv("RL_FUZZ_TOKEN", "fuzz-token")
    config = tmp_path / "schemathesis.toml"
    config.write_text(FUZZ_CONFIG)
    with LiveServer(scorer, token_env="RL_FUZZ_TOKEN", max_texts=16, max_chars=500) as s:
        proc = subprocess.run(
            [str(st), "--config-file", str(config), "run", s.url + "/openapi.json", "--no-color",
             "-H", "Authorization: Bearer fuzz-token", "--max-examples", str(examples), "--seed", "1",
             "--workers", "1", "--phases", phases],
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
    summary = [line.strip() for line in proc.stdout.splitlines() if " generated" in line]
    sys.stdout.write(f"\nschemathesis: {summary}\n")
    assert proc.returncode == 0, proc.stdout[-8000:]
    assert summary and "passed" in summary[-1]
    return summary[-1]


def test_openapi_fuzz_quick(scorer, tmp_path, monkeypatch) -> None:
    """The default run's small budget (a few seconds): every operation, every check, no 5xx; random
    bodies only (the slow run adds the coverage phase's hundreds of boundary cases)."""
    examples = int(os.environ.get("REWARDLAB_FUZZ_QUICK_EXAMPLES", "25"))
    fuzz_server(scorer, tmp_path, monkeypatch, examples, phases="fuzzing")


@pytest.mark.slow
def test_openapi_fuzz_finds_no_server_errors(scorer, tmp_path, monkeypatch) -> None:
    """The long run. The number of generated requests is printed (pytest -s); docs/reliability.md
    reports a run."""
    fuzz_server(scorer, tmp_path, monkeypatch, int(os.environ.get("REWARDLAB_FUZZ_EXAMPLES", "200")))
