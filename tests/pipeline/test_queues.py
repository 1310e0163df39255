"""Which queues a worker consumes: a worker started without -Q takes every work queue, and never the
dead letters' mirror (which Flower shows only while nothing consumes it).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from pipeline.app import WORK_QUEUES, QueueName, queue_backlog, queue_consumers
from pipeline.recovery.deadletters import mirror_dead_letter_queue
from tests.pipeline.conftest import Pipeline

pytestmark = pytest.mark.pipeline


def test_a_worker_without_q_consumes_the_work_queues_and_leaves_the_mirror_alone(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    p = make_pipeline(sales=30, seed=11, workers=1)
    p.poll_and_wait()
    p.workers.start("noq", concurrency=1, queues=None, pool="solo")
    with p.ctx.sessions() as session:
        letters = mirror_dead_letter_queue(session, p.ctx.tenant_pk)
    assert letters > 0, "the dataset leaves dead letters to mirror"

    deadline = time.monotonic() + 30
    while True:
        answered, consumers = queue_consumers(2.0)
        if answered >= 2 or time.monotonic() > deadline:
            break
    assert answered == 2, consumers
    # Both workers take every work queue they were given; none takes the mirror.
    assert all(consumers[queue.value] >= 1 for queue in WORK_QUEUES), consumers
    assert consumers[QueueName.RECONCILE.value] == 1  # only the worker without -Q
    assert consumers[QueueName.DEAD_LETTER.value] == 0
    time.sleep(2)
    depths = queue_backlog([QueueName.DEAD_LETTER])
    assert depths is not None and depths[QueueName.DEAD_LETTER] == letters
