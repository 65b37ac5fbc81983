"""The progress display of `rtu-control train`: steps/s, the recent return and the act + learn p99."""
import sys
import time


class TrainProgress:
    """Progress of a run towards ``total`` steps from ``start``, on ``stream`` (stdout): mode "bar" is
    tqdm when installed, else a live line; "lines" a short line every ``every`` steps (0: total / 10);
    "auto" is "bar" on a terminal, "lines" otherwise; "none" shows nothing. The caller calls ``update``
    once its step reaches ``next_step``, and ``close`` at the end."""

    def __init__(self, mode, total, start, every, stream=None):
        self.stream = stream or sys.stdout
        tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.bar = None
        if mode == "auto":
            mode = "bar" if tty else "lines"
        if mode == "bar":
            try:
                from tqdm import tqdm
                self.bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True,
                                file=self.stream)
            except ImportError:
                mode = "bar" if tty else "lines"
        self.mode = mode
        self.tty = tty
        self.every = every if every > 0 else max(total // 10, 1)
        self.last_step = start
        self.last_time = time.monotonic()
        self.total = total
        self.next_step = start + 256
        if self.mode == "lines":
            self.next_step = (start // self.every + 1) * self.every

    def update(self, step, line_fn):
        """Show ``step`` when due (every 0.5 s live, every ``every`` steps as lines) and set
        ``next_step``, the step of the next call; line_fn() -> (steps_per_s, recent_return, p99_us)."""
        if self.mode == "none":
            self.next_step = self.total + 1
            return
        now = time.monotonic()
        if self.mode == "lines":
            self.next_step = (step // self.every + 1) * self.every
            due = step > self.last_step
        else:
            self.next_step = step + 256
            due = now - self.last_time >= 0.5
        if not due:
            return
        sps, ret, p99 = line_fn()
        if self.bar is not None:
            self.bar.update(step - self.last_step)
            self.bar.set_postfix_str(f"return {ret:.1f}  p99 {p99:.0f} µs", refresh=False)
        elif self.mode == "bar":  # a plain live line on a terminal
            self.stream.write(f"\r  step {step:>10,}/{self.total:,}  {sps:8.0f} steps/s  "
                              f"return {ret:10.2f}  act+learn p99 {p99:7.0f} µs ")
            self.stream.flush()
        else:
            self.stream.write(f"  step {step}/{self.total}: {sps:.0f} steps/s, recent return {ret:.2f}, "
                              f"act+learn p99 {p99:.0f} us\n")
            self.stream.flush()
        self.last_step, self.last_time = step, now

    def close(self):
        if self.bar is not None:
            self.bar.close()
        elif self.mode == "bar":
            self.stream.write("\n")
            self.stream.flush()
