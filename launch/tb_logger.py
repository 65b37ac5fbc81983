"""TensorBoard event files of a train run (``logger: tensorboard``): ``TensorBoardLogger``.

With ``logger: tensorboard`` the trainer also hands every metrics.jsonl record to
``TensorBoardLogger.write``, which writes scalars through tensorboardX's ``SummaryWriter`` into
``<run dir>/tensorboard/`` (x = the record's ``step``); metrics.jsonl and monitor.csv stay the run's
record (plot and resume read them), the event files are a view of them:

* ``episode`` records: ``episode/return``, ``episode/length`` and, in a changing-dynamics run,
  ``episode/segment``;
* ``periodic`` records: ``train/steps_per_s``, ``train/recent_return`` (when there is one),
  ``latency/{act,learn}_us_{p50,p99}``, ``learner/{updates,skipped,rollbacks}`` and every number of the
  ``health`` dict (``launch.learner_health``) as ``health/<key>/<key>...``, list entries by position
  (its ``[dense, cell]`` pairs: ``/0`` dense, ``/1`` cell);
* other kinds are not written; a ``checkpoint`` record flushes the events to the file.

Non-finite numbers are left out. Each session of the run (start, each resume) writes its own event
file; a resumed session passes ``purge_step`` so that TensorBoard hides what the interrupted session
wrote after the checkpoint, as ``launch.results.truncate_after`` does for metrics.jsonl.

tensorboardX is imported only here, when a logger is made (``pip install 'rtu-control[tensorboard]'``).
"""
import math
import sys
from pathlib import Path

from launch.train_config import TrainError

TB_DIR = "tensorboard"   # under the run's folder
FLUSH_SECS = 10          # tensorboardX's writer thread flushes this often on its own
INSTALL = "pip install 'rtu-control[tensorboard]'"

_PERIODIC = (("train/steps_per_s", ("steps_per_s",)), ("train/recent_return", ("recent_return",)),
             ("latency/act_us_p50", ("act_us", "p50")), ("latency/act_us_p99", ("act_us", "p99")),
             ("latency/learn_us_p50", ("learn_us", "p50")), ("latency/learn_us_p99", ("learn_us", "p99")),
             ("learner/updates", ("updates",)), ("learner/skipped", ("skipped",)),
             ("learner/rollbacks", ("rollbacks",)))


def summary_writer_class(key="logger"):
    """tensorboardX's ``SummaryWriter``; TrainError naming ``key`` when tensorboardX is missing."""
    block = "torch" not in sys.modules
    if block:   # tensorboardX imports torch when it can (1-2 s, ~200 MB); scalars need none of it
        sys.modules["torch"] = None
    try:
        from tensorboardX import SummaryWriter
    except ImportError as err:
        raise TrainError(f"{key}: tensorboard needs tensorboardX, which cannot be imported ({err}); "
                         f"{INSTALL}, or use {key}: files") from None
    finally:
        if block:
            del sys.modules["torch"]
    return SummaryWriter


def check_logger(logger):
    """TrainError now, before any file is written, when ``logger`` cannot be made."""
    if logger == "tensorboard":
        summary_writer_class()


def _numbers(tag, value):
    """(tag, float) pairs of the finite numbers in a nested dict / list, tags joined with "/"."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            yield tag, float(value)
        return
    for key, v in items:
        yield from _numbers(f"{tag}/{key}", v)


def _get(record, path):
    for key in path:
        if not isinstance(record, dict):
            return None
        record = record.get(key)
    return record


class TensorBoardLogger:
    """``TensorBoardLogger(log_dir, purge_step=None)``: a new event file in ``log_dir`` (created when
    missing); ``write(record)`` adds a metrics record's scalars, ``close()`` flushes and closes.
    ``purge_step``: TensorBoard hides the events of earlier files at this step and after."""

    def __init__(self, log_dir, purge_step=None):
        writer_cls = summary_writer_class()
        log_dir = Path(log_dir)
        # a file per session, numbered: two sessions within one second would share tensorboardX's name
        session = len(list(log_dir.glob("events.out.tfevents.*"))) if log_dir.is_dir() else 0
        self.writer = writer_cls(str(log_dir), purge_step=purge_step, flush_secs=FLUSH_SECS,
                                 filename_suffix=f".{session:04d}")

    def write(self, record):
        """The scalars of one metrics.jsonl record (episode and periodic kinds) at its step."""
        kind, step = record.get("kind"), record.get("step")
        if kind == "episode":
            pairs = [("episode/return", record.get("return")), ("episode/length", record.get("length")),
                     ("episode/segment", record.get("segment"))]
        elif kind == "periodic":
            pairs = [(tag, _get(record, path)) for tag, path in _PERIODIC]
            pairs += _numbers("health", record.get("health") or {})
        elif kind == "checkpoint":   # the events up to the checkpoint reach the file with it
            self.writer.flush()
            return
        else:
            return
        for name, value in pairs:
            for tag, number in _numbers(name, value):
                self.writer.add_scalar(tag, number, step)

    def close(self):
        """Flush the pending events and close the file."""
        self.writer.close()
