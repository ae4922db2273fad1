"""English -> Chinese words from a CC-CEDICT file: phrases before words, common senses first, the dictionary's
format read as published."""

from __future__ import annotations

import pytest

from embeddings.lexicon import Lexicon, default_lexicon, read_cedict

CEDICT = """# CC-CEDICT sample
醫院 医院 [yi1 yuan4] /hospital/CL:所[suo3],家[jia1]/
表面 表面 [biao3 mian4] /surface/face/outside/appearance/
地表 地表 [di4 biao3] /the surface of the earth/surface/
缺陷 缺陷 [que1 xian4] /defect; flaw/
叛變 叛变 [pan4 bian4] /to defect; to betray/
機器視覺 机器视觉 [ji1 qi4 shi4 jue2] /machine vision/
機器 机器 [ji1 qi4] /machine/CL:臺|台[tai2]/
視覺 视觉 [shi4 jue2] /sight/vision/visual/
碳 碳 [tan4] /carbon (chemistry)/
"""
FREQ = {"医院": 100, "表面": 500, "地表": 50, "缺陷": 80, "叛变": 90, "机器": 300, "视觉": 100, "碳": 10}


@pytest.fixture
def lexicon(tmp_path):
    path = tmp_path / "cedict.txt"
    path.write_text(CEDICT, encoding="utf-8")
    return Lexicon(read_cedict(path), FREQ)


def test_phrases_win_over_their_words_and_plurals_find_their_entry(lexicon):
    found = {t.phrase: t.words for t in lexicon.translate("Machine vision for surface defects")}
    assert found["machine vision"] == ("机器视觉",)
    assert found["surface"][0] == "表面"  # the entry about surfaces beats the earth's surface
    assert found["defects"][0] == "缺陷"  # a noun sense listed first beats the verb 'to defect'
    assert "for" not in found


def test_a_character_stands_for_a_word_only_as_its_main_sense(lexicon):
    assert lexicon.lookup("carbon") == ("碳",)


def test_chinese_text_is_not_expanded(lexicon):
    assert lexicon.expand("医院物流") == ""
    assert set(lexicon.expand("hospital").split()) == {"医院"}


@pytest.mark.slow
def test_the_packaged_dictionary_translates_park_needs():
    lexicon = default_lexicon()
    assert lexicon is not None and len(lexicon) > 50_000
    words = lexicon.expand("hospital logistics robots for nursing homes").split()
    assert {"医院", "物流", "机器人", "养老院"} <= set(words)
