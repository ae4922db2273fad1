"""`matcher train ranker|encoder` and `matcher report`: learn from outcomes, register the models, read the funnel."""

from __future__ import annotations

import json
import tempfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from embeddings.encoders.base import Encoder
    from matcher.models.registry import ModelVersion
    from matcher.settings import Settings
    from training.encoders.outcome_data import EncoderData
    from training.evaluation.compare import Comparison

train_app = typer.Typer(
    help="Train models from the store's data and feedback; register them.", no_args_is_help=True
)

MIN_ENCODER_RECORDS = 50


@train_app.command("ranker")
def train_ranker(
    tenant: str = typer.Option(
        None, help="train on this tenant's feedback only and register into its scope (served to it alone)"
    ),
    shared: bool = typer.Option(
        False,
        "--shared",
        help="operator: train on every tenant's feedback and register into the shared scope (served to the "
        "tenants without a ranker of their own)",
    ),
    qrels: Path = typer.Option(None, help="a BEIR-layout set to learn from instead of logged feedback"),
    split: str = typer.Option("dev", help="qrels split (with --qrels)"),
    promote: bool = typer.Option(
        True, "--promote/--no-promote", help="activate it when it wins its evaluation"
    ),
    trial: bool = typer.Option(
        True,
        "--trial/--no-trial",
        help="when the logged comparison cannot tell, put it on an interleaved trial with live traffic",
    ),
    model: str = typer.Option("logistic", help="logistic | boosting"),
    objective: str = typer.Option("pointwise", help="pointwise | pairwise"),
    eta: float = typer.Option(1.0, help="position-bias exponent: propensity = (1/position)^eta"),
    seed: int = typer.Option(0),
) -> None:
    """Fit a calibrated ranker for one tenant (--tenant, on its feedback alone) or, by the operator's explicit
    choice, for every tenant (--shared, on all tenants' feedback); compare it with the ranker that scope is
    served on held-out queries, register it in that scope, and activate it there only when the 95 % lower
    bound of its nDCG@10 gain is above zero.

    From feedback, a candidate the logged comparison cannot prove better but not worse either (the interval
    straddles zero) is put on an interleaved trial: the service shows it beside the ranker in service for a
    share of requests and promotes it when users prefer it (matcher/models/trial.py). A running trial is judged
    first, and is not replaced by a new candidate while its evidence is still coming in."""
    from sqlmodel import Session

    from matcher.cli.errors import CliError
    from matcher.models.registry import SHARED
    from matcher.models.trial import evaluate_trial
    from matcher.settings import Settings
    from matcher.store.db import init_db, make_engine
    from training.data.labels import from_feedback
    from training.evaluation.compare import NotEnoughData
    from training.rankers.promotion import train_and_decide
    from training.registry import TrainingRegistry

    if shared == (tenant is not None):
        raise CliError("say whose ranker this is: --tenant TENANT (its feedback only) or --shared (operator)")
    if tenant == SHARED:
        raise CliError(f"{SHARED!r} is the shared scope, not a tenant: use --shared")
    scope = SHARED if shared else str(tenant)
    settings = Settings()
    registry = TrainingRegistry.for_settings(settings)
    running = None
    if qrels is not None:
        data, source = _qrels_rows(settings, qrels, split), {"qrels": str(qrels), "split": split}
    else:
        db = make_engine(settings)
        init_db(db)
        with Session(db) as session:
            if promote:
                running = evaluate_trial(session, registry, scope=scope, planned=settings.trial_votes)
            data = from_feedback(session, tenant=None if shared else tenant)
        db.dispose()
        source = {"feedback": settings.sqlalchemy_url.split("///")[-1]}
    source["scope"] = scope
    params = {"model": model, "objective": objective, "eta": 0.0 if qrels is not None else eta}
    try:
        decided = train_and_decide(
            registry, data, source=source, params=params, scope=scope, seed=seed, promote=promote, trial=trial
        )
    except NotEnoughData as exc:
        raise CliError(str(exc)) from None
    except ValueError as exc:
        raise CliError(f"cannot train: {exc}") from None
    _audit_decision(settings, scope, decided)
    out = {k: v for k, v in decided.items() if k != "ranker"}
    out["previous_trial"] = None if running is None else running.as_dict()
    typer.echo(json.dumps(out, ensure_ascii=False))


def _audit_decision(settings, scope: str, decided: dict) -> None:
    """An activation or a trial the command started is in the scope's audit trail, by the operator."""
    from sqlmodel import Session

    from matcher.store import audit
    from matcher.store.db import init_db, make_engine

    if not (decided["activated"] or decided["trial"]):
        return
    action, summary = (
        ("model.activate", {}) if decided["activated"] else ("model.trial", {"trial": "started"})
    )
    db = make_engine(settings)
    init_db(db)
    with Session(db) as session:
        who = audit.Actor(tenant=scope, name=audit.OPERATOR)
        audit.record(
            session,
            who,
            action,
            record_type="model",
            record_id=decided["model"],
            summary=summary,
            commit=True,
        )
    db.dispose()


def _qrels_rows(settings, dataset: Path, split: str):
    from matcher.cli.errors import CliError
    from matcher.models.encoder import load_configured_encoder
    from training.data.beir import BeirFormatError, load_beir
    from training.data.labels import from_qrels
    from training.evaluation.match_eval import temporary_engine

    if not dataset.is_dir():
        raise CliError(f"no dataset directory at {dataset}")
    try:
        corpus, queries, qrels = load_beir(dataset, split)
    except BeirFormatError as exc:
        raise CliError(str(exc)) from None
    queries = {q: t for q, t in queries.items() if q in qrels}
    encoder = load_configured_encoder(settings)
    with temporary_engine(corpus, encoder, prefix="parkmatch-train-") as (engine, ids):
        return from_qrels(engine, queries, qrels, ids)


@train_app.command("encoder")
def train_encoder(
    epochs: int = typer.Option(None, help="training epochs (default: the recipe's)"),
    dim: int = typer.Option(256),
    output: Path = typer.Option(None, help="model directory (default: data_dir/models/encoder-<version>)"),
    promote: bool = typer.Option(
        True, "--promote/--no-promote", help="install it as the default encoder when it wins its evaluation"
    ),
    pair_repeats: int = typer.Option(4, help="how often each feedback pair is drawn per epoch"),
    test_size: float = typer.Option(0.5, help="share of the needs with feedback held out for the evaluation"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
    seed: int = typer.Option(0),
) -> None:
    """Train the static embedding model on the store's resources (title, keywords and description of each) and,
    from feedback, accepted or dealt (need -> resource) pairs with the need's rejected resources as hard
    negatives; evaluate it against the encoder in service on held-out needs and register it. It replaces the
    default encoder (MATCHER_ENCODER=default) only when the 95 % lower bound of its nDCG@10 gain is above zero,
    or when no encoder serves at all; restart the service to serve it (its indexes are rebuilt)."""
    from datetime import UTC

    from matcher.cli.errors import CliError
    from matcher.settings import Settings
    from training.encoders.outcome_data import encoder_training_data, time_split
    from training.encoders.static import train_static_encoder
    from training.evaluation.compare import MIN_GROUPS

    settings = Settings()
    data = encoder_training_data(settings)
    usable = [r for r in data.records if (r["text"] or "").strip()]
    if len(usable) < MIN_ENCODER_RECORDS:
        raise CliError(
            f"too little data to train an encoder: {len(usable)} active resources with a description "
            f"(need at least {MIN_ENCODER_RECORDS}); import more resources first"
        )
    evaluate = len(data.positives) >= MIN_GROUPS
    train_needs, test_needs = time_split(data, test_size) if evaluate else (sorted(data.positives), [])
    pairs = data.pairs(train_needs, seed=seed)
    stamp = f"{datetime.now(UTC):%Y%m%d-%H%M%S}"
    out = output or settings.models_dir / f"encoder-{stamp}"
    try:
        train_static_encoder(
            usable,
            out,
            dim=dim,
            epochs=epochs,
            show_progress=not quiet,
            pairs=pairs,
            pair_repeats=pair_repeats,
            seed=seed,
        )
    except ValueError as exc:
        raise CliError(f"cannot train the encoder: {exc}") from None

    incumbent, incumbent_id = _encoder_in_service(settings)
    result = None
    if evaluate and incumbent is not None:
        result = _compare_encoders(out, incumbent, data, test_needs, seed=seed)
    status, install, note = _decide_and_install(settings, out, incumbent, result, data, promote=promote)
    v = _register_encoder(
        settings,
        out,
        data,
        pairs,
        usable=len(usable),
        split=(train_needs, test_needs),
        params={
            "dim": dim,
            "epochs": epochs,
            "pair_repeats": pair_repeats,
            "seed": seed,
            "incumbent": incumbent_id,
        },
        result=result,
        status=status,
        install=install,
    )
    typer.echo(
        json.dumps(
            {
                "model": v.id,
                "path": str(out),
                "records": len(usable),
                "feedback_pairs": len(pairs),
                "evaluation": None if result is None else result.as_dict(),
                "installed": install,
                "note": note,
            },
            ensure_ascii=False,
        )
    )


def _decide_and_install(
    settings: Settings,
    out: Path,
    incumbent: Encoder | None,
    result: Comparison | None,
    data: EncoderData,
    *,
    promote: bool,
) -> tuple[str, bool, str]:
    """(manifest status, whether to install it as the default encoder, the note the command prints)."""
    from training.evaluation.compare import MIN_GROUPS

    if incumbent is None:
        status, install = "candidate", promote
        note = "no encoder was in service" + ("; installed as the default" if promote else "")
    elif result is None:
        status, install = "candidate", False
        note = (
            f"not evaluated: {len(data.positives)} needs with an accepted match (need at least {MIN_GROUPS}, half "
            "held out); the encoder in service keeps serving"
        )
    elif not result.promote:
        status, install = "rejected", False
        note = "not better than the encoder in service with 95 % confidence; it keeps serving"
    else:
        status, install = "candidate", promote
        note = "better with 95 % confidence" + (
            "; installed as the default" if promote else "; not installed"
        )
    if install and settings.encoder != "default":
        install = False
        note += f" (not installed: MATCHER_ENCODER is {settings.encoder!r}; point it at {out} to serve it)"
    if install:
        try:
            _install_default_encoder(settings, out)
            status = "active"
        except ValueError as exc:
            install, note = False, f"not installed: {exc}; the encoder in service keeps serving"
    return status, install, note


def _register_encoder(
    settings: Settings,
    out: Path,
    data: EncoderData,
    pairs: list[tuple[str, str, str | None]],
    *,
    usable: int,
    split: tuple[list[int], list[int]],
    params: dict[str, Any],
    result: Comparison | None,
    status: str,
    install: bool,
) -> ModelVersion:
    """Register the trained encoder; an installed one becomes the registry's active encoder."""
    from training.registry import TrainingRegistry

    train_needs, test_needs = split
    registry = TrainingRegistry.for_settings(settings)
    v = registry.register(
        None,
        kind="encoder",
        artefact_dir=out,
        data={
            "resources": usable,
            "needs_with_feedback": len(data.positives),
            "feedback_pairs": len(pairs),
            "pairs_with_rejected_negative": sum(1 for p in pairs if p[2]),
            "train_needs": len(train_needs),
            "test_needs": len(test_needs),
        },
        params=params,
        metrics={} if result is None else result.manifest_metrics(),
        ci={} if result is None else result.manifest_ci(),
        status="candidate" if install else status,
    )
    if install:
        # the registry's active encoder; the one installed before is retired (and can be rolled back to)
        v = registry.activate(v.id)
    return v


def _encoder_in_service(settings):
    """(the encoder the service would load, its id), or (None, None) when none loads."""
    import logging

    from matcher.models.encoder import load_configured_encoder

    try:
        enc = load_configured_encoder(settings)
    except Exception as exc:  # noqa: BLE001 - missing or unloadable: either way nothing serves with it
        logging.getLogger(__name__).warning("no encoder in service: %s", str(exc).strip().splitlines()[:1])
        return None, None
    return enc, enc.model_id


def _compare_encoders(candidate_dir: Path, incumbent, data: EncoderData, test_needs, *, seed: int):
    """nDCG@10 of the match path (lexical + dense fusion, the service's weights) over the store's resources for
    each held-out need, with the candidate and with the incumbent encoder; paired bootstrap CI of the gain."""
    from embeddings.encoders.sentence import load_encoder
    from training.evaluation.compare import compare_scores
    from training.evaluation.match_eval import run_queries, temporary_engine
    from training.evaluation.metrics import per_query

    corpus = {rec["id"]: {"title": rec["title"], "text": rec["text"]} for rec in data.records}
    queries = {f"n{n}": data.need_text[n] for n in test_needs}
    qrels = {f"n{n}": {f"r{r}": 1 for r in data.positives[n]} for n in test_needs}
    scores = []
    for enc in (load_encoder(candidate_dir), incumbent):
        with temporary_engine(corpus, enc) as (engine, ids):
            run, _ = run_queries(engine, queries, ids, k=100)
        scores.append(per_query(run, qrels, "ndcg", 10))
    return compare_scores(scores[0], scores[1], sorted(qrels), seed=seed)


def _install_default_encoder(settings, model_dir: Path) -> None:
    """Copy a model to the default encoder's place after proving it loads; the previous one is kept beside it
    as ``<name>.previous``. Raises ValueError (and changes nothing) when the model does not load."""
    import shutil

    from embeddings.encoders.sentence import load_encoder

    target = Path(settings.default_encoder_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        shutil.copytree(model_dir, tmp, dirs_exist_ok=True)
        enc = load_encoder(tmp)
        vec = enc.encode_queries(["检查模型能否加载 model check"])
        if vec.shape != (1, enc.dimension):
            raise ValueError(f"{model_dir}: the model does not encode")
    except Exception as exc:  # noqa: BLE001 - a model that fails to load in any way is not installed
        shutil.rmtree(tmp, ignore_errors=True)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{model_dir} does not load ({first})") from None
    previous = target.with_name(target.name + ".previous")
    if target.exists():
        shutil.rmtree(previous, ignore_errors=True)
        target.rename(previous)
    tmp.rename(target)


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")

    @app.command("trial")
    def trial(
        act: bool = typer.Option(
            True, "--act/--dry-run", help="carry out the verdict (promote or end the trial) or only show it"
        ),
        stop: bool = typer.Option(False, "--stop", help="end the running trial; the ranker in service stays"),
        tenant: str = typer.Option(None, help="this tenant's trial (default: the shared scope's)"),
    ) -> None:
        """The running ranker trial's evidence and verdict as JSON, of one tenant or of the shared scope (a
        running service also judges it every MATCHER_TRIAL_CHECK_S seconds)."""
        from sqlmodel import Session

        from matcher.cli.errors import CliError
        from matcher.models.registry import SHARED
        from matcher.models.trial import evaluate_trial
        from matcher.settings import Settings
        from matcher.store.db import init_db, make_engine
        from training.registry import TrainingRegistry

        settings = Settings()
        registry = TrainingRegistry.for_settings(settings)
        scope = tenant or SHARED
        if registry.trial("ranker", scope=scope) is None:
            raise CliError(
                "no ranker is on trial (`matcher train ranker` starts one when the evidence is unclear)"
            )
        db = make_engine(settings)
        init_db(db)
        try:
            with Session(db) as session:
                verdict = evaluate_trial(
                    session, registry, scope=scope, act=act and not stop, planned=settings.trial_votes
                )
        finally:
            db.dispose()
        out = {"trial": None if verdict is None else verdict.as_dict()}
        if stop and verdict is not None:
            registry.end_trial(
                "ranker", scope=scope, status="candidate", verdict=verdict.as_dict() | {"stopped": True}
            )
            out["stopped"] = True
        typer.echo(json.dumps(out, ensure_ascii=False))

    @app.command("report")
    def report(
        tenant: str = typer.Option(None, help="one tenant (default: all)"),
        threshold: float = typer.Option(0.5, help="a need whose best match is below this is a gap"),
    ) -> None:
        """The outcome funnel as JSON: per kind and month, rejection reasons, gaps, never-matched resources."""
        from sqlmodel import Session

        from matcher.outcomes.report import funnel
        from matcher.settings import Settings
        from matcher.store.db import init_db, make_engine

        settings = Settings()
        db = make_engine(settings)
        init_db(db)
        with Session(db) as session:
            out = funnel(session, tenant=tenant, threshold=threshold)
        db.dispose()
        typer.echo(json.dumps(out, ensure_ascii=False, default=str))
