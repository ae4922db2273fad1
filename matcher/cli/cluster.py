"""`matcher cluster`: the scale-out topology on one machine, as `docker-compose.yml` describes it for real ones.

N API replicas (`matcher serve` on consecutive ports, each with a data dir of its own for its indexes, all on one
store and one shared index-snapshot directory) and M task workers (`matcher worker`) on one broker. The store
is migrated and the default encoder built once, before anything starts, so replicas never race for either.
Every child's output is prefixed with its name; a child that dies is started again (after 1, 2, 4 ... s, up to
30 s); Ctrl-C or SIGTERM stops them all. `make cluster` runs it on the machine's PostgreSQL and RabbitMQ."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import typer

from matcher.cli.errors import CliError


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    proc: subprocess.Popen[str] | None = None
    restarts: int = 0
    next_start: float = 0.0
    started: float = 0.0
    pump: threading.Thread | None = field(default=None, repr=False)

    def start(self) -> None:
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            self.argv,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,  # a Ctrl-C reaches the supervisor, which stops the children in order
        )
        self.pump = threading.Thread(target=self._pump, args=(self.proc,), daemon=True)
        self.pump.start()

    def _pump(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(f"[{self.name}] {line}")
            sys.stdout.flush()

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def plan(
    *,
    replicas: int,
    workers: int,
    host: str,
    base_port: int,
    data_root: Path,
    database_url: str,
    broker_url: str | None,
) -> list[Child]:
    """The children to run: their names, commands and environments."""
    me = [sys.executable, "-m", "matcher.cli.main"]
    common = dict(os.environ, MATCHER_DATABASE_URL=database_url)
    common["MATCHER_SNAPSHOT_DIR"] = str(data_root / "snapshots")
    if broker_url:
        common["MATCHER_BROKER_URL"] = broker_url
    children = [
        Child(
            f"api-{i + 1}",
            [*me, "serve", "--host", host, "--port", str(base_port + i)],
            dict(common, MATCHER_DATA_DIR=str(data_root / f"api-{i + 1}")),
        )
        for i in range(replicas)
    ]
    children += [
        Child(
            f"worker-{i + 1}",
            [*me, "worker", "--concurrency", "1", "--hostname", f"worker-{i + 1}@%h"],
            dict(common, MATCHER_DATA_DIR=str(data_root / f"worker-{i + 1}")),
        )
        for i in range(workers)
    ]
    return children


def _prepare(database_url: str) -> None:
    """Migrate the store and build the default encoder once, before the replicas start."""
    from matcher.cli.models import ensure_shipped_encoder
    from matcher.settings import Settings
    from matcher.store.db import make_engine
    from matcher.store.schema import migrate

    settings = Settings(database_url=database_url)
    engine = make_engine(settings)
    try:
        before, after = migrate(engine)
    finally:
        engine.dispose()
    typer.echo(
        f"[cluster] store at schema revision {after}" + ("" if before == after else f" (was {before})")
    )
    if settings.encoder == "default":
        ensure_shipped_encoder(settings, show_progress=False)


def supervise(children: list[Child], *, stop: threading.Event, max_backoff: float = 30.0) -> None:
    """Start every child and start again any that exits, until `stop` is set; then stop them all."""
    for child in children:
        child.start()
    try:
        while not stop.wait(0.5):
            now = time.monotonic()
            for child in children:
                if child.proc is not None and child.proc.poll() is None:
                    continue
                if child.proc is not None and child.next_start == 0.0:
                    if now - child.started > 60:  # it had been running a while: start the backoff over
                        child.restarts = 0
                    delay = min(max_backoff, 2.0**child.restarts)
                    typer.echo(
                        f"[cluster] {child.name} exited with {child.proc.returncode}; restarting in {delay:.0f}s"
                    )
                    child.next_start = now + delay
                if now >= child.next_start:
                    child.restarts += 1
                    child.next_start = 0.0
                    child.start()
    finally:
        for child in reversed(children):  # workers first, then the replicas
            child.stop()


def register(app: typer.Typer) -> None:
    @app.command()
    def cluster(
        replicas: int = typer.Option(2, min=1, max=16, help="API replicas"),
        workers: int = typer.Option(2, min=0, max=16, help="task workers (need a broker)"),
        host: str = typer.Option("127.0.0.1", help="interface the replicas bind"),
        base_port: int = typer.Option(
            8001, min=1, max=65000, help="first replica's port; the next get +1, +2 ..."
        ),
        data_root: Path = typer.Option(
            None, help="where each process's data dir goes (default: <data dir>/cluster)"
        ),
        database_url: str = typer.Option(None, help="the one store all share (default MATCHER_DATABASE_URL)"),
        broker_url: str = typer.Option(None, help="the task broker (default MATCHER_BROKER_URL)"),
    ) -> None:
        """Run replicas and workers on one store and one broker, on this machine; Ctrl-C stops them all."""
        from matcher.settings import Settings

        settings = Settings()
        database_url = database_url or settings.database_url
        if not database_url:
            raise CliError(
                "a cluster shares one store: set MATCHER_DATABASE_URL or pass --database-url (PostgreSQL)"
            )
        broker_url = broker_url or getattr(settings, "broker_url", None)
        if workers and not broker_url:
            raise CliError(
                "workers need a broker: set MATCHER_BROKER_URL or pass --broker-url (or --workers 0)"
            )
        data_root = data_root or settings.data_dir / "cluster"
        _prepare(database_url)
        children = plan(
            replicas=replicas,
            workers=workers,
            host=host,
            base_port=base_port,
            data_root=data_root,
            database_url=database_url,
            broker_url=broker_url,
        )
        for child in children:
            where = f" http://{host}:{child.argv[-1]}" if child.name.startswith("api-") else ""
            typer.echo(f"[cluster] {child.name}:{where} data dir {child.env['MATCHER_DATA_DIR']}")
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        supervise(children, stop=stop)
        typer.echo("[cluster] stopped")
