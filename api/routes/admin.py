"""/v1/admin: operator reads about this replica (an admin key of any tenant; totals over every tenant only).

`GET /v1/admin/index/digest`: what this replica's indexes hold, per kind (resource, need, enterprise): how many
records and a checksum of their (id, stamp) pairs, with the change-feed seq they stand at. `matcher feed
verify` compares it with the same digest of the store."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import CallerDep, StateDep
from api.errors import PROBLEM_RESPONSES
from api.feed import BEHIND_RESPONSES, ReadAfterDep
from matcher.errors import Forbidden, ServiceUnavailable
from matcher.indexing.digest import index_digest

router = APIRouter(prefix="/admin", tags=["admin"])


class KindDigestPublic(BaseModel):
    count: int = Field(description="records of this kind in the index")
    checksum: str = Field(description="sha256 (first 32 hex digits) of the sorted (id, stamp) pairs")


class IndexDigest(BaseModel):
    applied_seq: int = Field(description="the change-feed seq this replica's indexes stand at")
    kinds: dict[str, KindDigestPublic]


@router.get(
    "/index/digest",
    response_model=IndexDigest,
    summary="What this replica's indexes hold (counts and checksums per kind)",
    responses={
        **{status: PROBLEM_RESPONSES[status] for status in (401, 403, 429)},
        **BEHIND_RESPONSES,
    },
)
def index_digest_route(state: StateDep, caller: CallerDep, _after: ReadAfterDep) -> IndexDigest:
    if caller.role != "admin":
        raise Forbidden("the index digest is for admins only")
    if state.matcher is None:
        raise ServiceUnavailable("the matching indexes are still loading; retry shortly")
    seq, supply, demand = state.matcher.indexer.held()
    kinds = index_digest(supply, demand)
    return IndexDigest(applied_seq=seq, kinds={k: KindDigestPublic(**d.as_dict()) for k, d in kinds.items()})
