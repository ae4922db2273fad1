"""Each participant's agenda of an event's latest plan: as data, as an XLSX sheet, and as a bilingual email with
the sheet attached; and the whole plan as one workbook for the organisers."""

from __future__ import annotations

import io
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from sqlmodel import Session, select

from matcher.digests.send import mail_domain
from matcher.domain.event_schemas import AgendaItem, AgendaPublic, AgendaSendReport
from matcher.domain.park_tables import DockingEvent, EventMeeting, EventParticipant
from matcher.domain.tables import Enterprise, Resource
from matcher.events.schedule import get_schedule, meetings_of
from matcher.events.store import get_participant, list_participants, participant_views, to_public_event
from matcher.store.keys import Caller

KIND_ZH = {
    "result": "科技成果",
    "scenario": "应用场景",
    "fund": "基金",
    "incubator": "孵化器",
    "enterprise": "企业",
}
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HEADER = (
    "时段 Slot",
    "开始 Start",
    "结束 End",
    "桌号 Table",
    "洽谈对象 Counterpart",
    "类型 Kind",
    "匹配度 Score",
    "匹配理由 Why",
)


def _items(
    session: Session, ev: DockingEvent, p: EventParticipant, meetings: Sequence[EventMeeting]
) -> list[AgendaItem]:
    mine = [m for m in meetings if p.id in (m.demand_participant_id, m.supply_participant_id)]
    ents = {
        e.id: e
        for e in session.exec(select(Enterprise).where(Enterprise.id.in_([m.enterprise_id for m in mine])))
    }  # type: ignore[union-attr]
    res = {
        r.id: r for r in session.exec(select(Resource).where(Resource.id.in_([m.resource_id for m in mine])))
    }  # type: ignore[union-attr]
    out = []
    for m in mine:
        if p.side == "demand":
            r = res.get(m.resource_id)
            other, name, kind = m.supply_participant_id, (r.title if r else None), (r.kind if r else None)
        else:
            e = ents.get(m.enterprise_id)
            other, name, kind = m.demand_participant_id, (e.name if e else None), "enterprise"
        slot = ev.slots[m.slot]
        out.append(
            AgendaItem(
                slot=m.slot,
                start=slot["start"],
                end=slot["end"],
                table=m.table_no,
                meeting_id=m.id or 0,
                counterpart_participant_id=other,
                counterpart=name,
                counterpart_kind=kind,
                score=m.score,
                summary=str(m.explanation.get("summary") or ""),
            )
        )
    return sorted(out, key=lambda x: x.slot)


def _text(
    ev: DockingEvent, name: str | None, items: Sequence[AgendaItem], left_out: dict[str, Any] | None
) -> tuple[str, str]:
    subject = f"【{ev.title}】一对一洽谈日程 / Your 1:1 meeting agenda, {ev.date.isoformat()}"
    where = f"，{ev.location}" if ev.location else ""
    lines = [
        f"{name or ''}，您好！ / Dear {name or 'participant'},",
        "",
        f"以下是您在「{ev.title}」（{ev.date.isoformat()}{where}）的一对一洽谈日程：",
        f'Your 1:1 meetings at "{ev.title}" ({ev.date.isoformat()}{where.replace("，", ", ")}):',
        "",
    ]
    for it in items:
        kind = it.counterpart_kind or ""
        lines.append(
            f"{it.start}-{it.end}  桌号 Table {it.table}  {it.counterpart or '（已删除 deleted）'}"
            f"（{KIND_ZH.get(kind, kind)} {kind}）"
        )
        if it.summary:
            lines.append(f"    匹配理由 Why: {it.summary}")
    if not items:
        lines.append("本次活动未能为您安排洽谈。 / No meeting could be arranged for you at this event.")
        if left_out:
            lines += [f"原因：{left_out['zh']}", f"Why: {left_out['en']}"]
    lines += ["", "附件为 Excel 格式的日程表。 / The agenda is attached as an Excel sheet.", ""]
    return subject, "\n".join(lines)


def agenda(session: Session, *, caller: Caller, event_id: int, participant_id: int) -> AgendaPublic:
    ev, p = get_participant(session, caller=caller, event_id=event_id, id=participant_id)
    ev, schedule = get_schedule(session, caller=caller, event_id=event_id)
    view = participant_views(session, [p])[0]
    items = _items(session, ev, p, meetings_of(session, schedule.id or 0))
    left = next((x for x in schedule.left_out if x["participant_id"] == p.id), None)
    subject, text = _text(ev, view.name, items, left)
    return AgendaPublic(
        participant=view, event=to_public_event(session, ev), items=items, subject=subject, text=text
    )


def _sheet(wb: Workbook, title: str, rows: Sequence[Sequence[Any]], header: Sequence[str]) -> None:
    ws = wb.create_sheet(title[:31])
    ws.append(list(header))
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for row in rows:
        ws.append(list(row))
    for column, width in zip("ABCDEFGHIJ", (10, 8, 8, 10, 40, 16, 10, 60), strict=False):
        ws.column_dimensions[column].width = width
    for row in ws.iter_rows(min_row=2):
        row[-1].alignment = Alignment(wrap_text=True)


def _bytes(wb: Workbook) -> bytes:
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def agenda_xlsx(a: AgendaPublic) -> bytes:
    wb = Workbook()
    wb.remove(wb.active)
    rows = [
        (
            it.slot + 1,
            it.start,
            it.end,
            it.table,
            it.counterpart,
            it.counterpart_kind,
            round(it.score, 3),
            it.summary,
        )
        for it in a.items
    ]
    _sheet(wb, "日程 Agenda", rows, HEADER)
    return _bytes(wb)


def event_xlsx(session: Session, *, caller: Caller, event_id: int) -> bytes:
    """The whole plan: one row per meeting, in slot and table order."""
    ev, schedule = get_schedule(session, caller=caller, event_id=event_id)
    views = {
        v.id: v for v in participant_views(session, list_participants(session, caller=caller, event_id=ev.id))
    }
    rows = []
    for m in meetings_of(session, schedule.id or 0):
        slot = ev.slots[m.slot]
        d, s = views.get(m.demand_participant_id), views.get(m.supply_participant_id)
        rows.append(
            (
                m.slot + 1,
                slot["start"],
                slot["end"],
                m.table_no,
                d.name if d else None,
                s.name if s else None,
                s.kind if s else None,
                round(m.score, 3),
                str(m.explanation.get("summary") or ""),
            )
        )
    header = (
        "时段 Slot",
        "开始 Start",
        "结束 End",
        "桌号 Table",
        "企业 Enterprise",
        "资源 Resource",
        "类型 Kind",
        "匹配度 Score",
        "匹配理由 Why",
    )
    wb = Workbook()
    wb.remove(wb.active)
    _sheet(wb, "洽谈 Meetings", rows, header)
    left = [(x["participant_id"], x["side"], x["reason"], x["zh"], x["en"]) for x in schedule.left_out]
    _sheet(
        wb, "未安排 Left out", left, ("参与方 Participant", "方 Side", "原因 Reason", "说明", "Explanation")
    )
    return _bytes(wb)


def agenda_message(a: AgendaPublic, *, to: str, mail_from: str) -> EmailMessage:
    msg = EmailMessage()
    msg["Message-ID"] = make_msgid(idstring="agenda", domain=mail_domain(mail_from))
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["From"] = mail_from
    msg["To"] = to
    msg["Subject"] = a.subject
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(a.text, subtype="plain", charset="utf-8")
    msg.add_attachment(
        agenda_xlsx(a),
        maintype="application",
        subtype=XLSX_TYPE.split("/", 1)[1],
        filename=f"agenda-event{a.event.id}-participant{a.participant.id}.xlsx",
    )
    return msg


def send_agendas(
    session: Session, *, caller: Caller, event_id: int, sender: Any, mail_from: str
) -> AgendaSendReport:
    """Mail every participant with an address its agenda; those without one are listed, failures too."""
    get_schedule(session, caller=caller, event_id=event_id)  # 404 before any mail when there is no plan
    sent, skipped, failed = 0, [], []
    for p in list_participants(session, caller=caller, event_id=event_id):
        if not p.email:
            skipped.append({"participant_id": p.id, "reason": "no_email"})
            continue
        a = agenda(session, caller=caller, event_id=event_id, participant_id=p.id or 0)
        try:
            sender.send(agenda_message(a, to=p.email, mail_from=mail_from))
            sent += 1
        except Exception as exc:  # noqa: BLE001 - one failed address does not stop the others
            failed.append({"participant_id": p.id, "error": str(exc)[:300]})
    return AgendaSendReport(sent=sent, skipped=skipped, failed=failed)
