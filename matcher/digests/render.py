"""Rendering a digest to a localized subject, an HTML part (CSS inlined) and a plain-text part.

Templates run under StrictUndefined: a missing variable is an error for that one digest, never a blank."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from matcher.digests.compose import Digest

STRINGS: dict[str, dict[str, str]] = {
    "zh": {
        "subject": "【园区匹配】本周为{name}推荐 {count} 项资源",
        "greeting": "{name}，您好：",
        "intro": "以下是自上期以来新发布或更新、与贵企业需求和画像相符的资源。",
        "closing_title": "即将截止",
        "new_title": "本期推荐",
        "closes": "截止日期",
        "fits_need": "对应需求",
        "fits_profile": "符合企业画像",
        "provider": "提供方",
        "view": "查看详情",
        "why": "推荐理由",
        "footer": "您收到此邮件是因为贵企业订阅了园区匹配周报。",
        "unsubscribe": "退订",
        "kind.result": "科技成果",
        "kind.scenario": "应用场景",
        "kind.fund": "基金",
        "kind.incubator": "孵化器",
    },
    "en": {
        "subject": "[parkmatch] {count} new matches for {name} this week",
        "greeting": "Hello {name},",
        "intro": "These resources were published or updated since your last digest and fit your needs and profile.",
        "closing_title": "Closing soon",
        "new_title": "New for you",
        "closes": "Closes",
        "fits_need": "Fits your need",
        "fits_profile": "Fits your profile",
        "provider": "Provider",
        "view": "View details",
        "why": "Why",
        "footer": "You receive this email because your company subscribed to the parkmatch digest.",
        "unsubscribe": "Unsubscribe",
        "kind.result": "Research result",
        "kind.scenario": "Application scenario",
        "kind.fund": "Fund",
        "kind.incubator": "Incubator",
    },
}


@dataclass(frozen=True)
class RenderedDigest:
    subject: str
    html: str
    text: str


@lru_cache(maxsize=1)
def _env() -> Environment:
    return Environment(
        loader=PackageLoader("matcher.digests", "templates"),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _inline_css(html: str) -> str:
    from premailer import Premailer

    return Premailer(
        html, remove_classes=False, keep_style_tags=False, cssutils_logging_level="CRITICAL"
    ).transform()


def subject_for(digest: Digest, enterprise_name: str) -> str:
    return STRINGS[digest.language]["subject"].format(name=enterprise_name, count=len(digest.items))


def render_digest(
    digest: Digest,
    *,
    enterprise_name: str,
    unsubscribe_url: str,
    extra: dict[str, object] | None = None,
) -> RenderedDigest:
    """Raises jinja2 errors (UndefinedError, TemplateError) for a broken template or context."""
    strings = STRINGS[digest.language]
    context = {
        "t": strings,
        "lang": digest.language,
        "period": digest.period,
        "enterprise_name": enterprise_name,
        "greeting": strings["greeting"].format(name=enterprise_name),
        "closing_items": digest.closing_items,
        "new_items": digest.new_items,
        "unsubscribe_url": unsubscribe_url,
        **(extra or {}),
    }
    env = _env()
    html = env.get_template("digest.html.j2").render(context)
    text = env.get_template("digest.txt.j2").render(context)
    return RenderedDigest(subject=subject_for(digest, enterprise_name), html=_inline_css(html), text=text)
