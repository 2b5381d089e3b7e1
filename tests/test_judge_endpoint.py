"""The endpoint judge against a stub OpenAI-compatible server really listening on loopback: log-probability
arithmetic, parsed text, and the bad cases (a timeout, a garbage reply, a flaky 500) as per-item errors
with bounded retries, never a made-up score."""

from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rewardlab.judge.config import JudgeConfig, save_judge_config
from rewardlab.judge.ratings import JudgeItemError
from rewardlab.judge.scorer import JudgeScorer

LN = math.log


class Stub:
    """What the stub answers depends on a marker in the prompt (the response text is in it)."""

    def __init__(self) -> None:
        self.calls: Counter = Counter()
        self.flaky_failed = False

    def answer(self, path: str, body: dict) -> tuple[int, bytes]:
        text = body.get("prompt") or body["messages"][-1]["content"]
        marker = next((m for m in ("SLEEP", "GARBAGE", "FLAKY", "NOLABEL", "BIASED") if m in text), "")
        self.calls[marker] += 1
        if marker == "SLEEP":
            time.sleep(1.0)
        if marker == "GARBAGE":
            return 200, b"<html>lorem ipsum</html>"
        if marker == "FLAKY" and not self.flaky_failed:  # the first request fails, every later one works
            self.flaky_failed = True
            return 500, b'{"error": "overloaded"}'
        if path == "/v1/chat/completions":
            content = (
                "I like turtles" if "turtles" in text else ("B" if "Response A" in text else "Rating: 7")
            )
            return 200, json.dumps(
                {"choices": [{"message": {"role": "assistant", "content": content}}]}
            ).encode()
        if body.get("max_tokens", 1) > 1:  # completions, text mode
            return 200, json.dumps({"choices": [{"text": " 8, a fine answer"}]}).encode()
        if marker == "NOLABEL":
            top = {" The": LN(0.6), " I": LN(0.3)}
        elif text.endswith("Rating: 1"):  # the continuation request for "10"
            top = {"0": LN(0.4), "\n": LN(0.5)}
        elif text.endswith("Rating:"):
            top = {" 3": LN(0.5), " 1": LN(0.25), " x": LN(0.1)}
        elif marker == "BIASED":  # a judge that always says A, whatever the order
            top = {" A": LN(0.9), " B": LN(0.05)}
        else:  # pairwise: prefers whichever response reads "good"
            a_good = text.index("good") < text.index("Response B")
            top = {" A": LN(0.7), " B": LN(0.2)} if a_good else {" A": LN(0.2), " B": LN(0.7)}
        return 200, json.dumps({"choices": [{"text": "", "logprobs": {"top_logprobs": [top]}}]}).encode()


@pytest.fixture
def server():
    stub = Stub()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            code, data = stub.answer(self.path, body)
            try:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (the timeout case)
                pass

        def log_message(self, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub, f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _judge(url: str, tmp_path=None, **kw) -> JudgeScorer:
    kw.setdefault("timeout_s", 0.3)
    kw.setdefault("retries", 2)
    cache = str(tmp_path / "cache.sqlite") if tmp_path is not None else None
    return JudgeScorer.from_settings(JudgeConfig(endpoint=url, cache=cache, **kw))


def test_completions_logprobs_expected_rating_by_hand(server):
    """Top log-probs after "Rating:": " 3" 0.5, " 1" 0.25; after "Rating: 1": "0" 0.4. So P(3) = 0.5,
    P(1) = 0.25 · 0.6 = 0.15, P(10) = 0.25 · 0.4 = 0.1; E = (1.5 + 0.15 + 1.0) / 0.75 = 3.5333."""
    stub, url = server
    judge = _judge(url)
    assert judge.score(["q"], ["an answer"]) == pytest.approx([2.65 / 0.75])
    assert stub.calls[""] == 2  # the first token, then the continuation after "1"


def test_pairwise_both_orders_and_a_pure_position_bias(server):
    _, url = server
    judge = _judge(url)
    v = judge.compare(["q"], ["a good answer"], ["a bad one"])[0]
    assert v.p_first == pytest.approx(0.7 / 0.9) and v.p_second == pytest.approx(0.7 / 0.9)
    assert v.p == pytest.approx(0.7 / 0.9) and v.flipped is False
    biased = judge.compare(["q BIASED"], ["x"], ["y"])[0]  # always "A": all position, no preference
    assert biased.flipped is True and biased.p == pytest.approx(0.5)


def test_garbage_reply_is_an_item_error_and_not_retried(server):
    stub, url = server
    judge = _judge(url)
    rated = judge.rate(["q", "q"], ["fine", "GARBAGE"])
    assert rated[0] == pytest.approx(2.65 / 0.75)
    assert isinstance(rated[1], JudgeItemError) and "not JSON" in str(rated[1])
    assert stub.calls["GARBAGE"] == 1
    nolabel = judge.rate(["q"], ["NOLABEL"])[0]
    assert isinstance(nolabel, JudgeItemError) and "none of the labels" in str(nolabel)


def test_timeout_is_retried_a_bounded_number_of_times(server):
    stub, url = server
    judge = _judge(url, timeout_s=0.2, retries=2)
    t0 = time.perf_counter()
    rated = judge.rate(["q"], ["SLEEP"])
    elapsed = time.perf_counter() - t0
    assert isinstance(rated[0], JudgeItemError)
    assert "timed out" in str(rated[0]) and "3 attempts (1 + 2 retries)" in str(rated[0])
    assert stub.calls["SLEEP"] == 3 and judge.backend.requests == 3
    assert elapsed < 3 * 0.2 + 0.25 + 0.5 + 1.0  # three timeouts plus the two back-offs, with slack
    with pytest.raises(JudgeItemError, match="failed on 1 of 2 items"):
        judge.score(["q", "q"], ["fine", "SLEEP"])


def test_http_500_is_retried_then_succeeds(server):
    stub, url = server
    judge = _judge(url)
    assert judge.score(["q"], ["FLAKY"]) == pytest.approx([2.65 / 0.75])
    assert stub.calls["FLAKY"] == 3  # 500, then the first token, then the continuation


def test_chat_text_mode_parses_or_errors(server):
    _, url = server
    judge = _judge(url, api="chat", mode="text")
    rated = judge.rate(["q", "q"], ["fine", "turtles"])
    assert rated[0] == 7.0
    assert isinstance(rated[1], JudgeItemError) and "no rating" in str(rated[1])
    v = judge.compare(["q"], ["x"], ["y"])[0]  # the stub always answers "B": a pure position bias
    assert (v.p_first, v.p_second, v.p, v.flipped) == (0.0, 1.0, 0.5, True)
    judge.judge_config.errors = "nan"
    assert math.isnan(judge.score(["q"], ["turtles"])[0])


def test_completions_text_mode(server):
    _, url = server
    assert _judge(url, mode="text").score(["q"], ["x"]) == [8.0]


def test_endpoint_results_are_cached(server, tmp_path):
    stub, url = server
    first = _judge(url, tmp_path).score(["q", "q2"], ["a", "b"])
    before = stub.calls[""]
    again = _judge(url, tmp_path)
    assert again.score(["q", "q2"], ["a", "b"]) == first
    assert stub.calls[""] == before and again.backend.requests == 0 and again.cache.hits == 2


def test_judge_score_command_writes_per_item_errors(server, tmp_path):
    from rewardlab.cli import main

    _, url = server
    save_judge_config(JudgeConfig(endpoint=url, timeout_s=0.3, retries=0, cache=None), tmp_path / "j")
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        "\n".join(
            json.dumps({"prompt": "q", "response": r, "id": i}) for i, r in enumerate(["ok", "GARBAGE"])
        )
    )
    out = tmp_path / "scored.jsonl"
    assert main(["judge", "score", str(tmp_path / "j"), str(rows), "-o", str(out)]) == 0
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert got[0]["score"] == pytest.approx(2.65 / 0.75) and got[0]["id"] == 0
    assert "score" not in got[1] and "not JSON" in got[1]["error"]
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"prompt": "q", "chosen": "a good one", "rejected": "meh"}) + "\n")
    assert main(["judge", "compare", str(tmp_path / "j"), str(pairs), "-o", str(out)]) == 0
    v = json.loads(out.read_text())
    assert v["p"] == pytest.approx(0.7 / 0.9) and v["flipped"] is False
