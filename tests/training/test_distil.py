"""The static student distilled from a teacher: its words, stems grouped, rows from the teacher's vectors, and the
multilingual alignment carried over (a word and its translation get near rows)."""

from __future__ import annotations

import numpy as np

from embeddings.encoders.sentence import load_encoder
from training.encoders.distil import DistilRecipe, distil_static_student, student_vocabulary


class FakeTokenizer:
    def __init__(self, pieces):
        self.pieces = pieces

    def get_vocab(self):
        return {p: i for i, p in enumerate(self.pieces)}


class FakeTeacher:
    """Gives a word and its translation the same direction (a tiny 'multilingual' teacher)."""

    def __init__(self):
        self.tokenizer = FakeTokenizer(
            ["<s>", "\u2581hospital", "\u2581hospitals", "\u2581machine", "\u2581the"]
        )
        self.concepts = {"医院": 0, "hospital": 0, "hospitals": 0, "机器": 1, "machine": 1}
        self.calls = 0

    def encode(self, texts, **kwargs):
        self.calls += 1
        rng = np.random.default_rng(0)
        base = rng.normal(size=(8, 16))
        out = []
        for t in texts:
            c = self.concepts.get(t)
            v = base[c] if c is not None else np.random.default_rng(abs(hash(t)) % 2**32).normal(size=16)
            out.append(v + 0.01 * np.random.default_rng(len(t)).normal(size=16))
        return np.asarray(out, np.float32)


def test_vocabulary_groups_english_surface_words_by_stem():
    vocab = student_vocabulary(FakeTokenizer(["\u2581hospital", "\u2581hospitals", "\u2581the"]),
                               DistilRecipe(zh_words=50, en_words=10))  # fmt: skip
    en = [(s, k) for s, k in zip(vocab.surfaces, vocab.keys, strict=True) if s.isascii()]
    assert ("hospital", "hospit") in en and ("hospitals", "hospit") in en
    assert all(s != "the" for s, _ in en)  # stop words are not rows
    assert "医院" not in vocab.keys or vocab.probability["医院"] > 0


def test_a_student_is_built_loads_and_keeps_translations_together(tmp_path):
    teacher = FakeTeacher()
    recipe = DistilRecipe(zh_words=3000, en_words=10, dim=16, batch_size=64)
    path = distil_static_student(teacher, tmp_path / "student", recipe)
    enc = load_encoder(path)
    assert enc.dimension == 16 and (path / "training_manifest.json").is_file()
    q = enc.encode_queries(["hospitals", "machines"])
    d = enc.encode_documents(["医院", "机器"])
    sims = q @ d.T
    assert sims[0, 0] > sims[0, 1] and sims[1, 1] > sims[1, 0]
