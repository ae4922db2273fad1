"""/v1/keys: an admin manages the API keys of their own tenant; a new key is shown once."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from api.deps import SessionDep, permit
from matcher.domain.schemas import ApiKeyCreated, ShortText, Strict
from matcher.domain.tables import ApiKey, as_utc
from matcher.store.keys import Caller, create_api_key, list_api_keys, revoke_api_key

router = APIRouter(prefix="/keys", tags=["keys"])


class ApiKeyRequest(Strict):
    """The key is created in the admin's own tenant."""

    role: Literal["admin", "officer", "platform"]
    name: ShortText = ""


class ApiKeyPublic(BaseModel):
    id: int
    tenant: str
    role: str
    name: str
    prefix: str = Field(description="identifies the key in logs; the key itself is never shown again")
    created_at: datetime
    revoked_at: datetime | None


class ApiKeysPublic(BaseModel):
    data: list[ApiKeyPublic]
    count: int


def _public(row: ApiKey) -> ApiKeyPublic:
    return ApiKeyPublic(
        id=row.id,
        tenant=row.tenant_id,
        role=row.role,
        name=row.name,
        prefix=row.prefix,
        created_at=as_utc(row.created_at),
        revoked_at=as_utc(row.revoked_at),
    )


@router.post("", status_code=201, response_model=ApiKeyCreated, summary="Create an API key")
def create_key(
    data: ApiKeyRequest, session: SessionDep, caller: Annotated[Caller, permit("create", "key")]
) -> ApiKeyCreated:
    row, plaintext = create_api_key(session, caller=caller, role=data.role, name=data.name)
    return ApiKeyCreated(id=row.id, tenant=row.tenant_id, role=row.role, key=plaintext)


@router.get("", response_model=ApiKeysPublic, summary="List the tenant's API keys")
def list_keys(session: SessionDep, caller: Annotated[Caller, permit("read", "key")]) -> ApiKeysPublic:
    rows = list_api_keys(session, caller=caller)
    return ApiKeysPublic(data=[_public(r) for r in rows], count=len(rows))


@router.delete("/{key_id}", status_code=204, response_class=Response, summary="Revoke an API key")
def revoke_key(key_id: int, session: SessionDep, caller: Annotated[Caller, permit("delete", "key")]) -> None:
    revoke_api_key(session, caller=caller, id=key_id)
