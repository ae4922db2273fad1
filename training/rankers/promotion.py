"""Train a ranker, register it, and decide: activate it, put it on interleaved trial, or keep what serves.

One routine behind `matcher train ranker` and the simulated feedback streams (bench/), so the benchmarks
measure the rule the product applies:

1. a running trial is judged first (`matcher.models.trial.evaluate_trial`), so the candidate is compared with the
   ranker that actually serves;
2. the candidate is fitted on half of the needs and compared with the ranker in service on the other half
   (`training.evaluation.compare.train_and_compare`: lists of one need stay on one side; inverse-propensity weighted
   for logged feedback);
3. it is activated when the 95 % lower bound of its nDCG@10 gain is above zero;
4. otherwise, for logged feedback, when the interval straddles zero and no other trial is running, it is put
   on interleaved trial: the logged lists cannot credit matches the ranker in service never showed, live
   traffic can. A candidate worse with 95 % confidence is rejected outright."""

from __future__ import annotations

from typing import Any

from matcher.matching.ranker import Ranker, TransparentRanker
from matcher.models.registry import SHARED, ModelArtefactError, ModelRegistry
from training.data.labels import LabelledRows
from training.evaluation.compare import train_and_compare
from training.registry import TrainingRegistry


def incumbent_ranker(registry: ModelRegistry, scope: str = SHARED) -> Ranker:
    """The ranker `scope` is served: its active one, else (for a tenant) the shared active one, else the
    transparent default; an artefact the service would refuse is skipped as the service skips it."""
    for s in dict.fromkeys((scope, SHARED)):
        try:
            active = registry.load_active("ranker", scope=s)
        except ModelArtefactError:
            active = None
        if active is not None:
            return active
    return TransparentRanker()


def train_and_decide(
    registry: TrainingRegistry,
    data: LabelledRows,
    *,
    source: dict[str, Any],
    params: dict[str, Any],
    scope: str = SHARED,
    seed: int = 0,
    promote: bool = True,
    trial: bool = True,
) -> dict[str, Any]:
    """Steps 2-4 above, in `scope` (a tenant id, or the shared scope): compared with the ranker that scope is
    served, registered, activated and put on trial there (the caller judges a running trial first and chose
    `data` for the scope). Raises `NotEnoughData` with the reason."""
    incumbent = incumbent_ranker(registry, scope)
    ranker, result, split_info = train_and_compare(data, incumbent, params=params, seed=seed)
    v = registry.register(
        ranker,
        scope=scope,
        data=source | {"rows": len(data), "lists": data.n_groups, "positives": data.n_positive} | split_info,
        params=ranker.get_params() | {"incumbent": str(incumbent.version)},
        metrics=result.manifest_metrics(),
        ci=result.manifest_ci(),
        status="candidate" if result.promote else "rejected",
        learned=ranker.effects_,
    )
    logged = data.source.get("kind") != "qrels"
    trial_running = registry.trial("ranker", scope=scope) is not None
    activated = on_trial = False
    if result.promote and promote:
        registry.activate(v.id)
        activated = True
    elif trial and promote and logged and result.ci_high > 0 and not trial_running:
        registry.start_trial(v.id, incumbent=str(incumbent.version))
        on_trial = True
    if activated:
        note = None
    elif on_trial:
        note = (
            "not proven better on the logged lists, not worse either: on interleaved trial with live traffic; "
            "`matcher trial` shows the evidence"
        )
    elif result.promote:
        note = "registered; activate with --promote or POST /v1/models/{id}/activate"
    elif result.ci_high > 0 and trial_running:
        note = "not better than the ranker in service with 95 % confidence; another ranker's trial is running"
    else:
        note = "not better than the ranker in service with 95 % confidence"
    return {
        "model": v.id,
        "ranker": ranker,
        "evaluation": result.as_dict(),
        "learned": [{k: e[k] for k in ("feature", "weight", "en", "zh")} for e in ranker.effects_[:5]],
        "activated": activated,
        "trial": on_trial,
        "note": note,
    }
