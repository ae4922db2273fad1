"""Industry chains and their links: create, read, change and delete under the caller's tenant, and officers'
placement decisions (a record pinned on a link, or kept off it), which every later placement keeps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import Session, col, delete, select

from matcher.chains.rules import check_links
from matcher.domain.chain_schemas import ChainCreate, ChainUpdate, LinkIn, PlacementDecision
from matcher.domain.park_tables import ChainLink, ChainPlacement, IndustryChain
from matcher.domain.permissions import authorize
from matcher.domain.tables import Enterprise, Need, Resource, utcnow
from matcher.domain.visibility import visible_to
from matcher.errors import NotFound, invalid
from matcher.store import audit
from matcher.store.db import valid_id
from matcher.store.keys import Caller, ensure_tenant

RECORD_MODELS: dict[str, type[Enterprise | Need | Resource]] = {
    "enterprise": Enterprise,
    "need": Need,
    "resource": Resource,
}


def _write_links(session: Session, chain: IndustryChain, links: Sequence[LinkIn]) -> list[ChainLink]:
    """Replace the chain's links with `links`; a link whose key stays keeps its id (and its placements)."""
    checked = check_links(links)
    old = {link.key: link for link in links_of(session, chain.id or 0)}
    out = []
    for position, c in enumerate(checked):
        row = old.pop(c.key, None) or ChainLink(
            chain_id=chain.id or 0, tenant_id=chain.tenant_id, key=c.key, name_zh=""
        )
        row.name_zh, row.name_en = c.link.name_zh, c.link.name_en
        row.description = c.link.description
        row.stage = c.link.stage
        row.feeds = list(c.feeds)
        row.industries = list(c.link.industries)
        row.keywords = list(c.link.keywords)
        row.position = position
        session.add(row)
        out.append(row)
    gone = [link.id for link in old.values()]
    if gone:
        session.exec(delete(ChainPlacement).where(col(ChainPlacement.link_id).in_(gone)))
        session.exec(delete(ChainLink).where(col(ChainLink.id).in_(gone)))
    session.flush()
    return out


def create_chain(session: Session, *, caller: Caller, data: ChainCreate) -> IndustryChain:
    authorize(caller, "create", "chain", owner_tenant=caller.tenant)
    check_links(data.links)  # before anything is written
    ensure_tenant(session, caller.tenant)
    chain = IndustryChain(
        tenant_id=caller.tenant,
        name_zh=data.name_zh,
        name_en=data.name_en,
        description=data.description,
        shared=data.shared,
        min_score=float(data.min_score),
        max_links_per_record=data.max_links_per_record,
        gap_threshold=data.gap_threshold,
        created_by=caller.key_id,
    )
    session.add(chain)
    session.flush()
    _write_links(session, chain, data.links)
    summary = {"links": len(data.links), "shared": data.shared}
    audit.record(session, caller, "create", record_type="chain", record_id=chain.id, summary=summary)
    return chain


def get_chain(session: Session, *, caller: Caller, id: int, action: str = "read") -> IndustryChain:
    authorize(caller, action, "chain", owner_tenant=None)
    chain = session.get(IndustryChain, id) if valid_id(id) else None
    if chain is None:
        raise NotFound(f"no chain with id {id}")
    authorize(caller, action, "chain", owner_tenant=chain.tenant_id, record=f"chain with id {id}")
    return chain


def list_chains(session: Session, *, caller: Caller) -> list[IndustryChain]:
    authorize(caller, "read", "chain", owner_tenant=caller.tenant)
    stmt = select(IndustryChain).where(IndustryChain.tenant_id == caller.tenant).order_by(IndustryChain.id)
    return list(session.exec(stmt))


def links_of(session: Session, chain_id: int) -> list[ChainLink]:
    stmt = select(ChainLink).where(ChainLink.chain_id == chain_id).order_by(ChainLink.position, ChainLink.id)
    return list(session.exec(stmt))


def update_chain(session: Session, *, caller: Caller, id: int, data: ChainUpdate) -> IndustryChain:
    chain = get_chain(session, caller=caller, id=id, action="update")
    given = data.model_dump(exclude_unset=True)
    for name in ("name_zh", "min_score", "max_links_per_record", "gap_threshold", "shared"):
        if name in given and given[name] is None:
            raise invalid(name, "may not be null")
    links = given.pop("links", None)
    for name, value in given.items():
        setattr(chain, name, value if value is not None else "")
    if links is not None:
        _write_links(session, chain, data.links or [])
    chain.updated_at = utcnow()
    session.add(chain)
    session.flush()
    summary = {"fields": sorted([*given, *(["links"] if links is not None else [])])}
    audit.record(session, caller, "update", record_type="chain", record_id=chain.id, summary=summary)
    return chain


def delete_chain(session: Session, *, caller: Caller, id: int) -> None:
    chain = get_chain(session, caller=caller, id=id, action="delete")
    session.exec(delete(ChainPlacement).where(ChainPlacement.chain_id == id))
    session.exec(delete(ChainLink).where(ChainLink.chain_id == id))
    session.delete(chain)
    session.flush()
    audit.record(session, caller, "delete", record_type="chain", record_id=id)


# ---------------------------------------------------------------- officers' decisions


def own_record(session: Session, caller: Caller, record_type: str, record_id: int) -> Any:
    """The park's own enterprise, need or resource (422 otherwise: a chain places the park's own records)."""
    model = RECORD_MODELS[record_type]
    row = session.get(model, record_id) if valid_id(record_id) else None
    if row is None or not visible_to(row, caller.tenant):
        raise invalid("record_id", f"no {record_type} with id {record_id} in your tenant", "not_found")
    if row.tenant_id != caller.tenant:
        raise invalid(
            "record_id",
            f"{record_type} {record_id} belongs to another tenant; a chain places your park's own records",
            "other_tenant",
        )
    return row


def decide(session: Session, *, caller: Caller, chain_id: int, data: PlacementDecision) -> ChainPlacement:
    """Pin a record on a link or keep it off; kept across placements until lifted."""
    chain = get_chain(session, caller=caller, id=chain_id, action="update")
    link = next((x for x in links_of(session, chain.id or 0) if x.key == data.link_key), None)
    if link is None:
        raise invalid("link_key", f"no link with key {data.link_key!r} in chain {chain_id}", "not_found")
    own_record(session, caller, data.record_type, data.record_id)
    row = session.exec(
        select(ChainPlacement).where(
            ChainPlacement.link_id == link.id,
            ChainPlacement.record_type == data.record_type,
            ChainPlacement.record_id == data.record_id,
        )
    ).first() or ChainPlacement(
        chain_id=chain.id or 0,
        link_id=link.id or 0,
        tenant_id=caller.tenant,
        record_type=data.record_type,
        record_id=data.record_id,
    )
    row.source, row.decision, row.reason = "officer", data.decision, data.reason
    row.decided_by, row.decided_at = caller.key_id, utcnow()
    session.add(row)
    session.flush()
    summary = {
        "link": link.key,
        "record_type": data.record_type,
        "record_id": data.record_id,
        "decision": data.decision,
    }
    audit.record(session, caller, "chain.decide", record_type="chain", record_id=chain.id, summary=summary)
    return row


def lift(session: Session, *, caller: Caller, chain_id: int, placement_id: int) -> None:
    """Lift an officer's decision: the next placement decides that record and link by score again."""
    chain = get_chain(session, caller=caller, id=chain_id, action="update")
    row = session.get(ChainPlacement, placement_id) if valid_id(placement_id) else None
    if row is None or row.chain_id != chain.id or row.source != "officer":
        raise NotFound(f"no officer decision with id {placement_id} in chain {chain_id}")
    session.delete(row)
    session.flush()
    summary = {"record_type": row.record_type, "record_id": row.record_id, "decision": row.decision}
    audit.record(session, caller, "chain.lift", record_type="chain", record_id=chain.id, summary=summary)
