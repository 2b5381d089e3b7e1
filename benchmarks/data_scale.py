"""Streaming data at scale: time and peak memory of the token cache at 10k, 100k and 1M pairs.

    flock /tmp/rewardlab-heavy.lock .venv/bin/python benchmarks/data_scale.py           # 10k, 100k, 1M
    flock /tmp/rewardlab-heavy.lock .venv/bin/python benchmarks/data_scale.py --quick   # 10k, 100k
    .venv/bin/python benchmarks/data_scale.py --sizes 2000 --keep /tmp/ds               # a smoke run

For each size the parent writes synthetic pairs to a temporary JSONL (random common English words,
prompts of 8-40 words, responses of 5-60; every row distinct), then runs a fresh child process that
does what `rewardlab train --stream` does before the first step, with the MiniLM tokenizer
(packaged `minilm`, 256 tokens, left truncation):

1. build: read, validate, deduplicate and tokenise the file into the Arrow token cache
   (`rewardlab.data.token_cache.open_token_cache`);
2. reuse: open it again (what a second run or another process pays);
3. pass: draw one epoch of length-grouped batches of 8 (`batch_plan.plan_batches`) and read and
   collate every batch into tensors (`TokenCache.take` + `batching.collate_groups`).

The child samples /proc/self/status every 20 ms: peak anonymous RSS (the process's own heap: what has
to fit in RAM) and peak file-backed RSS (pages of the memory-mapped cache, which the kernel drops
under pressure), plus VmHWM (their sum's peak, = ru_maxrss). The last line is JSON with every figure,
time per row at each size, and the machine (cores, torch threads, load average). With --timeout, a
size that runs longer is stopped and reported by its last progress line (rows done, time, memory).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

WORDS = (
    "the of and to in is you that it he was for on are as with his they at be this have from or one "
    "had by word but not what all were we when your can said there use an each which she do how their "
    "if will up other about out many then them these so some her would make like him into time has look "
    "two more write go see number no way could people my than first water been call who oil its now "
    "find long down day did get come made may part over new sound take only little work know place year "
    "live me back give most very after thing our just name good sentence man think say great where help "
    "through much before line right too mean old any same tell boy follow came want show also around "
    "form three small set put end does another well large must big even such because turn here why ask "
    "went men read need land different home us move try kind hand picture again change off play spell "
    "air away animal house point page letter mother answer found study still learn should America world"
).split()


def synthetic_row(i: int, rng: random.Random) -> dict:
    def text(lo: int, hi: int) -> str:
        return " ".join(rng.choices(WORDS, k=rng.randint(lo, hi)))

    prompt = f"Question {i}: {text(8, 40)}?"
    chosen, rejected = text(5, 60) + ".", text(5, 60) + "."
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected if rejected != chosen else "No."}


def write_pairs(path: Path, n: int, seed: int = 0) -> int:
    """n synthetic pair rows as JSONL, written as they are made; returns the file size in bytes."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps(synthetic_row(i, rng)) + "\n")
    return path.stat().st_size


# --- the measured child ----------------------------------------------------------------------------


class MemorySampler(threading.Thread):
    """Peaks of RssAnon, RssFile and VmRSS from /proc/self/status, sampled every `every` seconds."""

    def __init__(self, every: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.every, self.peak, self.running = every, {"RssAnon": 0, "RssFile": 0, "VmRSS": 0}, True

    def run(self) -> None:
        while self.running:
            self.sample()
            time.sleep(self.every)

    def sample(self) -> dict[str, int]:
        now = status_kb()
        for key in self.peak:
            self.peak[key] = max(self.peak[key], now.get(key, 0))
        return now

    def stop(self) -> dict[str, float]:
        self.running = False
        self.join()
        self.sample()
        return {f"peak_{k.lower()}_mb": v / 1024 for k, v in self.peak.items()}


def status_kb() -> dict[str, int]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if value.strip().endswith("kB"):
            out[key] = int(value.split()[0])
    return out


class ProgressLog:
    """A `Reporter` for the build, and the pass's counter: one JSON line on stderr every `every` seconds.

    If the parent stops a child at --timeout, the last line says how far it got and at what memory.
    """

    def __init__(self, every: float = 10.0) -> None:
        self.every, self.t0, self.last, self.rows, self.phase = every, time.perf_counter(), 0.0, 0, "build"
        self.extra: dict = {}

    def start(self, task: str, total: int | None) -> None:
        self.rows = 0

    def advance(self, n: int = 1, **metrics: object) -> None:
        self.rows += n
        now = time.perf_counter()
        if now - self.last >= self.every:
            self.last = now
            mem = {k: v / 1024 for k, v in status_kb().items() if k in ("RssAnon", "RssFile", "VmHWM")}
            line = {"phase": self.phase, "rows": self.rows, "elapsed_s": now - self.t0, **mem, **self.extra}
            print(json.dumps(line), file=sys.stderr, flush=True)

    def finish(self) -> None:
        pass

    def message(self, text: str) -> None:
        pass


def child(data: str, cache_dir: str, max_length: int, batch_size: int) -> dict:
    from transformers import AutoTokenizer

    from rewardlab.data.batch_plan import plan_batches
    from rewardlab.data.batching import collate_groups
    from rewardlab.data.encoding import TextEncoder
    from rewardlab.data.token_cache import open_token_cache
    from rewardlab.model.build import resolve_backbone

    path, _ = resolve_backbone("minilm")
    tokenizer = AutoTokenizer.from_pretrained(path)
    encoder = TextEncoder(tokenizer, max_length=max_length, truncation="left")
    sampler = MemorySampler()
    base = sampler.sample()
    sampler.start()

    log = ProgressLog()
    t0 = time.perf_counter()
    cache = open_token_cache(data, encoder, cache_dir=cache_dir, reporter=log)  # type: ignore[arg-type]
    build_s = time.perf_counter() - t0
    after_build = sampler.sample()

    t0 = time.perf_counter()
    cache = open_token_cache(data, encoder, cache_dir=cache_dir)
    reuse_s = time.perf_counter() - t0
    assert cache.reused

    t0 = time.perf_counter()
    plan = plan_batches(cache.lengths, batch_size, seed=0)
    plan_s = time.perf_counter() - t0
    tokens = padded = 0
    log.phase, log.t0, log.rows, log.last = "pass", t0, 0, 0.0
    log.extra = {"build_s": build_s, "build_anon_mb": after_build["RssAnon"] / 1024}
    for idx in plan:
        batch = collate_groups(cache.take(idx), tokenizer.pad_token_id)
        tokens += int(batch["attention_mask"].sum())
        padded += batch["input_ids"].numel()
        log.advance(len(idx))
    pass_s = time.perf_counter() - t0
    peaks = sampler.stop()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    disk = sum(f.stat().st_size for f in Path(cache.folder).rglob("*") if f.is_file())
    rows = cache.summary.rows_read
    return {
        "rows": rows,
        "groups": len(cache),
        "pairs": cache.num_pairs,
        "tokens": tokens,
        "padding_fraction": 1 - tokens / padded,
        "build_s": build_s,
        "reuse_s": reuse_s,
        "plan_s": plan_s,
        "pass_s": pass_s,
        "build_us_per_row": 1e6 * build_s / rows,
        "pass_us_per_row": 1e6 * pass_s / rows,
        "batches": len(plan),
        "cache_mb_on_disk": disk / 2**20,
        "rss_before_mb": base["VmRSS"] / 1024,
        "anon_before_mb": base["RssAnon"] / 1024,
        "anon_after_build_mb": after_build["RssAnon"] / 1024,
        **peaks,
        "vmhwm_mb": status_kb()["VmHWM"] / 1024,
        "ru_maxrss_mb": usage.ru_maxrss / 1024,
        "cpu_s": usage.ru_utime + usage.ru_stime,
    }


# --- the parent --------------------------------------------------------------------------------------


def machine() -> dict:
    import torch

    return {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "tokenizers_parallelism": os.environ.get("TOKENIZERS_PARALLELISM", "(unset: on)"),
        "loadavg_at_start": os.getloadavg(),
        "python": sys.version.split()[0],
    }


def run_size(n: int, workdir: Path, args: argparse.Namespace) -> dict:
    data = workdir / f"pairs-{n}.jsonl"
    t0 = time.perf_counter()
    size = write_pairs(data, n)
    generate_s = time.perf_counter() - t0
    cache_dir = workdir / f"cache-{n}"
    shutil.rmtree(cache_dir, ignore_errors=True)
    cmd = [sys.executable, __file__, "--child", str(data), "--cache-dir", str(cache_dir)]
    cmd += ["--max-length", str(args.max_length), "--batch-size", str(args.batch_size)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=args.timeout)
    except subprocess.TimeoutExpired as e:  # report how far it got, and stop here
        stderr = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
        progress = [json.loads(x) for x in stderr.splitlines() if x.startswith('{"phase"')]
        result = {"size": n, "timed_out_s": args.timeout, "last_progress": progress[-1] if progress else None}
        result.update(file_mb=size / 2**20, generate_s=generate_s)
        shutil.rmtree(cache_dir, ignore_errors=True)
        return result
    if done.returncode != 0:
        raise SystemExit(f"child for {n} rows failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result.update(size=n, file_mb=size / 2**20, generate_s=generate_s, loadavg_after=os.getloadavg()[0])
    if not args.keep:
        data.unlink()
        shutil.rmtree(cache_dir, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k and 100k rows only")
    parser.add_argument("--sizes", type=int, nargs="+", help="row counts (default 10000 100000 1000000)")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--keep", help="write files and caches to this folder and keep them")
    parser.add_argument("--timeout", type=float, default=None, help="stop a size's child after this many s")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.cache_dir, args.max_length, args.batch_size)))
        return
    sizes = args.sizes or ([10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000])
    info = machine()
    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="rewardlab-data-scale-"))
    workdir.mkdir(parents=True, exist_ok=True)
    results = []
    head = (
        f"{'rows':>9} {'file MB':>8} {'build s':>8} {'us/row':>7} {'pass s':>7} {'us/row':>7} "
        f"{'reuse s':>7} {'anon MB':>8} {'file-rss MB':>11} {'VmHWM MB':>9} {'cache MB':>9}"
    )
    print(head, flush=True)
    try:
        for n in sizes:
            r = run_size(n, workdir, args)
            results.append(r)
            if "timed_out_s" in r:
                print(f"{n:>9} stopped after {r['timed_out_s']:.0f} s; last progress: {r['last_progress']}")
                break
            print(
                f"{n:>9} {r['file_mb']:>8.0f} {r['build_s']:>8.1f} {r['build_us_per_row']:>7.0f} "
                f"{r['pass_s']:>7.1f} {r['pass_us_per_row']:>7.0f} {r['reuse_s']:>7.2f} "
                f"{r['peak_rssanon_mb']:>8.0f} {r['peak_rssfile_mb']:>11.0f} {r['vmhwm_mb']:>9.0f} "
                f"{r['cache_mb_on_disk']:>9.0f}",
                flush=True,
            )
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    summary = {
        "benchmark": "data_scale",
        "machine": info,
        "max_length": args.max_length,
        "batch_size": args.batch_size,
        "us_per_row": {
            r["size"]: {"build": r["build_us_per_row"], "pass": r["pass_us_per_row"]}
            for r in results
            if "build_us_per_row" in r
        },
        "results": results,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
