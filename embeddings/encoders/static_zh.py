"""Static word-bag sentence encoder for Chinese and English text, as a sentence-transformers input module.

Text goes through :func:`embeddings.text.tokenize` (jieba search-mode words for Chinese, Snowball-stemmed
English words, stop words dropped); each token is looked up in a word vocabulary built from the training corpus,
and the sentence vector is the sum of the token vectors (an ``EmbeddingBag``; after the L2 normalisation every
caller applies, the same as their mean). Vector norms are trained freely,
so frequent, uninformative words learn short vectors and weigh less in the mean.

Out-of-vocabulary tokens:

* a Chinese word falls back to its single characters (every character seen in training is in the vocabulary);
* anything else (rare latin words, unseen characters) is hashed into ``num_buckets`` shared rows when
  ``num_buckets > 0``, and dropped otherwise.

With ``subchars`` on, a multi-character Chinese word also contributes its characters, which lets related
words (``储能`` / ``储能电池``) share evidence.

A saved model directory holds ``modules.json`` pointing at ``embeddings.encoders.static_zh.StaticZhEmbedding``, this
module's ``static_zh_config.json``, ``vocab.json`` (tokens in row order) and ``model.safetensors``. It loads
offline with ``embeddings.encoders.sentence.load_encoder(path)``, or with
``SentenceTransformer(path, trust_remote_code=True)`` (sentence-transformers >= 6 asks for the flag before
importing any module class outside its own package).
"""

from __future__ import annotations

import json
import math
import os
import re
import zlib
from collections.abc import Iterable, Sequence
from typing import Any, Self

import numpy as np
import torch
from safetensors.torch import save_file as save_safetensors_file
from sentence_transformers.base.modules.input_module import InputModule
from torch import nn

from embeddings.text import normalize, tokenize

__all__ = ["StaticZhEmbedding", "TOKENIZER_VERSION", "is_cjk_word", "text_tokens"]

# Bumped whenever the mapping text -> tokens changes in a way that invalidates trained vocabularies.
TOKENIZER_VERSION = "parkmatch-text-1"

_CJK_CHAR = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_MAX_CACHE = 400_000


def is_cjk_word(token: str) -> bool:
    return bool(_CJK_CHAR.match(token))


def text_tokens(text: str, max_chars: int | None = None) -> list[str]:
    """The tokens the encoder sees for ``text`` (normalised, optionally cut to ``max_chars`` characters)."""
    text = normalize(text or "")
    if max_chars:
        text = text[:max_chars]
    return tokenize(text, normalized=True)


class _WordTokenizer:
    """Minimal tokenizer object so that code reading ``model.tokenizer`` finds something meaningful."""

    def __init__(self, module: StaticZhEmbedding):
        self._module = module

    def __call__(self, texts: Sequence[str]) -> list[list[int]]:
        return [self._module.token_ids(text_tokens(t, self._module.max_chars)) for t in texts]

    def get_vocab(self) -> dict[str, int]:
        return dict(self._module.vocab)

    def __len__(self) -> int:
        return self._module.num_embeddings


class StaticZhEmbedding(InputModule):
    """Sum (= mean after normalisation) of trained word vectors over :func:`embeddings.text.tokenize` tokens."""

    config_file_name = "static_zh_config.json"
    config_keys = ["embedding_dim", "num_buckets", "subchars", "max_chars", "tokenizer_version"]
    vocab_file_name = "vocab.json"

    def __init__(
        self,
        vocab: Sequence[str],
        embedding_dim: int = 256,
        *,
        num_buckets: int = 0,
        subchars: bool = False,
        max_chars: int | None = None,
        embedding_weights: np.ndarray | torch.Tensor | None = None,
        tokenizer_version: str = TOKENIZER_VERSION,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        if tokenizer_version != TOKENIZER_VERSION:
            raise ValueError(
                f"model was trained with tokenizer {tokenizer_version!r}, this code tokenizes as "
                f"{TOKENIZER_VERSION!r}: retrain the model"
            )
        words = list(vocab)
        self.vocab: dict[str, int] = {w: i for i, w in enumerate(words)}
        if len(self.vocab) != len(words):
            raise ValueError("vocabulary has duplicate tokens")
        self.words = words
        self.num_buckets = int(num_buckets)
        self.subchars = bool(subchars)
        self.max_chars = int(max_chars) if max_chars else None
        self.tokenizer_version = tokenizer_version
        n = len(words) + self.num_buckets
        if embedding_weights is not None:
            weights = torch.as_tensor(np.asarray(embedding_weights, dtype=np.float32))
            if weights.shape[0] != n:
                raise ValueError(f"embedding matrix has {weights.shape[0]} rows, vocabulary + buckets = {n}")
            self.embedding = nn.EmbeddingBag.from_pretrained(weights, freeze=False, mode="sum")
        else:
            self.embedding = nn.EmbeddingBag(n, embedding_dim, mode="sum")
            nn.init.normal_(self.embedding.weight, std=1.0 / math.sqrt(embedding_dim))
        self.embedding_dim = self.embedding.embedding_dim
        self.num_embeddings = n
        self._cache: dict[str, tuple[int, ...]] = {}
        self.tokenizer = _WordTokenizer(self)

    # ----------------------------------------------------------------- token -> row ids
    def _bucket(self, token: str) -> tuple[int, ...]:
        if not self.num_buckets:
            return ()
        return (len(self.words) + zlib.crc32(token.encode("utf-8")) % self.num_buckets,)

    def _lookup(self, token: str) -> tuple[int, ...]:
        vocab = self.vocab
        idx = vocab.get(token)
        cjk = len(token) > 1 and is_cjk_word(token)
        if idx is not None:
            if cjk and self.subchars:
                return (idx, *(vocab[c] for c in token if c in vocab))
            return (idx,)
        if cjk:
            out: list[int] = []
            for c in token:
                j = vocab.get(c)
                if j is not None:
                    out.append(j)
                else:
                    out.extend(self._bucket(c))
            return tuple(out)
        return self._bucket(token)

    def token_ids(self, tokens: Iterable[str]) -> list[int]:
        """Embedding rows for a token sequence (the same mapping in training and inference)."""
        cache = self._cache
        out: list[int] = []
        for tok in tokens:
            ids = cache.get(tok)
            if ids is None:
                if len(cache) > _MAX_CACHE:
                    cache.clear()
                ids = cache[tok] = self._lookup(tok)
            out.extend(ids)
        return out

    def ids_for_texts(self, texts: Sequence[str]) -> list[list[int]]:
        # Tokenised in this process, never in a worker pool: encoders live inside the server, where forked
        # workers outlived a killed server and kept its listening port; and on 2 cores a pool saved at most
        # a second per 5,000 abstracts (forked) or nothing at all (spawned, each worker loads jieba again).
        return [self.token_ids(text_tokens(t, self.max_chars)) for t in texts]

    @staticmethod
    def collate(id_lists: Sequence[Sequence[int]]) -> dict[str, torch.Tensor]:
        """``{"input_ids", "offsets"}`` for an ``EmbeddingBag`` from per-text id lists."""
        lengths = np.fromiter((len(x) for x in id_lists), dtype=np.int64, count=len(id_lists))
        offsets = np.zeros(len(id_lists), dtype=np.int64)
        if len(id_lists) > 1:
            np.cumsum(lengths[:-1], out=offsets[1:])
        flat = np.fromiter((i for x in id_lists for i in x), dtype=np.int64, count=int(lengths.sum()))
        return {"input_ids": torch.from_numpy(flat), "offsets": torch.from_numpy(offsets)}

    # ----------------------------------------------------------------- sentence-transformers API
    def preprocess(
        self, inputs: Sequence[str], prompt: str | None = None, **kwargs
    ) -> dict[str, torch.Tensor]:
        texts = [t if isinstance(t, str) else str(t) for t in inputs]
        if prompt:
            texts = [prompt + t for t in texts]
        return self.collate(self.ids_for_texts(texts))

    def forward(self, features: dict[str, torch.Tensor], **kwargs) -> dict[str, torch.Tensor]:
        features["sentence_embedding"] = self.embedding(features["input_ids"], features["offsets"])
        return features

    @property
    def max_seq_length(self) -> float:
        return math.inf

    def get_sentence_embedding_dimension(self) -> int:
        return self.embedding_dim

    def get_embedding_dimension(self) -> int:
        return self.embedding_dim

    def get_config_dict(self) -> dict[str, Any]:
        return {
            "embedding_dim": self.embedding_dim,
            "num_buckets": self.num_buckets,
            "subchars": self.subchars,
            "max_chars": self.max_chars,
            "tokenizer_version": self.tokenizer_version,
        }

    def save(self, output_path: str, *args, safe_serialization: bool = True, **kwargs) -> None:
        os.makedirs(output_path, exist_ok=True)
        weight = self.embedding.weight.detach().to(torch.float32).contiguous().cpu()
        save_safetensors_file({"embedding.weight": weight}, os.path.join(output_path, "model.safetensors"))
        with open(os.path.join(output_path, self.vocab_file_name), "w", encoding="utf-8") as f:
            json.dump(self.words, f, ensure_ascii=False)
        self.save_config(output_path)

    @classmethod
    def load(
        cls,
        model_name_or_path: str,
        subfolder: str = "",
        token: bool | str | None = None,
        cache_folder: str | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
        **kwargs,
    ) -> Self:
        hub_kwargs = {
            "subfolder": subfolder,
            "token": token,
            "cache_folder": cache_folder,
            "revision": revision,
            "local_files_only": local_files_only,
        }
        config = cls.load_config(model_name_or_path, **hub_kwargs)
        vocab_path = cls.load_file_path(model_name_or_path, filename=cls.vocab_file_name, **hub_kwargs)
        if vocab_path is None:
            raise ValueError(f"{model_name_or_path}: {cls.vocab_file_name} is missing")
        with open(vocab_path, encoding="utf-8") as f:
            vocab = json.load(f)
        weights = cls.load_torch_weights(model_name_or_path, **hub_kwargs)
        return cls(vocab, embedding_weights=weights["embedding.weight"], **config)
