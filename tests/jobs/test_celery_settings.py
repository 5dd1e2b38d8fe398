"""The Celery settings docs/SCALING.md's table of Celery's traps (and docs/robustness.md) rely
on, read from the apps the worker and the API build: no broker is needed to read them."""

from __future__ import annotations

from app.core.config import Settings
from app.jobs.celery_app import TRAIN_TASK, make_celery
from app.jobs.celery_app import app as worker_app
from app.jobs.celery_runner import BROKER_TIMEOUT_S

WEEK_S = 7 * 24 * 3600


def test_the_workers_celery_app_is_set_as_the_traps_table_says() -> None:
    conf = make_celery(Settings()).conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1  # one message per worker process
    assert conf.broker_transport_options["visibility_timeout"] == WEEK_S
    assert (conf.task_ignore_result, conf.result_backend) == (True, None)  # no result backend
    assert conf.worker_proc_alive_timeout == 600  # a slow pool process start is waited for
    task = worker_app.tasks[TRAIN_TASK]
    assert (task.acks_late, task.reject_on_worker_lost) == (True, True)


def test_the_api_publishes_with_a_3_second_socket_timeout_and_no_retry() -> None:
    # docs/robustness.md: "One publisher thread sends every message with a 3 s socket timeout".
    assert BROKER_TIMEOUT_S == 3
    conf = make_celery(Settings(), publish_timeout_s=BROKER_TIMEOUT_S).conf
    transport = conf.broker_transport_options
    assert (transport["socket_timeout"], transport["socket_connect_timeout"]) == (3, 3)
    assert transport["visibility_timeout"] == WEEK_S
    assert conf.broker_connection_timeout == 3
    assert (conf.task_publish_retry, conf.broker_connection_retry) == (False, False)
