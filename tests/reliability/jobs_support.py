"""Real Celery workers as subprocesses, for the job tests: started on the test database and
the test queue, and killed the way a machine kills them (SIGKILL, no clean-up)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis
from django.conf import settings
from django.db import connection

from config.celery import app
from tests.importers.conftest import acled_row, csv_bytes

ROOT = Path(__file__).resolve().parents[2]


def big_acled_file(rows: int, prefix: str, bad_every: int = 0) -> bytes:
    """An ACLED export; with `bad_every`, every n-th row has a date that is not a date."""
    return csv_bytes(
        [
            acled_row(
                event_id_cnty=f"{prefix}{i:06d}",
                event_date=(
                    "not a date"
                    if bad_every and i % bad_every == 0
                    else f"20{10 + i % 10}-0{1 + i % 9}-1{i % 10}"
                ),
                notes=f"Protest {i} against utility prices; police detained {i % 7} people.",
            )
            for i in range(rows)
        ]
    )


def database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgis://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Worker:
    """`celery worker --pool prefork --concurrency 1` on this test run's database and queue,
    in a session of its own (so that the whole worker can be killed at once)."""

    def __init__(self, log: Path, queues: str | None = None, **env: str):
        self.log = log
        self._log_file = log.open("ab")
        environment = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "CELERY_TASK_DEFAULT_QUEUE": self.queue,
            "DATABASE_CONN_MAX_AGE": "0",
            **env,
        }
        command = [str(Path(sys.executable).with_name("celery")), "-A", "config", "worker"]
        # Both queues unless told: the light tasks' and the job tasks' (settings).
        queues = queues or f"{self.queue},{settings.CELERY_JOBS_QUEUE}"
        command += ["--pool", "prefork", "--concurrency", "1", "--queues", queues]
        command += ["--loglevel", "INFO", "--without-gossip", "--without-mingle"]
        command += ["--without-heartbeat", "--hostname", f"jobs-{time.monotonic_ns()}@%h"]
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=environment,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_ready()

    @property
    def queue(self) -> str:
        return app.conf.task_default_queue

    def wait_ready(self, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the worker exited; see {self.log}:\n{self.log.read_text()}")
            if b"ready." in self.log.read_bytes() and self.pool_children():
                return
            time.sleep(0.2)
        raise RuntimeError(f"the worker did not start; see {self.log}")

    def pool_children(self) -> list[int]:
        """The pool processes: the ones that run tasks, children of the main process."""
        pid = self.process.pid
        try:
            return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except FileNotFoundError:
            return []

    def kill_pool_child(self) -> int:
        (child,) = self.pool_children()
        os.kill(child, signal.SIGKILL)
        return child

    def kill_all(self) -> None:
        """SIGKILL the main process and its pool at once: no warm shutdown, no requeue."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill_all()
        with contextlib.suppress(ProcessLookupError):  # a pool left by a killed main process
            os.killpg(self.process.pid, signal.SIGKILL)
        self._log_file.close()


def forget_unacked_messages(queue: str) -> int:
    """A worker killed with SIGKILL leaves its task in kombu's `unacked` hash in Redis, where
    a worker would restore it after the visibility timeout (an hour): drop this test queue's
    entries, so that no task of a finished test comes back later."""
    client = redis.Redis.from_url(app.conf.broker_url)
    dropped = 0
    try:
        for tag, payload in client.hgetall("unacked").items():
            _message, _exchange, routing_key = json.loads(payload)
            if routing_key in (queue, f"{queue}.jobs"):  # its light and job tasks
                client.zrem("unacked_index", tag)
                client.hdel("unacked", tag)
                dropped += 1
        client.delete(queue)
    finally:
        client.close()
    return dropped


def wait_for(predicate, seconds: float, step: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


class PrivateRedis:
    """A Redis server of the test's own on a free port: a broker that no other worker shares,
    so that a short visibility timeout restores nobody else's tasks."""

    def __init__(self, directory: Path):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(directory)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = redis.Redis.from_url(self.url)
        try:
            wait_for(lambda: _pings(client), 10, what="the private Redis")
        finally:
            client.close()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def _pings(client) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False
