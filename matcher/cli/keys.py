"""`matcher keys create|list|revoke`: API keys bound to a tenant and a role."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    keys = typer.Typer(help="Manage API keys (printed once, stored hashed).", no_args_is_help=True)
    app.add_typer(keys, name="keys")

    @keys.command("create")
    def create(
        tenant: str = typer.Option(..., help="tenant id, e.g. zgc-park"),
        role: str = typer.Option(..., help="admin, officer or platform"),
        name: str = typer.Option("", help="a label for the key"),
    ) -> None:
        """Create a key and print it alone on the last line."""
        from pydantic import ValidationError

        from matcher.cli.errors import CliError
        from matcher.domain.schemas import ApiKeyCreate
        from matcher.errors import invalid_input
        from matcher.settings import Settings
        from matcher.store.db import init_db, make_engine, session_scope
        from matcher.store.keys import create_key

        try:
            ApiKeyCreate(tenant=tenant, role=role, name=name)
        except ValidationError as exc:
            raise CliError(invalid_input(exc.errors()).detail) from None
        engine = make_engine(Settings())
        init_db(engine)
        with session_scope(engine) as session:
            row, plaintext = create_key(session, tenant=tenant, role=role, name=name)
            key_id = row.id
        typer.echo(
            f"created key {key_id} for tenant {tenant} with role {role}; it is shown only once:", err=True
        )
        typer.echo(plaintext)

    @keys.command("list")
    def list_keys(tenant: str = typer.Option(None, help="only this tenant")) -> None:
        """List keys (prefix, tenant, role, state) without revealing them."""
        from sqlmodel import Session, select

        from matcher.domain.tables import ApiKey
        from matcher.settings import Settings
        from matcher.store.db import init_db, make_engine

        engine = make_engine(Settings())
        init_db(engine)
        with Session(engine) as session:
            q = select(ApiKey)
            if tenant:
                q = q.where(ApiKey.tenant_id == tenant)
            for row in session.exec(q.order_by(ApiKey.id)):
                state = "revoked" if row.revoked_at else "active"
                typer.echo(f"{row.id}\tpm_{row.prefix}_…\t{row.tenant_id}\t{row.role}\t{state}\t{row.name}")

    @keys.command("revoke")
    def revoke(key_id: int = typer.Argument(..., help="key id from `matcher keys list`")) -> None:
        """Revoke a key; requests with it get 401 from then on."""
        from matcher.cli.errors import CliError
        from matcher.settings import Settings
        from matcher.store.db import init_db, make_engine, session_scope
        from matcher.store.keys import revoke_key

        engine = make_engine(Settings())
        init_db(engine)
        with session_scope(engine) as session:
            if not revoke_key(session, key_id):
                raise CliError(f"no key with id {key_id}")
        typer.echo(f"revoked key {key_id}")
