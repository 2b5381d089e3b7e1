"""Judge prompt templates: plain text files with a small header, shipped in ``rewardlab/judge/templates/``
or given by path, so a prompt change is a file diff and its version travels with the judge config.

A template file is ``key: value`` header lines (a value starting with ``"`` or ``[`` is JSON, so a
trailing space in ``answer_prefix`` is visible), a line ``---``, then the body, a `str.format` text
with ``{prompt}`` and ``{response}`` (pointwise) or ``{prompt}``, ``{response_a}``, ``{response_b}``
(pairwise). Lines before the header starting with ``#`` are comments. Header keys:

- ``name``, ``version`` (an integer: bump it whenever the text changes, so cached results and saved
  judge configs say which prompt produced them);
- ``kind``: ``pointwise`` or ``pairwise``;
- ``answer_prefix``: text the judge's answer starts with (appended after the chat template's assistant
  turn), e.g. ``"Rating: "``, so the next token is the label;
- ``labels``: the answers read from the logits: ``"1"``..``"10"`` (their numbers are the rating values)
  or ``"A"``, ``"B"`` (the first and the second response shown).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

KINDS = ("pointwise", "pairwise")
FIELDS = {"pointwise": ("prompt", "response"), "pairwise": ("prompt", "response_a", "response_b")}
DEFAULT_TEMPLATES = {"pointwise": "pointwise-v1", "pairwise": "pairwise-v1"}
"""The shipped template each kind uses unless the judge config names another."""


@dataclass(frozen=True)
class Template:
    """One parsed template file; `text` is the whole file, recorded verbatim in the judge config."""

    name: str
    version: int
    kind: str
    answer_prefix: str
    labels: tuple[str, ...]
    body: str
    text: str
    source: str
    """Where it was read from: ``package:NAME`` for a shipped file, else the path."""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @property
    def values(self) -> tuple[float, ...]:
        """Pointwise: each label's rating value (the label read as a number)."""
        return tuple(float(label) for label in self.labels)

    def fill(self, **fields: str) -> str:
        """The body with its fields filled; other braces in the texts stay as they are."""
        missing = set(FIELDS[self.kind]) - set(fields)
        if missing:
            raise ValueError(f"template {self.source}: fields {sorted(missing)} not given")
        return self.body.format(**{k: fields[k] for k in FIELDS[self.kind]})

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["labels"] = list(self.labels)
        out["sha256"] = self.sha256
        return out


def parse_template(text: str, source: str = "<string>") -> Template:
    """Parse a template file's text; errors name `source` and the line."""
    head, sep, body = text.partition("\n---\n")
    if not sep:
        raise ValueError(f"{source}: no '---' line between the header and the body")
    header: dict[str, Any] = {}
    for i, line in enumerate(head.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, colon, value = line.partition(":")
        if not colon:
            raise ValueError(f"{source}:{i}: header lines are 'key: value', got {line!r}")
        value = value.strip()
        try:
            header[key.strip()] = json.loads(value) if value[:1] in '"[' else value
        except json.JSONDecodeError as e:
            raise ValueError(f"{source}:{i}: {key.strip()} is not valid JSON ({e})") from e
    missing = {"name", "version", "kind", "answer_prefix", "labels"} - set(header)
    if missing:
        raise ValueError(f"{source}: header lacks {', '.join(sorted(missing))}")
    kind = header["kind"]
    if kind not in KINDS:
        raise ValueError(f"{source}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    labels = tuple(str(x) for x in header["labels"])
    if kind == "pairwise" and len(labels) != 2:
        raise ValueError(f"{source}: a pairwise template has two labels (first, second), got {labels}")
    if kind == "pointwise":
        try:
            [float(x) for x in labels]
        except ValueError:
            raise ValueError(f"{source}: pointwise labels must be numbers, got {labels}") from None
    for name in FIELDS[kind]:
        if "{" + name + "}" not in body:
            raise ValueError(f"{source}: the body must contain {{{name}}} (kind {kind})")
    try:
        version = int(header["version"])
    except ValueError:
        raise ValueError(f"{source}: version must be an integer, got {header['version']!r}") from None
    return Template(
        name=str(header["name"]),
        version=version,
        kind=kind,
        answer_prefix=str(header["answer_prefix"]),
        labels=labels,
        body=body.rstrip("\n"),
        text=text,
        source=source,
    )


def shipped_templates() -> list[str]:
    """Names of the templates in the package (``pointwise-v1``, ...)."""
    folder = resources.files("rewardlab.judge") / "templates"
    return sorted(p.name[: -len(".txt")] for p in folder.iterdir() if p.name.endswith(".txt"))


def load_template(spec: str, kind: str | None = None) -> Template:
    """A shipped template by name (``pairwise-v1``) or a template file by path; `kind` checks its kind."""
    if spec in shipped_templates():
        text = (resources.files("rewardlab.judge") / "templates" / f"{spec}.txt").read_text("utf-8")
        template = parse_template(text, f"package:{spec}")
    elif Path(spec).is_file():
        template = parse_template(Path(spec).read_text("utf-8"), spec)
    else:
        shipped = ", ".join(shipped_templates())
        raise FileNotFoundError(f"judge template {spec!r}: neither a file nor a shipped template ({shipped})")
    if kind is not None and template.kind != kind:
        raise ValueError(f"judge template {spec!r} is {template.kind}, a {kind} template is needed here")
    return template
