"""RichReporter writes plain progress lines when stderr is not a terminal (logs, CI, schedulers)."""

from __future__ import annotations

from rewardlab.progress import RichReporter, _PlainProgress


def test_plain_progress_lines_at_intervals_with_time_left():
    lines: list[str] = []
    now = [0.0]
    p = _PlainProgress("training", 10, every_s=30.0, emit=lambda text, **_: lines.append(text))
    p.clock = lambda: now[0]
    p.started = p.last = 0.0
    for step in range(1, 11):
        now[0] = step * 10.0  # 10 s per step: a line at steps 3, 6, 9 (every 30 s), then at finish
        p.advance(1, f"loss {1 / step:.2f}")
    p.finish()
    assert len(lines) == 4
    assert lines[0] == "training 3/10 (30%)  30s elapsed, ~1m10s left  loss 0.33"
    assert lines[-1].startswith("training 10/10 (100%)  1m40s elapsed, ~0s left")


def test_rich_reporter_falls_back_to_plain_lines_off_a_terminal(capsys):
    reporter = RichReporter(every_s=0.0)
    assert not reporter.console.is_terminal  # pytest captures stderr
    reporter.start("scoring", 2)
    reporter.advance(1, acc=0.5)
    reporter.advance(1)
    reporter.finish()
    err = capsys.readouterr().err
    assert "scoring 1/2 (50%)" in err and "acc 0.5" in err
    assert "scoring 2/2 (100%)" in err
