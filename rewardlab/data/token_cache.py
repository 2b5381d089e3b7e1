"""Tokenised training data on disk, so a file of millions of pairs never has to fit in RAM.

`rewardlab train --stream` reads `--data` row by row through the same validation as `load_preferences`
(`loading.iter_preferences`: same formats, drops, duplicate check and file:line errors), tokenises the
groups in chunks with the model's `TextEncoder`, and writes the token ids to an Arrow file, one record
batch per chunk. Training opens it with Hugging Face `datasets` (`Dataset.from_file`: memory-mapped,
not read) and reads one batch of rows at a time; only a few numpy columns (lengths, prompt hashes) are
loaded whole.

One row per `PreferenceGroup`, laid out like `EncodedGroup`: per response its ids, token types, response
span and truncation flag; the group's pairs, margins, ranks and subset; `num_tokens` (what batches are
grouped by) and `prompt_hash` (for the train/eval leakage check).

The cache lives in ``$REWARDLAB_TOKEN_CACHE`` (default: ``<HF datasets cache>/rewardlab-tokens``), one
folder per key: a hash of the data file's bytes (of a `save_to_disk` folder's file names, sizes and
mtimes), the format and split, the tokenizer (vocabulary, specials, chat template), `max_length`,
`truncation` and the held-out rule. A second run with the same key reuses it: the file is hashed, not
parsed or tokenised again.
`meta.json` is written last: a folder without it is a build that died and is rebuilt.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.data.batching import EncodedGroup, TruncationReport, encoded_group
from rewardlab.data.encoding import Encoded, TextEncoder
from rewardlab.data.loading import iter_preferences, normalize_prompt, update_data_hash
from rewardlab.data.types import DataError, DataSummary, PreferenceGroup
from rewardlab.progress import Reporter

CACHE_VERSION = 2
"""Bump when the row layout changes: old caches then miss instead of being misread."""

CHUNK_GROUPS = 512
"""Groups tokenised per tokenizer call."""

META_FILE = "meta.json"
ARROW_FILE = "tokens.arrow"
HELDOUT_FILE = "heldout.jsonl"


@dataclass
class TokenCache:
    """A memory-mapped, tokenised training file; indexable like the list `encode_groups` returns."""

    dataset: Any
    """The `datasets.Dataset`, one row per group, memory-mapped from `folder`/tokens.arrow."""
    folder: Path
    summary: DataSummary
    """What reading the file did (rows read, drops with file:line examples), as `load_preferences` says."""
    truncation: TruncationReport
    data_hash: str
    """`loading.data_hash` of the training groups (held-out ones excluded), for the model card."""
    num_pairs: int
    heldout: list[PreferenceGroup] = field(default_factory=list)
    """Groups the holdout rule kept out of the cache (model-selection data), in file order."""
    reused: bool = False
    build_seconds: float = 0.0

    def __len__(self) -> int:
        return self.dataset.num_rows

    def __getitem__(self, i: int) -> EncodedGroup:
        return self.take([i])[0]

    @property
    def lengths(self) -> np.ndarray:
        """Tokens per group (all responses), the length batches are grouped by."""
        return self.dataset.data.column("num_tokens").to_numpy()

    def take(self, indices: Sequence[int] | np.ndarray) -> list[EncodedGroup]:
        """The groups at `indices`, in that order, read from the memory-mapped file."""
        rows = self.dataset[[int(i) for i in indices]]
        out = []
        for k in range(len(rows["num_tokens"])):
            types = rows["token_type_ids"][k]
            responses = [
                Encoded(ids, types[j] if types is not None else None, start, end, cut)
                for j, (ids, start, end, cut) in enumerate(
                    zip(
                        rows["input_ids"][k],
                        rows["response_start"][k],
                        rows["response_end"][k],
                        rows["truncated"][k],
                        strict=True,
                    )
                )
            ]
            pairs = [(w, lo) for w, lo in rows["pairs"][k]]
            out.append(
                EncodedGroup(responses, pairs, rows["margins"][k], rows["ranks"][k], rows["subset"][k])
            )
        return out

    def shared_prompts(self, groups: Iterable[PreferenceGroup]) -> list[str]:
        """Normalised prompts of `groups` that some cached group also has (`loading.find_leakage`'s test)."""
        train = self.dataset.data.column("prompt_hash").to_numpy()
        prompts = list(dict.fromkeys(normalize_prompt(g.prompt) for g in groups))
        found = np.isin(np.array([_prompt_hash(p) for p in prompts], dtype=np.int64), train)
        return [p for p, hit in zip(prompts, found, strict=True) if hit]

    def line(self) -> str:
        how = "reused" if self.reused else f"built in {self.build_seconds:.1f}s"
        return f"token cache {how}: {len(self)} groups, {self.num_pairs} pairs in {self.folder} (--stream)"


def open_token_cache(
    path: str,
    encoder: TextEncoder,
    *,
    format: str | None = None,
    split: str | None = None,
    margin_scale: float = 1.0,
    holdout: Callable[[PreferenceGroup], bool] | None = None,
    holdout_key: str = "",
    cache_dir: str | Path | None = None,
    reporter: Reporter | None = None,
) -> TokenCache:
    """The token cache of `path` for `encoder`: reused when one with the same key exists, else built.

    `holdout(group)` True keeps a group out of the cache and returns it in `.heldout` (model-selection
    data); `holdout_key` names that rule for the cache key (e.g. its fraction and seed). Raises
    DataError as `load_preferences` does (up to 20 problems with file:line), leaving no cache behind.
    """
    from filelock import FileLock

    root = Path(cache_dir or default_cache_dir())
    key = cache_key(path, encoder, format=format, split=split, margin_scale=margin_scale, holdout=holdout_key)
    folder = root / key
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / f"{key}.lock")):  # ranks of one job (or two jobs) build it once
        if not (folder / META_FILE).is_file():
            shutil.rmtree(folder, ignore_errors=True)  # a build that died half-way
            _build(path, encoder, folder, format, split, margin_scale, holdout, reporter or Reporter())
            reused = False
        else:
            reused = True
        return _open(folder, reused)


def default_cache_dir() -> Path:
    """``$REWARDLAB_TOKEN_CACHE``, else ``rewardlab-tokens`` in the Hugging Face datasets cache."""
    if os.environ.get("REWARDLAB_TOKEN_CACHE"):
        return Path(os.environ["REWARDLAB_TOKEN_CACHE"])
    import datasets

    return Path(datasets.config.HF_DATASETS_CACHE) / "rewardlab-tokens"


def cache_key(
    path: str,
    encoder: TextEncoder,
    *,
    format: str | None = None,
    split: str | None = None,
    margin_scale: float = 1.0,
    holdout: str = "",
) -> str:
    """Hex key of everything the cached ids depend on (see the module docstring)."""
    parts = {
        "version": CACHE_VERSION,
        "data": source_fingerprint(path),
        "format": format,
        "split": split,
        "margin_scale": margin_scale,
        "encoder": encoder_fingerprint(encoder),
        "holdout": holdout,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def source_fingerprint(path: str) -> str:
    """sha256 of a file's bytes, or of a folder's (relative name, size, mtime) list."""
    digest = hashlib.sha256()
    if os.path.isfile(path):
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return "file:" + digest.hexdigest()
    if os.path.isdir(path):
        for dirpath, dirnames, filenames in sorted(os.walk(path)):
            dirnames.sort()
            for name in sorted(filenames):
                full = os.path.join(dirpath, name)
                st = os.stat(full)
                digest.update(f"{os.path.relpath(full, path)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return "folder:" + digest.hexdigest()
    raise DataError(
        f"{path}: --stream reads a file or a `save_to_disk` folder; for a cached hub dataset, "
        "save it once with `datasets.load_dataset(NAME).save_to_disk(FOLDER)` and pass FOLDER"
    )


def encoder_fingerprint(encoder: TextEncoder) -> str:
    """sha256 of what decides the ids: vocabulary and merges, specials, template, layout, budget, policy."""
    tok = encoder.tokenizer
    backend = getattr(tok, "backend_tokenizer", None)
    vocab = backend.to_str() if backend is not None else json.dumps(sorted(tok.get_vocab().items()))
    settings = {
        k: v for k, v in getattr(tok, "init_kwargs", {}).items() if "file" not in k and k != "name_or_path"
    }
    parts = [
        type(tok).__name__,
        vocab,
        json.dumps(settings, sort_keys=True, default=str),
        json.dumps(tok.special_tokens_map, sort_keys=True, default=str),
        str(getattr(tok, "chat_template", None)),
        str(len(tok)),
        repr(encoder.layout),
        f"{encoder.max_length}:{encoder.truncation}:{encoder.is_encoder}:{encoder.append_eos}",
    ]
    if getattr(encoder, "thinking", None) is not None:  # --strip-thinking changes the ids
        parts.append(repr(encoder.thinking))
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


# --- building --------------------------------------------------------------------------------------


def _features() -> Any:
    from datasets import Features, List, Value

    return Features(
        {
            "input_ids": List(List(Value("int32"))),
            "token_type_ids": List(List(Value("int8"))),
            "response_start": List(Value("int32")),
            "response_end": List(Value("int32")),
            "truncated": List(Value("bool")),
            "pairs": List(List(Value("int32"))),
            "margins": List(Value("float64")),
            "ranks": List(Value("float64")),
            "subset": Value("string"),
            "num_tokens": Value("int32"),
            "prompt_hash": Value("int64"),
        }
    )


@dataclass
class _BuildState:
    summary: DataSummary
    truncation: TruncationReport = field(default_factory=TruncationReport)
    digest: Any = field(default_factory=hashlib.sha256)
    groups: int = 0
    pairs: int = 0
    heldout: list[PreferenceGroup] = field(default_factory=list)


def _chunks(
    path: str,
    encoder: TextEncoder,
    state: _BuildState,
    fmt: str | None,
    split: str | None,
    margin_scale: float,
    holdout: Callable[[PreferenceGroup], bool] | None,
) -> Iterator[list[dict]]:
    """Rows of every kept training group of `path`, tokenised and yielded `CHUNK_GROUPS` at a time."""
    groups = iter_preferences(path, fmt, split, margin_scale=margin_scale, summary=state.summary)
    chunk: list[PreferenceGroup] = []
    for group in _then_none(groups):
        if group is not None:
            if holdout is not None and holdout(group):
                state.heldout.append(group)
            else:
                chunk.append(group)
            if len(chunk) < CHUNK_GROUPS:
                continue
        if not chunk:
            continue
        rows = []
        encoded = encoder.encode_groups([(g.prompt, g.responses) for g in chunk])
        for g, enc in zip(chunk, encoded, strict=True):
            rows.append(_row(g, encoded_group(g, enc, state.truncation)))
            update_data_hash(state.digest, g)
            state.groups += 1
            state.pairs += g.num_pairs
        yield rows
        chunk = []


def _then_none(items: Iterable[PreferenceGroup]) -> Iterator[PreferenceGroup | None]:
    yield from items
    yield None  # flush the last chunk


def _row(g: PreferenceGroup, e: EncodedGroup) -> dict:
    has_types = e.responses[0].token_type_ids is not None
    return {
        "input_ids": [r.input_ids for r in e.responses],
        "token_type_ids": [r.token_type_ids for r in e.responses] if has_types else None,
        "response_start": [r.response_start for r in e.responses],
        "response_end": [r.response_end for r in e.responses],
        "truncated": [r.truncated for r in e.responses],
        "pairs": [list(p) for p in e.pairs],
        "margins": e.margins,
        "ranks": e.ranks,
        "subset": e.subset,
        "num_tokens": e.num_tokens,
        "prompt_hash": _prompt_hash(normalize_prompt(g.prompt)),
    }


def _prompt_hash(normalized: str) -> int:
    return int.from_bytes(hashlib.sha256(normalized.encode()).digest()[:8], "little") >> 1  # fits int64


def _build(
    path: str,
    encoder: TextEncoder,
    folder: Path,
    fmt: str | None,
    split: str | None,
    margin_scale: float,
    holdout: Callable[[PreferenceGroup], bool] | None,
    reporter: Reporter,
) -> None:
    """Write `folder`: the Arrow file, the held-out groups, then meta.json; remove it all on failure.

    Each chunk goes to the file as one Arrow record batch, in the IPC stream format `datasets`
    memory-maps. (Yielding rows through `Dataset.from_generator` made `datasets` re-encode every row
    in Python, which cost as much as tokenising: benchmarks/data_scale.py.)
    """
    import pyarrow as pa

    t0 = time.perf_counter()
    summary = DataSummary(path=path if split is None else f"{path}[{split}]", format=fmt or "")
    state = _BuildState(summary)
    schema = _features().arrow_schema
    folder.mkdir(parents=True)
    reporter.start("tokenising into the token cache", None)
    try:
        with pa.OSFile(str(folder / ARROW_FILE), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
            for rows in _chunks(path, encoder, state, fmt, split, margin_scale, holdout):
                writer.write_batch(pa.RecordBatch.from_pylist(rows, schema=schema))
                reporter.advance(len(rows))
        if state.groups == 0:
            lines = "\n".join(summary.lines())
            raise DataError(f"{summary.path}: no usable rows: every row was dropped.\n{lines}")
        with (folder / HELDOUT_FILE).open("w", encoding="utf-8") as f:
            for g in state.heldout:
                f.write(json.dumps(dataclasses.asdict(g), ensure_ascii=False, default=str) + "\n")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    finally:
        reporter.finish()
    meta = {
        "version": CACHE_VERSION,
        "source": path,
        "summary": {**vars(summary), "dropped": dict(summary.dropped)},  # asdict() mangles a Counter
        "truncation": dataclasses.asdict(state.truncation),
        "data_hash": state.digest.hexdigest(),
        "groups": state.groups,
        "pairs": state.pairs,
        "heldout": len(state.heldout),
        "build_seconds": time.perf_counter() - t0,
    }
    tmp = folder / f".{META_FILE}.tmp"
    tmp.write_text(json.dumps(meta, indent=1, default=str) + "\n")
    os.replace(tmp, folder / META_FILE)  # the marker that the build is complete


def _open(folder: Path, reused: bool) -> TokenCache:
    from datasets import Dataset

    meta = json.loads((folder / META_FILE).read_text())
    dataset = Dataset.from_file(str(folder / ARROW_FILE))  # memory-mapped, not read
    s = meta["summary"]
    dropped = Counter(s["dropped"])
    summary = DataSummary(
        s["path"], s["format"], s["rows_read"], s["groups"], s["pairs"], dropped, s["dropped_examples"]
    )
    heldout = []
    with (folder / HELDOUT_FILE).open(encoding="utf-8") as f:
        for line in f:
            raw = json.loads(line)
            raw["pairs"] = [tuple(p) for p in raw["pairs"]]
            heldout.append(PreferenceGroup(**raw))
    return TokenCache(
        dataset=dataset,
        folder=folder,
        summary=summary,
        truncation=TruncationReport(**meta["truncation"]),
        data_hash=meta["data_hash"],
        num_pairs=meta["pairs"],
        heldout=heldout,
        reused=reused,
        build_seconds=meta["build_seconds"],
    )
