"""A tiny page model for reports: headings, paragraphs, tables, figures and red flags, built once and
rendered to markdown (figures as image links) and to one self-contained HTML page (figures embedded as
base64 PNG, CSS inline, nothing fetched), so the two renderings cannot drift apart. `figure` and `png`
make the figures (matplotlib, from the `[plot]` extra, imported only when a figure is drawn).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class Bad(str):
    """A table cell or line shown in red (a finding that needs attention)."""


@dataclass
class Doc:
    blocks: list[tuple] = field(default_factory=list)

    def h(self, level: int, text: str) -> None:
        self.blocks.append(("h", level, text))

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def flag(self, text: str) -> None:
        self.blocks.append(("flag", text))

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        self.blocks.append(("table", list(headers), [list(r) for r in rows]))

    def figure(self, name: str, png: bytes, alt: str) -> None:
        self.blocks.append(("img", name, png, alt))

    def fold(self, summary: str) -> None:
        """Start a collapsed section (HTML <details>, which GitHub markdown renders too); `unfold` ends it."""
        self.blocks.append(("fold", summary))

    def unfold(self) -> None:
        self.blocks.append(("unfold",))


def _md_cell(x: str) -> str:
    text = x.replace("|", "\\|").replace("\n", " ")
    return f"**⚠ {text}**" if isinstance(x, Bad) else text


def to_markdown(doc: Doc, image_dir: str = "img") -> str:
    out = []
    for block in doc.blocks:
        kind = block[0]
        if kind == "h":
            out.append("#" * block[1] + " " + block[2])
        elif kind == "p":
            out.append(block[1])
        elif kind == "flag":
            out.append(f"> **⚠ {block[1]}**")
        elif kind == "table":
            headers, rows = block[1], block[2]
            out.append("| " + " | ".join(_md_cell(h) for h in headers) + " |")
            out.append("|" + "---|" * len(headers))
            out += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows]
        elif kind == "img":
            out.append(f"![{block[3]}]({image_dir}/{block[1]}.png)")
        elif kind == "fold":
            out.append(f"<details><summary>{html.escape(block[1])}</summary>")
        elif kind == "unfold":
            out.append("</details>")
    return "\n\n".join(out).replace("|\n\n|", "|\n|") + "\n"


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.9em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3} td.bad{color:#b00000;font-weight:bold;background:#fde8e8}
.flag{border-left:5px solid #d62728;background:#fde8e8;color:#8b0000;padding:.5em .8em;margin:.5em 0}
img{max-width:100%;border:1px solid #eee} code{background:#f3f3f3;padding:0 .2em}
h2{border-bottom:2px solid #eee;padding-bottom:.2em;margin-top:1.6em}
summary{cursor:pointer;font-weight:600;margin:.4em 0}
"""


def _inline(text: str) -> str:
    """Escape, then turn `code` spans into <code>."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def to_html(doc: Doc, title: str = "Reward-model diagnosis") -> str:
    body = []
    for block in doc.blocks:
        kind = block[0]
        if kind == "h":
            body.append(f"<h{block[1]}>{_inline(block[2])}</h{block[1]}>")
        elif kind == "p":
            body.append(f"<p>{_inline(block[1])}</p>")
        elif kind == "flag":
            body.append(f'<div class="flag">⚠ {_inline(block[1])}</div>')
        elif kind == "table":
            head = "".join(f"<th>{_inline(h)}</th>" for h in block[1])
            rows = "".join(
                "<tr>"
                + "".join(
                    f'<td class="bad">{_inline(c)}</td>' if isinstance(c, Bad) else f"<td>{_inline(c)}</td>"
                    for c in r
                )
                + "</tr>"
                for r in block[2]
            )
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif kind == "img":
            data = base64.b64encode(block[2]).decode("ascii")
            body.append(f'<p><img alt="{html.escape(block[3])}" src="data:image/png;base64,{data}"></p>')
        elif kind == "fold":
            body.append(f"<details><summary>{_inline(block[1])}</summary>")
        elif kind == "unfold":
            body.append("</details>")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def find_chromium() -> str | None:
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def screenshot_html(
    html_path: str | Path, png_path: str | Path, width: int = 1100, height: int = 2000, scale: float = 1.0
) -> Path:
    """Render a page in headless Chromium and save the top `width` x `height` pixels as PNG (shrunk by
    `scale` and reduced to 256 colours when scale < 1, for docs). Proves the page renders; needs
    Debian's `chromium` (apt-get install chromium)."""
    import subprocess
    import tempfile

    browser = find_chromium()
    if browser is None:
        raise FileNotFoundError(
            "no chromium on PATH: install it (apt-get install chromium) to take screenshots"
        )
    png_path = Path(png_path)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp, "shot.png")
        cmd = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={tmp}/profile",
            f"--window-size={width},{height}",
            f"--screenshot={raw}",
            Path(html_path).resolve().as_uri(),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if not raw.exists():
            raise RuntimeError(f"chromium wrote no screenshot (exit {done.returncode}): {done.stderr[-500:]}")
        if scale < 1.0:
            from PIL import Image

            with Image.open(raw) as im:
                small = im.convert("RGB").resize((int(width * scale), int(height * scale)), Image.LANCZOS)
                small.quantize(colors=256).save(png_path, optimize=True)
        else:
            png_path.write_bytes(raw.read_bytes())
    return png_path


def figure(ncols: int = 1, width: float = 5.0, height: float = 3.6) -> tuple[Any, Any]:
    """A matplotlib figure with `ncols` axes side by side (Agg backend: no display needed)."""
    try:
        import matplotlib
    except ImportError as e:
        raise ImportError("report figures need matplotlib: pip install 'rewardlab[plot]'") from e
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False)
    return fig, axes[0]


def png(fig: Any) -> bytes:
    """The figure as PNG bytes (tight layout, 90 dpi); the figure is closed."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()
