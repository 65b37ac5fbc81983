"""launch.train_progress.TrainProgress: what each mode writes and when the next update is due."""
import io
import sys

from launch.train_progress import TrainProgress


def line():
    return 1234.0, 56.5, 78.0     # steps/s, recent return, act + learn p99 (µs)


def test_lines_mode_writes_one_line_per_every_steps_and_says_when_the_next_is_due():
    out = io.StringIO()
    progress = TrainProgress("lines", total=1000, start=0, every=300, stream=out)
    assert progress.next_step == 300
    for step in (300, 600, 900):
        progress.update(step, line)
        assert progress.next_step == step + 300
    progress.update(900, line)                   # the same step again: nothing new
    progress.close()
    assert out.getvalue().splitlines() == [
        f"  step {s}/1000: 1234 steps/s, recent return 56.50, act+learn p99 78 us" for s in (300, 600, 900)]


def test_auto_off_a_terminal_is_lines_every_tenth_of_the_run():
    progress = TrainProgress("auto", total=5000, start=1200, every=0, stream=io.StringIO())
    assert progress.mode == "lines" and progress.every == 500 and progress.next_step == 1500


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_bar_without_tqdm_is_a_live_line_at_most_every_half_second(monkeypatch):
    import types

    monkeypatch.setitem(sys.modules, "tqdm", None)
    clock = iter([0.0, 0.1, 0.7, 0.8])
    monkeypatch.setattr("launch.train_progress.time", types.SimpleNamespace(monotonic=lambda: next(clock)))
    out = Terminal()
    progress = TrainProgress("bar", total=1000, start=0, every=0, stream=out)   # time 0.0
    assert progress.mode == "bar" and progress.bar is None
    progress.update(256, line)                   # 0.1 s later: not yet
    assert out.getvalue() == "" and progress.next_step == 512
    progress.update(512, line)                   # 0.7 s: shown
    progress.update(768, line)                   # 0.8 s: 0.1 s after the last one
    progress.close()
    text = out.getvalue()
    assert text.count("\r") == 1 and "step        512/1,000" in text and text.endswith("\n")
    assert "1234 steps/s" in text and "act+learn p99      78 µs" in text


def test_none_writes_nothing_and_is_never_due():
    out = Terminal()
    progress = TrainProgress("none", total=100, start=0, every=10, stream=out)
    progress.update(10, line)
    progress.close()
    assert out.getvalue() == "" and progress.next_step == 101
