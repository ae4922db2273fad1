"""`matcher users create|list|set`: accounts of people who sign in to the workbench (/ui)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    users = typer.Typer(
        help="Manage workbench accounts (admins and officers of a tenant).", no_args_is_help=True
    )
    app.add_typer(users, name="users")

    @users.command("create")
    def create(
        tenant: str = typer.Option(..., help="tenant id, e.g. demo-park"),
        role: str = typer.Option(..., help="admin or officer"),
        email: str = typer.Option(..., help="the sign-in email"),
        password: str = typer.Option(
            None, help="at least 8 characters; asked for (hidden) when not given", show_default=False
        ),
        name: str = typer.Option("", help="the person's name, shown in the workbench"),
    ) -> None:
        """Create an account; the password is stored as an Argon2id hash only."""
        from matcher.accounts.users import create_user
        from matcher.settings import Settings
        from matcher.store.db import init_db, make_engine, session_scope

        if password is None:
            password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
        engine = make_engine(Settings())
        init_db(engine)
        try:
            with session_scope(engine) as session:
                row = create_user(
                    session, tenant=tenant, role=role, email=email, password=password, name=name, commit=False
                )
                user_id, stored = row.id, row.email
        finally:
            engine.dispose()
        typer.echo(f"created account {user_id}: {stored} ({role}) in tenant {tenant}")

    @users.command("list")
    def list_users(tenant: str = typer.Option(None, help="only this tenant")) -> None:
        """List accounts (id, tenant, email, role, state); never a password or its hash."""
        from sqlmodel import Session, select

        from matcher.accounts.tables import UserAccount
        from matcher.settings import Settings
        from matcher.store.db import init_db, make_engine

        engine = make_engine(Settings())
        init_db(engine)
        with Session(engine) as session:
            q = select(UserAccount)
            if tenant:
                q = q.where(UserAccount.tenant_id == tenant)
            for row in session.exec(q.order_by(UserAccount.id)):
                state = "active" if row.active else "inactive"
                if row.locked_until is not None:
                    state += ", locked"
                typer.echo(f"{row.id}\t{row.tenant_id}\t{row.email}\t{row.role}\t{state}")
        engine.dispose()

    @users.command("set")
    def set_user(
        user_id: int = typer.Argument(..., help="account id from `matcher users list`"),
        password: str = typer.Option(None, help="a new password (ends the account's sessions)"),
        role: str = typer.Option(None, help="admin or officer"),
        active: bool = typer.Option(None, "--active/--inactive", help="allow or refuse sign-in"),
        unlock: bool = typer.Option(False, help="lift a lock after repeated wrong passwords"),
    ) -> None:
        """Change an account as its tenant's admin would."""
        from sqlmodel import Session

        from matcher.accounts.tables import UserAccount
        from matcher.accounts.users import update_user
        from matcher.cli.errors import CliError
        from matcher.settings import Settings
        from matcher.store.db import init_db, make_engine
        from matcher.store.keys import Caller

        engine = make_engine(Settings())
        init_db(engine)
        try:
            with Session(engine) as session:
                row = session.get(UserAccount, user_id) if 0 < user_id < 2**31 else None
                if row is None:
                    raise CliError(f"no account with id {user_id}")
                operator = Caller(tenant=row.tenant_id, role="admin")
                update_user(
                    session,
                    caller=operator,
                    id=user_id,
                    role=role,
                    active=active,
                    password=password,
                    unlock=unlock,
                )
        finally:
            engine.dispose()
        typer.echo(f"updated account {user_id}")
