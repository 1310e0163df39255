"""The Celery application: queues, task names, routes and the beat schedule, declared in one place.

`celery -A pipeline.app worker -Q cin7,mapping,xero,maintenance` and `celery -A pipeline.app beat`.
"""

from __future__ import annotations

import contextlib
import enum
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from celery import Celery
from celery.contrib.testing.worker import start_worker
from celery.schedules import crontab
from celery.signals import after_setup_logger, after_setup_task_logger, task_postrun, task_prerun, worker_process_init
from kombu import pools as kombu_pools
from kombu.entity import Queue
from kombu.exceptions import ChannelError, KombuError
from redbeat import RedBeatScheduler  # type: ignore[import-untyped]
from redis.exceptions import LockNotOwnedError, RedisError

from pipeline import logs
from pipeline.db import reset_engines
from pipeline.settings import Settings, get_settings

log = logging.getLogger(__name__)


class QueueName(enum.StrEnum):
    """Named queues; worker command lines use these values."""

    CIN7 = "cin7"  # polls and sale detail reads: bounded by Cin7's 60 calls/minute
    MAPPING = "mapping"  # pure CPU + ledger: Cin7 snapshot -> Xero payload
    XERO = "xero"  # batched writes to Xero: bounded by Xero's per-tenant limits
    MAINTENANCE = "maintenance"  # sweeps of rows whose messages were lost, alerts
    RECONCILE = "reconcile"  # long paged reads of both sides: kept off the sync queues
    DEAD_LETTER = "dead_letter"  # never consumed: a mirror of the ledger's dead letters for Flower


# Seconds: every task's soft and hard time limits, and reconciliation's. Deployments give workers a
# stop grace period longer than the hard limit of what they run (deploy/, docker-compose.yml).
TASK_SOFT_TIME_LIMIT = 540
TASK_TIME_LIMIT = 600
RECONCILE_SOFT_TIME_LIMIT = 3240
RECONCILE_TIME_LIMIT = 3300

WORK_QUEUES = (QueueName.CIN7, QueueName.MAPPING, QueueName.XERO, QueueName.MAINTENANCE, QueueName.RECONCILE)


class TaskName(enum.StrEnum):
    """Explicit, stable task names (renaming a function must not orphan queued messages)."""

    POLL = "cin7xero.poll"
    FETCH_SALE = "cin7xero.fetch_sale"
    FETCH_SALES = "cin7xero.fetch_sales"
    FETCH_PURCHASE = "cin7xero.fetch_purchase"
    MAP_DOCUMENT = "cin7xero.map_document"
    WRITE_DOCUMENT = "cin7xero.write_document"
    SWEEP = "cin7xero.sweep"
    DEAD_LETTER = "cin7xero.dead_letter"
    FLUSH_ALERTS = "cin7xero.flush_alerts"
    WEBHOOK_EVENT = "cin7xero.webhook_event"
    RECONCILE = "cin7xero.reconcile"


#: The task that reads a parent document's detail, by the parent's kind (`ledger.models.ParentKind`).
FETCH_TASKS: dict[str, TaskName] = {"sale": TaskName.FETCH_SALE, "purchase": TaskName.FETCH_PURCHASE}


TASK_QUEUES: dict[TaskName, QueueName] = {
    TaskName.POLL: QueueName.CIN7,
    TaskName.FETCH_SALE: QueueName.CIN7,
    TaskName.FETCH_SALES: QueueName.CIN7,
    TaskName.FETCH_PURCHASE: QueueName.CIN7,
    TaskName.MAP_DOCUMENT: QueueName.MAPPING,
    TaskName.WRITE_DOCUMENT: QueueName.XERO,
    TaskName.SWEEP: QueueName.MAINTENANCE,
    TaskName.DEAD_LETTER: QueueName.DEAD_LETTER,
    TaskName.FLUSH_ALERTS: QueueName.MAINTENANCE,
    TaskName.WEBHOOK_EVENT: QueueName.CIN7,
    TaskName.RECONCILE: QueueName.RECONCILE,
}


class SteadyRedBeatScheduler(RedBeatScheduler):  # type: ignore[misc]
    """RedBeat that rides out Redis going away instead of ending the beat process.

    Redis restarted empty (or an evicted key) loses the lock and the schedule: RedBeat's tick then
    raises LockNotOwnedError and beat dies, and with it every poll and sweep. Here the schedule is
    written again and the lock taken again (waiting, as at start, if another beat took it meanwhile);
    while Redis cannot be reached at all, beat tries again every few seconds.
    """

    def tick(self, min: Any = min, **kwargs: Any) -> float:
        """One scheduling pass; a lost lock or an unreachable Redis is waited out, not fatal."""
        try:
            return float(super().tick(min=min, **kwargs))
        except LockNotOwnedError:
            log.warning("beat: its Redis lock is gone (Redis restarted empty?): rewriting the schedule, relocking")
            try:
                self.setup_schedule()
                self.lock.acquire()
            except RedisError as exc:
                log.warning("beat: Redis unavailable (%s); trying again shortly", exc)
            return 1.0
        except RedisError as exc:
            log.warning("beat: Redis unavailable (%s); trying again shortly", exc)
            return 2.0


def _beat_lock(settings: Settings) -> dict[str, Any]:
    """One beat, always: with a shared Redis, beat schedules through RedBeat, which holds a lock there.

    A second beat (started by mistake, or during a rollout) waits for the lock and schedules nothing
    until the first stops; if the first dies, its lock lapses after BEAT_LOCK_SECONDS and the waiting
    one takes over. Beat renews the lock each tick, so it ticks several times per lock period. Without
    Redis (the demo) there is one process and Celery's own scheduler.
    """
    if not settings.redis_url:
        return {}
    return {
        "beat_scheduler": "pipeline.app:SteadyRedBeatScheduler",
        "redbeat_redis_url": settings.redis_url,
        "redbeat_key_prefix": "cin7xero:redbeat:",
        "redbeat_lock_timeout": settings.beat_lock_seconds,
        "beat_max_loop_interval": max(0.5, settings.beat_lock_seconds / 6),
    }


def celery_config(settings: Settings) -> dict[str, Any]:
    """Everything Celery needs, derived from settings."""
    return {
        "broker_url": settings.celery_broker_url,
        "broker_connection_retry_on_startup": True,
        # Redis re-delivers unacked messages after this; longer than any task (long waits live in
        # the ledger as next_attempt_at, not as countdowns).
        "broker_transport_options": {
            "visibility_timeout": settings.broker_visibility_timeout_seconds,
            # The in-memory broker (demo) polls its queues; the default 1 s poll would dominate the run.
            **({"polling_interval": 0.01} if settings.celery_broker_url.startswith("memory") else {}),
        },
        # Only the work queues: a worker started without -Q consumes these, never the dead letters' mirror
        # (which the sweep declares itself, and which nothing may consume).
        "task_queues": [Queue(q.value, routing_key=q.value) for q in WORK_QUEUES],
        "task_default_queue": QueueName.MAPPING.value,
        "task_routes": {name.value: {"queue": queue.value} for name, queue in TASK_QUEUES.items()},
        # No result backend: outcomes are in the ledger, which is what anyone reads.
        "task_ignore_result": True,
        "result_backend": None,
        "task_serializer": "json",
        "accept_content": ["json"],
        "worker_prefetch_multiplier": 1,
        "task_acks_late": False,  # opted into per task, only where the task is idempotent
        "task_reject_on_worker_lost": True,
        # Worker hygiene. A task over its limit is stopped (state is in the ledger; a write cut off
        # mid-call is a lost answer, which the writer already looks up). Reconciliation reads whole
        # windows and gets longer, still under the broker's visibility timeout.
        "task_soft_time_limit": TASK_SOFT_TIME_LIMIT,
        "task_time_limit": TASK_TIME_LIMIT,
        "task_annotations": {
            TaskName.RECONCILE.value: {"soft_time_limit": RECONCILE_SOFT_TIME_LIMIT, "time_limit": RECONCILE_TIME_LIMIT}
        },
        # A child is replaced after this many tasks, or after a task that left it past this resident
        # size (KiB; the benchmark's peak is 140 MB): no slow leak grows a worker for weeks.
        "worker_max_tasks_per_child": 1000,
        "worker_max_memory_per_child": 200 * 1024,
        # SIGTERM is a warm shutdown: running tasks finish (deployments wait longer than the hard time
        # limit). A cold shutdown (SIGQUIT) still gives them this long before handing them back.
        "worker_soft_shutdown_timeout": 60.0,
        # Events on, so that Flower shows tasks as they run.
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "timezone": "UTC",
        "enable_utc": True,
        **_beat_lock(settings),
        "beat_schedule": {
            "poll-cin7": {
                "task": TaskName.POLL.value,
                "schedule": timedelta(seconds=settings.poll_interval_seconds),
                "args": (settings.tenant_key,),
                # A poll that waited longer than one interval is superseded by the next.
                "options": {"expires": settings.poll_interval_seconds},
            },
            "flush-alerts": {
                "task": TaskName.FLUSH_ALERTS.value,
                "schedule": timedelta(seconds=30),
                "args": (settings.tenant_key,),
                "options": {"expires": 30},
            },
            "reconcile": {
                "task": TaskName.RECONCILE.value,
                # 03:15 UTC daily, or Mondays for the weekly schedule.
                "schedule": crontab(
                    minute="15", hour="3", day_of_week="*" if settings.reconcile_schedule == "daily" else "mon"
                ),
                "args": (settings.tenant_key,),
                "options": {"expires": 3600},
            },
            "sweep-ledger": {
                "task": TaskName.SWEEP.value,
                "schedule": timedelta(seconds=settings.sweep_interval_seconds),
                "args": (settings.tenant_key,),
                "options": {"expires": settings.sweep_interval_seconds},
            },
        },
        "imports": ("tasks.sync", "tasks.alerts", "tasks.webhooks", "tasks.reconcile"),
    }


app = Celery("cin7xero")
app.conf.update(celery_config(get_settings()))


def reconfigure(settings: Settings) -> None:
    """Re-apply settings (the demo and tests change the environment after import).

    The producer pool is closed too: it holds connections to the previous broker.
    """
    # Celery has no public way to drop its broker connections; these are what its after-fork hook resets.
    pool = app._pool
    if pool is not None:
        pool.force_close_all()
    app._pool = None
    app.amqp._producer_pool = None
    # kombu keeps its own registry of pools by connection; a closed one must not be handed out again.
    kombu_pools.reset()
    app.conf.update(celery_config(settings))


@worker_process_init.connect
def _fresh_connections_after_fork(**_: Any) -> None:
    # A prefork child must not share the parent's database sockets.
    reset_engines()


@after_setup_logger.connect
@after_setup_task_logger.connect
def _log_format(logger: logging.Logger, **_: Any) -> None:
    # LOG_FORMAT=json: Celery's own handlers (stderr, or -f's file) write JSON lines.
    logs.use_format(logger, get_settings().log_format)


# Each running task's log context, by task id, until it ends.
_task_logs: dict[str, Any] = {}


@task_prerun.connect
def _bind_task(task_id: str, task: Any, args: tuple[Any, ...] = (), **_: Any) -> None:
    # Every task takes the tenant key first.
    tenant = args[0] if args and isinstance(args[0], str) else None
    _task_logs[task_id] = logs.bind(task_id=task_id, task_name=task.name, tenant=tenant)


@task_postrun.connect
def _unbind_task(task_id: str, **_: Any) -> None:
    token = _task_logs.pop(task_id, None)
    if token is not None:
        # Bound in another context (a thread pool's): it ends with that thread's context.
        with contextlib.suppress(ValueError):
            logs.unbind(token)


def send(task: TaskName, *args: Any, countdown: float | None = None) -> None:
    """Enqueue a task by name on its queue (callers commit the ledger first)."""
    app.send_task(task.value, args=args, queue=TASK_QUEUES[task].value, countdown=countdown)


# What a send raises when the broker is unreachable: callers that must answer quickly (the webhook
# receiver) record the work in the ledger and let the sweep send it later.
BROKER_ERRORS: tuple[type[BaseException], ...] = (KombuError, RedisError, OSError)
_FAST_SEND_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.05, "interval_max": 0.05}


def send_fast(task: TaskName, *args: Any) -> None:
    """Enqueue a task, failing fast (not after Celery's default retries) when the broker is down."""
    app.send_task(task.value, args=args, queue=TASK_QUEUES[task].value, retry=True, retry_policy=_FAST_SEND_RETRY)


def queue_backlog(queues: Iterable[QueueName]) -> dict[QueueName, int] | None:
    """Messages waiting in each queue (not counting those workers hold), or None when the broker cannot say."""
    try:
        with app.connection_for_write() as connection:
            channel = connection.default_channel
            depths: dict[QueueName, int] = {}
            for queue in queues:
                try:
                    depths[queue] = int(channel.queue_declare(queue=queue.value, passive=True).message_count)
                except ChannelError:
                    depths[queue] = 0  # never declared: nothing was ever sent to it
            return depths
    except BROKER_ERRORS as exc:
        log.warning("queue depths unavailable: %s", exc)
        return None


def broker_reachable(timeout: float) -> bool:
    """The broker accepts a connection within `timeout` (one attempt, no retries)."""
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=timeout)
        return True
    except BROKER_ERRORS as exc:
        log.warning("broker unreachable: %s", exc)
        return False


def queue_consumers(timeout: float) -> tuple[int, dict[str, int]]:
    """How many workers answered a broadcast within `timeout`, and how many consume each queue."""
    replies = app.control.inspect(timeout=timeout).active_queues() or {}
    counts = {queue.value: 0 for queue in QueueName}
    for queues in replies.values():
        for queue in queues or []:
            name = str(queue.get("name", ""))
            counts[name] = counts.get(name, 0) + 1
    return len(replies), counts


def worker_answers(name: str, timeout: float) -> bool:
    """The worker of this node name (`cin7@host`) answered a ping within `timeout`."""
    replies = app.control.ping(destination=[name], timeout=timeout) or []
    return any(name in reply for reply in replies)


@contextmanager
def embedded_worker(queues: tuple[QueueName, ...] = WORK_QUEUES, *, concurrency: int = 4) -> Iterator[None]:
    """A real Celery worker (thread pool) inside this process, consuming `queues`: the demo's worker."""
    app.conf.update(task_queues=None)
    with start_worker(
        app,
        pool="threads",
        concurrency=concurrency,
        perform_ping_check=False,
        queues=[q.value for q in queues],
        loglevel="WARNING",
        shutdown_timeout=30,
    ):
        yield
