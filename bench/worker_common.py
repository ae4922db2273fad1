"""Shared pieces of the task-worker benchmarks: a PostgreSQL schema of their own, a counting SMTP sink, and
`matcher worker` subprocesses (each its own process group, so kill -9 takes the pool child with it)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool

ROOT = Path(__file__).resolve().parents[1]


def bench_schema(database_url: str) -> tuple[str, callable]:
    """A new PostgreSQL schema and a URL on it; the callable drops it."""
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(database_url, poolclass=NullPool)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(database_url).update_query_dict({"options": f"-csearch_path={schema}"})

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()

    return url.render_as_string(hide_password=False), drop


class Sink:
    """An SMTP server on loopback that counts each recipient's messages (aiosmtpd)."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.received: Counter[str] = Counter()
        self.lock = threading.Lock()
        outer = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802
                with outer.lock:
                    for rcpt in envelope.rcpt_tos:
                        outer.received[rcpt.lower()] += 1
                return "250 OK"

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def reset(self) -> None:
        with self.lock:
            self.received.clear()

    def duplicates(self) -> int:
        with self.lock:
            return sum(n - 1 for n in self.received.values() if n > 1)

    def stop(self) -> None:
        self.controller.stop()


class Worker:
    def __init__(self, name: str, env: dict[str, str], queue: str, data_dir: Path) -> None:
        self.name, self.queue = name, queue
        self.own_queue = f"{queue}-{name}"  # warm-up tasks for this worker alone
        self.queues = f"{queue},{self.own_queue}"
        self.env = dict(env, MATCHER_DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT))
        self.proc: subprocess.Popen | None = None
        self.peak_rss = 0
        self.log = data_dir.with_suffix(".log")
        self._stop = threading.Event()
        self.exits: list[int] = []  # exit codes of deaths nobody asked for

    def start(self) -> None:
        self.start_process()
        self._stop = threading.Event()  # a watcher of its own for this start
        threading.Thread(target=self._watch, args=(self._stop,), daemon=True).start()

    def start_process(self) -> None:
        handle = open(self.log, "a")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "matcher.cli.main",
                "worker",
                "--concurrency",
                "1",
                "--queues",
                self.queues,
                "--hostname",  # a node name of its own: two workers named alike fight over their control queue
                f"{self.name}-{uuid.uuid4().hex[:4]}@%h",
            ],
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=ROOT,
        )

    def _watch(self, stop: threading.Event) -> None:
        import psutil

        while not stop.wait(0.5):
            if self.proc.poll() is not None:  # died on its own (not killed here): start it again, counted
                self.exits.append(self.proc.returncode)
                self.start_process()
                continue
            try:
                main = psutil.Process(self.proc.pid)
                procs = [main, *main.children(recursive=True)]
                rss = max(p.memory_info().rss for p in procs)  # the pool child holds the work
                self.peak_rss = max(self.peak_rss, rss)
            except (psutil.Error, AttributeError):
                pass

    def warm(self, settings, db, source: str, period: str) -> str:
        """Queue an empty digest chunk for this worker alone: it loads its match engine (the job's id)."""
        from matcher.jobs.enqueue import enqueue

        job = enqueue(
            settings,
            db,
            kind="digest",
            tenant="park",
            task="parkmatch.digest_chunk",
            args=[period, [], source, "smtp"],
            queue=self.own_queue,
        )
        return job.id

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log.exists() and "worker ready:" in self.log.read_text(errors="replace"):
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.2)
        tail = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
        raise RuntimeError(f"{self.name} not ready in {timeout}s: {tail}")

    def kill9(self) -> None:
        self._stop.set()  # first, so the watcher does not take the kill for a death and restart it
        time.sleep(0.6)
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        self._stop.set()
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
