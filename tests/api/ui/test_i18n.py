"""Every word of the workbench exists in Chinese and English, and the templates use no word that is missing."""

from __future__ import annotations

import re
from pathlib import Path

from api.ui.i18n import EN, ZH

TEMPLATES = Path(__file__).resolve().parents[3] / "api" / "ui" / "templates"


def test_both_languages_have_the_same_words():
    assert set(ZH) == set(EN)
    assert all(ZH[k].strip() and EN[k].strip() for k in ZH)


def test_templates_use_only_known_words():
    used = set()
    for path in TEMPLATES.rglob("*.html"):
        used |= set(re.findall(r"""\bt\('([a-z_.]+)'\s*[,)]""", path.read_text(encoding="utf-8")))
    assert used and used <= set(ZH), sorted(used - set(ZH))
