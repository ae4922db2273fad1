"""Read-your-writes over the change feed: every write response says the feed seq of its write (header
`X-Matcher-Seq`), and a read given `min_seq` (query parameter or `X-Matcher-Min-Seq` header) waits until this
replica has applied that seq, up to `min_seq_wait_s`, then answers 503 with Retry-After."""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import Depends, Header, Query
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import FEED_SESSIONS, CallerDep, StateDep
from api.errors import problem_response
from matcher.errors import ServiceUnavailable
from matcher.store import feed

SEQ_HEADER = "X-Matcher-Seq"
MIN_SEQ_HEADER = "X-Matcher-Min-Seq"

SEQ_DESCRIPTION = (
    "the change-feed sequence number of this write (on a write response; null elsewhere): pass it as `min_seq` "
    "to a read on any replica to see the write there"
)
SEQ_RESPONSE_HEADER = {
    SEQ_HEADER: {"schema": {"type": "integer", "minimum": 0}, "description": SEQ_DESCRIPTION},
}
# a read with min_seq that this replica has not applied in time
BEHIND_RESPONSES: dict[int | str, dict[str, Any]] = {
    503: {
        **problem_response(
            "the matching indexes are still loading, or this replica has not applied `min_seq` in time; retry "
            "after the Retry-After header's seconds"
        ),
        "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
    }
}


class FeedBehind(ServiceUnavailable):
    """This replica has not applied the seq a read asked for within the bound; rendered with Retry-After."""

    def __init__(self, seq: int, applied: int, retry_after: int) -> None:
        super().__init__(
            f"this replica has applied the change feed up to seq {applied}, not yet {seq}; retry shortly / "
            f"本副本尚未同步到序号 {seq}，请稍后重试"
        )
        self.retry_after = retry_after


def request_seq(state: dict[str, Any]) -> int | None:
    """The last seq the request's sessions appended (None: it wrote no indexed record)."""
    seqs = [s.info.get(feed.LAST_SEQ) for s in state.get(FEED_SESSIONS, ())]
    seqs = [s for s in seqs if s is not None]
    return max(seqs) if seqs else None


class SeqHeaderMiddleware:
    """Adds X-Matcher-Seq to the response of a request that committed a write of an indexed record (routes
    that answer a no-op write say the head themselves, through `written_seq`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_seq(message: Message) -> None:
            if message["type"] == "http.response.start":
                seq = request_seq(scope.get("state", {}))
                names = {k.lower() for k, _ in message.get("headers", [])}
                if seq is not None and SEQ_HEADER.lower().encode() not in names:
                    message.setdefault("headers", [])
                    message["headers"] = [
                        *message["headers"],
                        (SEQ_HEADER.lower().encode(), str(seq).encode()),
                    ]
            await send(message)

        await self.app(scope, receive, send_with_seq)


# the operations whose success says X-Matcher-Seq: record writes and imports
SEQ_PATHS = ("/v1/enterprises", "/v1/needs", "/v1/resources")
SEQ_METHODS = ("post", "patch", "delete")


def declare_seq_header(openapi: dict[str, Any]) -> dict[str, Any]:
    """Say X-Matcher-Seq on the success responses of the writes of indexed records (record routes and imports;
    `…/matches` reads and the other operations under these paths write none)."""
    for path, item in openapi.get("paths", {}).items():
        if (
            not path.startswith(SEQ_PATHS)
            or path.endswith(("/matches", "/graduation"))
            or "/subscription" in path
        ):
            continue
        for method in SEQ_METHODS:
            for status, response in item.get(method, {}).get("responses", {}).items():
                if str(status).startswith("2"):
                    response.setdefault("headers", {}).update(SEQ_RESPONSE_HEADER)
    return openapi


def wait_min_seq(
    state: StateDep,
    _caller: CallerDep,  # a request without a valid key is refused before it waits
    min_seq: Annotated[
        int | None,
        Query(
            ge=0,
            le=2**63 - 1,
            description="wait until this replica has applied this change-feed seq (a write's `seq` / "
            "X-Matcher-Seq) before reading; 503 with Retry-After when it has not within the bound",
        ),
    ] = None,
    # declared as a plain integer (a header has no null to send); absent, it is None
    x_matcher_min_seq: Annotated[
        int,
        Header(ge=0, le=2**63 - 1, description="the same as the `min_seq` query parameter"),
    ] = None,  # type: ignore[assignment]
) -> None:
    seq = max((s for s in (min_seq, x_matcher_min_seq) if s is not None), default=None)
    if seq is None:
        return
    bound = state.settings.min_seq_wait_s
    follower = getattr(state.matcher, "follower", None)
    if follower is not None:
        if follower.wait_for(seq, bound):
            return
        applied = follower.applied
    else:  # no indexes here: reads go to the store, which holds every committed seq
        applied = feed.head(state.db)
        if applied >= seq:
            return
    raise FeedBehind(seq, applied, retry_after=max(1, math.ceil(bound)))


ReadAfterDep = Annotated[None, Depends(wait_min_seq)]
