"""The reward server under load: texts/s and latency at 1, 8 and 32 concurrent clients, against the
offline `Scorer` on the same texts, with the server's memory before and after.

    flock /tmp/rewardlab-heavy.lock .venv/bin/python benchmarks/serve_load.py    # MiniLM, 60 s per level
    flock /tmp/rewardlab-heavy.lock .venv/bin/python benchmarks/serve_load.py --quick   # about a minute

Loopback only and bounded in time. The model is MiniLM (the packaged all-MiniLM-L6-v2) with a fresh
scalar head (throughput does not depend on training), or --model FOLDER. Texts are HH-RLHF test
transcripts from ../shared/data, or the demo task when that is absent. Steps:
1. offline: `Scorer.score_texts` over the text pool in this process, repeated for --offline-s seconds;
2. `rewardlab serve` in a child process on 127.0.0.1 (its defaults: micro-batching, 5 ms max wait);
3. for each level, that many clients (this script's own HTTP/1.1 keep-alive client on asyncio streams,
   far lighter than a general HTTP library, since it shares the 2 cores with the server) loop
   ``POST /score`` with --texts-per-request texts each for --duration seconds. An error is a failed
   request, a non-200 answer, or a reward more than 1e-4 away from the offline reward of that text;
4. the server's RSS (VmRSS) after a warm-up at the highest level (so the allocator has seen the largest
   batches), after each level, and at the end.
The last line is JSON; `ratio` is served texts/s at 8 clients over offline texts/s, `errors` the total.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from score_vs_pipeline import load_texts  # noqa: E402  (same texts as the offline scoring benchmark)


def build_model(folder: Path, max_length: int) -> str:
    import transformers

    from rewardlab.model.build import build_reward_model
    from rewardlab.model.saved import save_reward_model

    transformers.logging.set_verbosity_error()

    model, encoder, card = build_reward_model("minilm", max_length=max_length)
    save_reward_model(model, encoder, card, folder)
    return str(folder)


def offline_throughput(model: str, texts: list[str], seconds: float) -> tuple[float, list[float]]:
    from rewardlab.scoring.scorer import Scorer

    scorer = Scorer.from_pretrained(model, device="cpu")
    scorer.score_texts(texts[:16])  # warm-up
    rewards, done, started = [], 0, time.perf_counter()
    while time.perf_counter() - started < seconds or not rewards:
        rewards = scorer.score_texts(texts)
        done += len(texts)
    return done / (time.perf_counter() - started), rewards


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class LevelStats:
    texts: int = 0
    requests: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    error_kinds: dict[str, int] = field(default_factory=dict)

    def error(self, kind: str) -> None:
        self.errors += 1
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1


async def _request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, body: bytes
) -> tuple[int, bytes]:
    head = (
        "POST /score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    writer.write(head + body)
    await writer.drain()
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def client(port: int, jobs: list[tuple[bytes, list[float]]], start: int, deadline: float,
                 stats: LevelStats) -> None:  # fmt: skip
    """One client: requests back to back on one keep-alive connection until the deadline."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = start
    try:
        while time.perf_counter() < deadline:
            body, expected = jobs[i % len(jobs)]
            i += 1
            t0 = time.perf_counter()
            try:
                status, data = await asyncio.wait_for(_request(reader, writer, body), 60)
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError, IndexError) as e:
                stats.error(type(e).__name__)
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            latency = time.perf_counter() - t0
            stats.requests += 1
            if status != 200:
                stats.error(f"HTTP {status}")
                continue
            got = json.loads(data)["rewards"]
            if len(got) != len(expected) or any(
                abs(a - b) > 1e-4 for a, b in zip(got, expected, strict=True)
            ):
                stats.error("wrong rewards")
                continue
            stats.texts += len(got)
            stats.latencies.append(latency)
    finally:
        writer.close()


async def run_level(port: int, jobs: list, clients: int, duration: float) -> dict:
    stats = LevelStats()
    started = time.perf_counter()
    deadline = started + duration
    tasks = [client(port, jobs, k * 7, deadline, stats) for k in range(clients)]
    await asyncio.wait_for(asyncio.gather(*tasks), duration + 120)
    elapsed = time.perf_counter() - started
    lat = sorted(stats.latencies) or [float("nan")]
    return {
        "clients": clients,
        "texts_per_s": round(stats.texts / elapsed, 2),
        "requests": stats.requests,
        "p50_ms": round(1000 * lat[len(lat) // 2], 1),
        "p99_ms": round(1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))], 1),
        "errors": stats.errors,
        "error_kinds": stats.error_kinds,
        "seconds": round(elapsed, 1),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, port: int, log: Path, max_texts: int) -> subprocess.Popen:
    import httpx

    env = {k: v for k, v in os.environ.items() if k != "REWARDLAB_SERVE_TOKEN"}
    cmd = [
        sys.executable,
        "-m",
        "rewardlab",
        "serve",
        model,
        "--port",
        str(port),
        "--max-texts",
        str(max_texts),
    ]
    proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early:\n{log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"server did not become ready in 180 s:\n{log.read_text()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--quick", action="store_true", help="10 s per level, 256 texts, 128 tokens: about a minute"
    )
    ap.add_argument(
        "--model", default=None, help="A saved reward model folder (default: MiniLM, fresh head)."
    )
    ap.add_argument("--duration", type=float, default=None, help="Seconds of load per level (default 60).")
    ap.add_argument("--levels", default="1,8,32", help="Concurrent clients per level.")
    ap.add_argument("--texts", type=int, default=None, help="Text pool size (default 512; quick 256).")
    ap.add_argument("--texts-per-request", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=None, help="Tokens per text (default 256; quick 128).")
    ap.add_argument("--offline-s", type=float, default=None, help="Seconds of offline scoring (default 20).")
    args = ap.parse_args()
    duration = args.duration or (10.0 if args.quick else 60.0)
    n_texts = args.texts or (256 if args.quick else 512)
    max_length = args.max_length or (128 if args.quick else 256)
    offline_s = args.offline_s or (6.0 if args.quick else 20.0)
    levels = [int(x) for x in args.levels.split(",")]

    import torch

    texts, source = load_texts(n_texts)
    tmp = Path(tempfile.mkdtemp(prefix="rewardlab-serve-load-"))
    model = args.model or build_model(tmp / "model", max_length)
    print(f"{len(texts)} texts from {source}; model {model}; torch threads {torch.get_num_threads()}")
    offline, rewards = offline_throughput(model, texts, offline_s)
    print(f"offline Scorer: {offline:.1f} texts/s")
    k = args.texts_per_request
    jobs = [
        (json.dumps({"texts": texts[i : i + k]}).encode(), rewards[i : i + k])
        for i in range(0, len(texts), k)
    ]
    port = free_port()
    log = tmp / "server.log"
    proc = start_server(model, port, log, max_texts=max(k, 8))
    results, rss = [], {}
    try:
        asyncio.run(run_level(port, jobs, max(levels), 3.0 if args.quick else 10.0))  # warm-up, not reported
        rss["before"] = rss_mb(proc.pid)
        print(f"server RSS after warm-up: {rss['before']:.0f} MB")
        for c in levels:
            res = asyncio.run(run_level(port, jobs, c, duration))
            res["ratio_to_offline"] = round(res["texts_per_s"] / offline, 3)
            res["rss_mb"] = round(rss_mb(proc.pid), 1)
            results.append(res)
            print(
                f"{c:3d} clients: {res['texts_per_s']:7.1f} texts/s ({100 * res['ratio_to_offline']:.0f}% of "
                f"offline), p50 {res['p50_ms']:.0f} ms, p99 {res['p99_ms']:.0f} ms, {res['errors']} errors, "
                f"RSS {res['rss_mb']:.0f} MB"
            )
        rss["after"] = rss_mb(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    at8 = next((r for r in results if r["clients"] == 8), results[-1])
    summary = {
        "benchmark": "serve_load",
        "quick": args.quick,
        "texts": len(texts),
        "texts_source": source,
        "max_length": max_length,
        "texts_per_request": k,
        "duration_s_per_level": duration,
        "offline_texts_per_s": round(offline, 2),
        "levels": results,
        "rss_mb_before": round(rss["before"], 1),
        "rss_mb_after": round(rss["after"], 1),
        "ratio": at8["ratio_to_offline"],
        "errors": sum(r["errors"] for r in results),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
