"""`matcher migrate`: bring the store's schema to this version's revision (SQLite or PostgreSQL)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def migrate() -> None:
        """Upgrade the store to this version's schema revision; a store made before revisions existed is
        adopted as the baseline first. 升级数据库结构到本版本。"""
        from matcher.settings import Settings
        from matcher.store.db import make_engine
        from matcher.store.schema import migrate as upgrade

        engine = make_engine(Settings())
        try:
            before, after = upgrade(engine)
        finally:
            engine.dispose()
        if before == after:
            typer.echo(f"the store is at revision {after} already / 数据库已是最新版本")
        else:
            typer.echo(f"the store is at revision {after} (was {before or 'none'}) / 数据库已升级")
