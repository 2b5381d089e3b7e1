"""Property-based fuzzing of the data readers and formats (issue 20): whatever bytes, JSON values,
nesting or CSV cells a file holds, `load_preferences` either loads it cleanly, into groups that keep
the `PreferenceGroup` contract, or raises a `DataError` whose every problem names the file (and the
line, for a row). The same holds for `rewardlab score`'s pre-check. Any other exception is a bug.

The default run tries each property on a small budget (a few seconds in all); `-m slow` runs the
same properties on a large one.
"""

from __future__ import annotations

import csv
import io
import json
import math
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rewardlab.data import load_preferences
from rewardlab.data.formats import MAX_MARGIN
from rewardlab.data.types import DataError, PreferenceGroup
from rewardlab.scoring.score_file import check_score_file

BUDGETS = [pytest.param(25, id="small"), pytest.param(2000, id="large", marks=pytest.mark.slow)]
SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")
KEYS = (
    "prompt", "chosen", "rejected", "margin", "responses", "ranking", "completions", "text", "score",
    "role", "content", "subset", "messages", "response", "completion",
)  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**500), max_value=10**500),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["", " ", "\n\nHuman: hi\n\nAssistant:", "user", "assistant"]),
)
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=8))
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=6),
    max_leaves=30,
)
rows = st.dictionaries(keys, json_values, max_size=7)  # objects with preference-like keys reach the formats


def _settings(budget: int):
    return settings(
        max_examples=budget,
        deadline=None,
        database=None,  # no .hypothesis folder in the repository
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def _check_outcome(path: Path) -> None:
    """The property: a clean load that keeps the group contract, or a DataError located at `path`."""
    try:
        groups, summary = load_preferences(str(path))
    except DataError as err:
        _check_located(err, path)
        return
    assert groups and summary.groups == len(groups)
    for group in groups:
        _check_group(group)


def _check_located(err: DataError, path: Path) -> None:
    lines = str(err).splitlines()
    assert str(path) in lines[0], str(err)[:500]
    for line in lines[1:]:  # the listed problems: each is "  PATH:LINE: ..." (or the "... and N more")
        if line.startswith("  dropped "):  # "every row was dropped", then the summary's drop reasons
            assert f"(e.g. {path}:" in line, line[:300]
        elif line.startswith("  ") and not line.startswith("  ... and"):
            assert line.strip().startswith(f"{path}:"), line[:300]


def _check_text(text: object) -> None:
    if isinstance(text, str):
        return
    assert isinstance(text, list)
    for message in text:
        assert isinstance(message["role"], str) and message["role"].strip()
        assert isinstance(message["content"], str)


def _check_group(group: PreferenceGroup) -> None:
    assert len(group.responses) >= 2 and group.pairs
    _check_text(group.prompt)
    for response in group.responses:
        _check_text(response)
    for w, lo in group.pairs:
        assert 0 <= w < len(group.responses) and 0 <= lo < len(group.responses) and w != lo
        assert group.responses[w] != group.responses[lo]
    if group.margins is not None:
        assert len(group.margins) == len(group.pairs)
        assert all(math.isfinite(m) and 0 <= m <= MAX_MARGIN for m in group.margins)
    json.dumps(group.meta, default=str)  # the data hash serialises meta: it must not fail


def _write_rows(path: Path, values: list) -> None:
    """`values` in the container `path`'s suffix names, as a user's tool might have written them."""
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(v) + "\n" for v in values), encoding="utf-8")
    elif path.suffix == ".json":
        path.write_text(json.dumps(values, indent=1), encoding="utf-8")
    elif path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist([{k: _cell(v) for k, v in row.items()} for row in values if row])
        pq.write_table(table, path)


def _cell(value: object) -> str | None:
    """A parquet cell: one type per column, so cells are text (or null)."""
    return None if value is None else json.dumps(value) if not isinstance(value, str) else value


@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("suffix", SUFFIXES)
def test_random_bytes(budget, suffix):
    alphabet = st.sampled_from(
        [b"{", b"}", b"[", b"]", b'"', b",", b":", b"\n", b"\\", b"\xef\xbb\xbf", b"\xff"]
    )
    data = st.one_of(
        st.binary(max_size=300), st.lists(alphabet | st.binary(max_size=4), max_size=80).map(b"".join)
    )

    @_settings(budget)
    @given(data)
    def check(content: bytes) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"d{suffix}"
            path.write_bytes(content)
            _check_outcome(path)

    check()


@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("suffix", (".jsonl", ".json"))
def test_random_json_values(budget, suffix):
    @_settings(budget)
    @given(st.lists(json_values | rows, min_size=1, max_size=5))
    def check(values: list) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"d{suffix}"
            _write_rows(path, values)
            _check_outcome(path)

    check()


pair_rows = st.fixed_dictionaries(
    {"prompt": json_values, "chosen": json_values, "rejected": json_values},
    optional={"margin": json_values, "subset": json_values},
)
messages = st.lists(
    st.fixed_dictionaries({}, optional={"role": json_values, "content": json_values}), max_size=3
)
shaped_rows = st.one_of(
    pair_rows,
    st.fixed_dictionaries({"chosen": messages | json_values, "rejected": messages | json_values}),
    st.fixed_dictionaries(
        {"prompt": json_values, "responses": st.lists(json_values), "ranking": json_values}
    ),
    st.fixed_dictionaries(
        {"prompt": json_values, "completions": st.lists(st.dictionaries(keys, json_values))}
    ),
)


@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("suffix", (".jsonl", ".json", ".parquet"))
def test_rows_shaped_like_each_format(budget, suffix):
    """Rows with each format's keys and random values: deep into every converter's checks."""

    @_settings(budget)
    @given(st.lists(shaped_rows, min_size=1, max_size=4))
    def check(values: list) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"d{suffix}"
            _write_rows(path, values)
            _check_outcome(path)

    check()


@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("suffix", (".jsonl", ".json"))
def test_random_nesting(budget, suffix):
    closers = {"[": "]", '{"a": ': "}", '{"prompt": ': "}", "[1, ": "]", '{"chosen": [': "]}"}
    nesting = st.tuples(
        st.lists(st.sampled_from(list(closers)), max_size=50), st.integers(0, 3000), st.booleans()
    )

    @_settings(budget)
    @given(nesting)
    def check(spec: tuple) -> None:
        openers, repeat, closed = spec
        head = "".join(openers) + "[" * repeat
        tail = "]" * repeat + "".join(closers[o] for o in reversed(openers))
        body = head + "0" + tail if closed else head
        row = '{"prompt": "p", "chosen": "a", "rejected": "b", "x": ' + body + "}"
        text = row + "\n" if suffix == ".jsonl" else "[" + row + "]"
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"d{suffix}"
            path.write_text(text, encoding="utf-8")
            _check_outcome(path)

    check()


@pytest.mark.parametrize("budget", BUDGETS)
def test_random_csv(budget):
    header = st.lists(st.sampled_from(KEYS[:5]) | st.text(max_size=6), min_size=1, max_size=6)
    cell = st.one_of(
        st.text(max_size=15), st.sampled_from(["4", "-1", "1e308", "1e400", "nan", "", "NA", '"'])
    )

    @_settings(budget)
    @given(header, st.lists(st.lists(cell, max_size=7), max_size=6))
    def check(names: list, body: list) -> None:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(names)
        writer.writerows(body)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "d.csv"
            path.write_text(buf.getvalue(), encoding="utf-8")
            _check_outcome(path)

    check()


@pytest.mark.parametrize("budget", BUDGETS)
def test_score_precheck_on_random_rows(budget):
    """`rewardlab score` checks every row first: a count, or a DataError naming each bad row's line."""
    score_rows = st.one_of(
        rows,
        st.fixed_dictionaries({"messages": messages | json_values}),
        st.fixed_dictionaries({"prompt": messages | json_values, "response": messages | json_values}),
    )

    @_settings(budget)
    @given(st.lists(score_rows, min_size=1, max_size=4))
    def check(values: list) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "rows.jsonl"
            _write_rows(path, values)
            try:
                assert check_score_file(str(path)) == len(values)
            except DataError as err:
                assert all(line.startswith(f"{path}:") for line in str(err).splitlines() if line[:3] != "...")

    check()
