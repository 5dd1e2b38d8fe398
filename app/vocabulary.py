"""Every name the service knows, and the limits and colours shared across layers, each
defined once.

The ORM columns, the request and response schemas, the CLI's choices and the training engine
all take these enums, so adding an optimizer touches one list here (and its arithmetic in
`app/ml/`), and mypy catches a misspelt status. The dashboard's pages get the statuses and the
colours from here too, in the JSON each page carries (`app/api/routes/pages.py`). This module
imports nothing of the project: every layer, `app/ml/` included, may use it.
"""

from __future__ import annotations

from enum import StrEnum


class Architecture(StrEnum):
    SIMPLE = "simple"  # the tutorial's linear model
    COMPLEX = "complex"  # the tutorial's 2-128-128-1 ReLU network
    MLP = "mlp"  # a network the user shapes


class Activation(StrEnum):
    RELU = "relu"
    TANH = "tanh"
    SIGMOID = "sigmoid"
    GELU = "gelu"
    NONE = "none"


class Optimizer(StrEnum):
    ADAM = "adam"  # the tutorial's
    SGD = "sgd"
    RMSPROP = "rmsprop"


class LossFunction(StrEnum):
    BCE = "bce"  # binary cross-entropy, the tutorial's
    MSE = "mse"  # squared error of the sigmoid output


class Verdict(StrEnum):
    """What a run's history says about how it learned (app/ml/verdicts.py)."""

    LEARNED = "learned"
    UNDERFIT = "underfit"  # the loss stays high: the model is too weak for the data
    STUCK = "stuck"  # the loss stays at the constant prediction's: nothing was learned
    DIVERGED = "diverged"  # the loss stopped being a number
    OVERFIT = "overfit"  # validation loss rises while training loss falls


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def ended(self) -> bool:
        return self in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


class DatasetSource(StrEnum):
    BUILTIN = "builtin"  # the tutorial's CSV files, registered at start
    UPLOAD = "upload"
    GENERATED = "generated"


class PointsRule(StrEnum):
    """The rules generated datasets follow (`app/ml/datagen.py`); the first three are the
    tutorial's files'."""

    LINEAR = "linear"
    CURVE = "curve"
    RANDOM = "random"
    CIRCLE = "circle"
    XOR = "xor"
    GAUSS = "gauss"
    SPIRAL = "spiral"
    MOONS = "moons"


class TrainOutcome(StrEnum):
    """How the engine's `train()` ended."""

    COMPLETED = "completed"
    STOPPED = "stopped"  # a callback or the stop check said stop
    DIVERGED = "diverged"  # a loss was not finite


class StopReason(StrEnum):
    """Why a worker stopped a run before its last epoch."""

    CANCELLED = "cancelled"  # a user asked
    LOST = "lost"  # the run's row changed hands or was deleted
    RELEASED = "released"  # the worker is shutting down: the run goes back to the queue


class FailureReason(StrEnum):
    """Why a run failed, as its row records it (and /metrics counts it)."""

    DEVICE = "device"  # the device it asked for is not on its worker
    CHECKPOINT = "checkpoint"  # its checkpoint could not be loaded to resume it
    STORE_FULL = "store_full"  # PC_MAX_STORE_BYTES left no room for its checkpoints
    DIVERGED = "diverged"  # its loss became NaN or infinite
    ERROR = "error"  # an exception while training
    WORKER_LOST = "worker_lost"  # its worker stopped more times than PC_MAX_RESTARTS


class RunnerKind(StrEnum):
    """What trains the queued runs (PC_RUNNER)."""

    EMBEDDED = "embedded"  # worker processes the API process starts, on its machine
    CELERY = "celery"  # `python -m app worker` processes, on any machine, through a broker


class Queue(StrEnum):
    """The Celery queues: a run goes to the one its device names (`auto`: PC_DEFAULT_QUEUE)."""

    CPU = "cpu"
    CUDA = "cuda"


def sql_values(enum: type[StrEnum]) -> str:
    """The enum's values as an SQL list, for a check constraint: `('a', 'b')`."""
    return "(" + ", ".join(f"'{member.value}'" for member in enum) + ")"


# Ids, seeds and epochs are 32-bit signed integers in the database and in requests.
MAX_ID = 2**31 - 1
# How often a training run reports its losses (and is asked whether to stop), in seconds.
REPORT_INTERVAL_S = 0.25
# How long an SQLite writer waits for the lock before it gives up, in milliseconds.
SQLITE_BUSY_TIMEOUT_MS = 30_000

# The tutorial's loop, the defaults of a run everywhere (API, CLI, engine): `for epoch in
# range(20001)` with Adam at lr 0.003, printing `Epoch n, Loss: ...` every 1000 epochs.
TUTORIAL_EPOCHS = 20001
TUTORIAL_LEARNING_RATE = 0.003
TUTORIAL_LOG_EVERY = 1000
# Epochs between two checkpoints unless a run asks otherwise (and always at 0 and at the end).
DEFAULT_CHECKPOINT_EVERY = 1000
# Most points one dataset holds unless PC_MAX_POINTS says otherwise. A generated dataset's `n`
# goes no further whatever PC_MAX_POINTS says: its points are drawn while the request waits.
DEFAULT_MAX_POINTS = 100_000

# The two labels' colours wherever points are drawn (the PNG pictures and the pages): the
# tutorial's dump_points red and blue, as ColorBrewer's RdBu ends, which colour-blind readers
# tell apart (shapes differ as well: label 0 circles, label 1 squares).
LABEL_COLOURS = ("#c0392b", "#1f5fa8")
# The probability field's ramp: light tints of the two labels' colours at P = 0 and P = 1,
# white at 0.5.
FIELD_RAMP = ("#f2a7a0", "#ffffff", "#9cc0ea")
