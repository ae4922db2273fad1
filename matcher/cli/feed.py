"""`matcher feed status|prune|verify`: the change feed seen from the store, and the replicas that follow it.

Replicas are named by their base URL (`--replica http://127.0.0.1:8001`, repeatable). `status` and `prune` read
where each stands from its `/readyz` (no key); `verify` reads each one's index digest (`GET
/v1/admin/index/digest`, an admin key: `--key` or MATCHER_API_KEY). `prune` never deletes an entry that a named
replica has not applied, and always keeps the newest `--keep` entries (at least one)."""

from __future__ import annotations

import json
import time

import typer

from matcher.cli.errors import CliError
from matcher.settings import Settings

feed_app = typer.Typer(help="the change feed: where it stands, pruning it, checking replicas against the store",
                       no_args_is_help=True)  # fmt: skip

_REPLICA = typer.Option(None, "--replica", help="a replica's base URL (repeatable)")


def _engine():
    from matcher.store.db import make_engine

    return make_engine(Settings())


def _applied(url: str, timeout: float = 10.0) -> int:
    """The seq a replica has applied, from its /readyz (answered with 503 too while it is behind)."""
    import httpx

    try:
        r = httpx.get(url.rstrip("/") + "/readyz", timeout=timeout)
        feed = r.json().get("feed")
    except (httpx.HTTPError, ValueError) as exc:
        raise CliError(f"replica {url} did not answer /readyz: {exc}") from exc
    if not feed or "applied_seq" not in feed:
        raise CliError(f"replica {url} does not say its applied seq (indexes still loading?)")
    return int(feed["applied_seq"])


@feed_app.command("status")
def status(
    replica: list[str] | None = _REPLICA,
    as_json: bool = typer.Option(False, "--json", help="one JSON object"),
) -> None:
    """The log's head and oldest seq and how many entries it holds; each named replica's applied seq and lag."""
    from matcher.store import feed

    db = _engine()
    try:
        held = feed.bounds(db)
        entries = feed.count(db)
    finally:
        db.dispose()
    replicas = []
    for url in replica or []:
        try:
            applied = _applied(url)
            replicas.append({"url": url, "applied_seq": applied, "lag_entries": max(0, held.head - applied)})
        except CliError as exc:
            replicas.append({"url": url, "applied_seq": None, "error": str(exc)})
    out = {
        "head_seq": held.head,
        "oldest_seq": held.first,
        "entries": entries,
        "head_at": held.head_at.isoformat() if held.head_at else None,
        "replicas": replicas,
    }
    if as_json:
        typer.echo(json.dumps(out, ensure_ascii=False))
        return
    if entries:
        typer.echo(f"change feed: seq {held.first} to {held.head}, {entries} entries")
    else:
        typer.echo("change feed: empty")
    for r in replicas:
        if r["applied_seq"] is None:
            typer.echo(f"  {r['url']}: unknown ({r['error']})")
        else:
            typer.echo(f"  {r['url']}: applied seq {r['applied_seq']}, {r['lag_entries']} behind")


@feed_app.command("prune")
def prune(
    keep: int = typer.Option(..., "--keep", min=1, help="keep the newest N entries (at least 1)"),
    replica: list[str] | None = _REPLICA,
    as_json: bool = typer.Option(False, "--json", help="one JSON object"),
) -> None:
    """Delete the entries older than the newest N, and none that a named replica has not applied yet."""
    from matcher.store import feed

    applied = {url: _applied(url) for url in replica or []}  # an unreachable replica stops the prune
    floor = min(applied.values()) if applied else None
    db = _engine()
    try:
        done = feed.prune(db, keep, floor=floor)
    finally:
        db.dispose()
    out = {
        "deleted": done.deleted,
        "through_seq": done.through,
        "oldest_seq": done.first,
        "head_seq": done.head,
        "replica_floor": floor,
    }
    if as_json:
        typer.echo(json.dumps(out, ensure_ascii=False))
        return
    held_by = f" (the lowest applied seq of the named replicas is {floor})" if floor is not None else ""
    if done.deleted:
        typer.echo(
            f"deleted {done.deleted} entries up to seq {done.through}; the log holds seq {done.first} to "
            f"{done.head}{held_by}"
        )
    else:
        typer.echo(f"deleted nothing; the log holds seq {done.first} to {done.head}{held_by}")


@feed_app.command("verify")
def verify(
    replica: list[str] = typer.Option(..., "--replica", help="a replica's base URL (repeatable)"),
    key: str = typer.Option(..., "--key", envvar="MATCHER_API_KEY", help="an admin API key"),
    attempts: int = typer.Option(3, "--attempts", min=1, help="reads while the store is being written"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object"),
) -> None:
    """Compare each replica's indexes with the store's records (counts and (id, stamp) checksums per kind);
    one line per difference and a non-zero exit when any differs. Each replica is first asked to apply the
    store's head; while writes go on, the comparison is read again (`--attempts`)."""
    import httpx

    from matcher.indexing.digest import differences, store_digest
    from matcher.store import feed

    db = _engine()
    report: dict[str, list[str]] = {}
    try:
        for url in replica:
            for attempt in range(attempts):
                head = feed.head(db)
                try:
                    r = httpx.get(
                        url.rstrip("/") + "/v1/admin/index/digest",
                        params={"min_seq": head},
                        headers={"Authorization": f"Bearer {key}"},
                        timeout=60,
                    )
                except httpx.HTTPError as exc:
                    raise CliError(f"replica {url} did not answer: {exc}") from exc
                if r.status_code == 503 and attempt + 1 < attempts:
                    time.sleep(1.0)
                    continue
                if r.status_code != 200:
                    raise CliError(f"replica {url} answered {r.status_code}: {r.text[:200]}")
                body = r.json()
                store = {k: d.as_dict() for k, d in store_digest(db).items()}
                lines = differences(store, body["kinds"])
                moved = feed.head(db) != head or int(body["applied_seq"]) != head
                if lines and moved and attempt + 1 < attempts:
                    continue  # written meanwhile: read both again
                report[url] = lines
                break
    finally:
        db.dispose()
    if as_json:
        typer.echo(json.dumps({"replicas": report, "equal": not any(report.values())}, ensure_ascii=False))
    else:
        for url, lines in report.items():
            for line in lines:
                typer.echo(f"{url}: {line}")
            if not lines:
                typer.echo(f"{url}: holds the store's records")
    differing = sum(1 for lines in report.values() if lines)
    if differing:
        raise CliError(f"{differing} of {len(report)} replicas differ from the store")


def register(app: typer.Typer) -> None:
    app.add_typer(feed_app, name="feed")
