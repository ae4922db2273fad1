"""`matcher train ranker|encoder` and `matcher report`: learn from outcomes, register the models, read the funnel."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import typer

train_app = typer.Typer(help="Train models from the store's data and feedback; register them.", no_args_is_help=True)

MIN_ENCODER_RECORDS = 50


def _incumbent(registry):
    from matcher.ranker import TransparentRanker
    from training.registry import ModelArtefactError

    try:
        return registry.load_active("ranker") or TransparentRanker()
    except ModelArtefactError:
        return TransparentRanker()


@train_app.command("ranker")
def train_ranker(
    qrels: Path = typer.Option(None, help="a BEIR-layout set to learn from instead of logged feedback"),
    split: str = typer.Option("dev", help="qrels split (with --qrels)"),
    promote: bool = typer.Option(True, "--promote/--no-promote", help="activate it when it wins its evaluation"),
    model: str = typer.Option("logistic", help="logistic | boosting"),
    objective: str = typer.Option("pointwise", help="pointwise | pairwise"),
    eta: float = typer.Option(1.0, help="position-bias exponent: propensity = (1/position)^eta"),
    seed: int = typer.Option(0),
) -> None:
    """Fit a calibrated ranker, compare it with the ranker in service on held-out queries, register it, and
    activate it only when the 95 % lower bound of its nDCG@10 gain is above zero."""
    from sqlmodel import Session

    from matcher.cli import CliError
    from matcher.db import init_db, make_engine
    from matcher.settings import Settings
    from training.datasets import from_feedback
    from training.evaluate import NotEnoughData, train_and_compare
    from training.registry import ModelRegistry

    settings = Settings()
    registry = ModelRegistry.for_settings(settings)
    incumbent = _incumbent(registry)
    if qrels is not None:
        data, source = _qrels_rows(settings, qrels, split), {"qrels": str(qrels), "split": split}
    else:
        db = make_engine(settings)
        init_db(db)
        with Session(db) as session:
            data = from_feedback(session)
        db.dispose()
        source = {"feedback": settings.sqlalchemy_url.split("///")[-1]}
    params = {"model": model, "objective": objective, "eta": 0.0 if qrels is not None else eta}
    try:
        ranker, result, split_info = train_and_compare(data, incumbent, params=params, seed=seed)
    except NotEnoughData as exc:
        raise CliError(str(exc)) from None
    except ValueError as exc:
        raise CliError(f"cannot train: {exc}") from None
    v = registry.register(
        ranker,
        data=source | {"rows": len(data), "lists": data.n_groups, "positives": data.n_positive} | split_info,
        params=ranker.get_params() | {"incumbent": str(incumbent.version)},
        metrics={"ndcg@10": round(result.candidate, 4), "ndcg@10_incumbent": round(result.incumbent, 4),
                 "queries": result.queries},
        ci={"diff": round(result.diff, 4), "low": round(result.ci_low, 4), "high": round(result.ci_high, 4),
            "level": 0.95},
        status="candidate" if result.promote else "rejected",
    )
    activated = False
    if result.promote and promote:
        registry.activate(v.id)
        activated = True
    out = {"model": v.id, "evaluation": result.as_dict(), "activated": activated,
           "note": None if activated else ("not better than the ranker in service with 95 % confidence"
                                           if not result.promote else "registered; activate with --promote "
                                           "or POST /v1/models/{id}/activate")}
    typer.echo(json.dumps(out, ensure_ascii=False))


def _qrels_rows(settings, dataset: Path, split: str):
    from matcher.cli import CliError
    from matcher.encoding import load_configured_encoder
    from matcher.evaluation import build_engine
    from training.beir import BeirFormatError, load_beir
    from training.datasets import from_qrels

    if not dataset.is_dir():
        raise CliError(f"no dataset directory at {dataset}")
    try:
        corpus, queries, qrels = load_beir(dataset, split)
    except BeirFormatError as exc:
        raise CliError(str(exc)) from None
    queries = {q: t for q, t in queries.items() if q in qrels}
    encoder = load_configured_encoder(settings)
    with tempfile.TemporaryDirectory(prefix="parkmatch-train-") as tmp:
        engine, ids = build_engine(corpus, encoder, Path(tmp))
        try:
            return from_qrels(engine, queries, qrels, ids)
        finally:
            engine.close()
            engine.db.dispose()


@train_app.command("encoder")
def train_encoder(
    epochs: int = typer.Option(None, help="training epochs (default: the recipe's)"),
    dim: int = typer.Option(256),
    output: Path = typer.Option(None, help="model directory (default: data_dir/models/encoder-<version>)"),
) -> None:
    """Train the static embedding model on the store's resources (and, when present, accepted feedback as
    need -> resource pairs) and register it. Point MATCHER_ENCODER at it (or copy it to the default place) and
    reindex to serve it."""
    from datetime import UTC, datetime

    from sqlmodel import Session, select

    from matcher.cli import CliError
    from matcher.db import init_db, make_engine
    from matcher.models import Feedback, Need, Resource
    from matcher.settings import Settings
    from training.encoder import train_static_encoder
    from training.registry import ModelRegistry

    settings = Settings()
    db = make_engine(settings)
    init_db(db)
    with Session(db) as session:
        resources = list(session.exec(select(Resource).where(Resource.status == "active")))
        records = [
            {"id": f"r{r.id}", "title": r.title, "text": r.description,
             "keywords": list((r.details or {}).get("keywords") or [])}
            for r in resources
        ]
        pairs = 0
        accepted = session.exec(
            select(Feedback).where(Feedback.action.in_(("accepted", "deal")), Feedback.need_id.is_not(None))
        )
        by_id = {r.id: r for r in resources}
        for fb in accepted:
            need, res = session.get(Need, fb.need_id), by_id.get(fb.resource_id)
            if need is None or res is None:
                continue
            # the need as the title of the resource's text: the trainer's title -> text pairs learn the link
            records.append({"id": f"fb{fb.id}", "title": need.title + "。" + need.description, "text": res.description})
            pairs += 1
    db.dispose()
    usable = [r for r in records if (r["text"] or "").strip()]
    if len(usable) < MIN_ENCODER_RECORDS:
        raise CliError(
            f"too little data to train an encoder: {len(usable)} resources with a description "
            f"(need at least {MIN_ENCODER_RECORDS}); import more resources first"
        )
    stamp = f"{datetime.now(UTC):%Y%m%d-%H%M%S}"
    out = output or settings.models_dir / f"encoder-{stamp}"
    try:
        train_static_encoder(usable, out, dim=dim, epochs=epochs, show_progress=False)
    except ValueError as exc:
        raise CliError(f"cannot train the encoder: {exc}") from None
    v = ModelRegistry.for_settings(settings).register(
        None, kind="encoder", artefact_dir=out,
        data={"resources": len(resources), "feedback_pairs": pairs}, params={"dim": dim, "epochs": epochs},
    )
    typer.echo(json.dumps({"model": v.id, "path": str(out), "records": len(usable), "feedback_pairs": pairs},
                          ensure_ascii=False))


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")

    @app.command("report")
    def report(
        tenant: str = typer.Option(None, help="one tenant (default: all)"),
        threshold: float = typer.Option(0.5, help="a need whose best match is below this is a gap"),
    ) -> None:
        """The outcome funnel as JSON: per kind and month, rejection reasons, gaps, never-matched resources."""
        from sqlmodel import Session

        from matcher.db import init_db, make_engine
        from matcher.report import funnel
        from matcher.settings import Settings

        settings = Settings()
        db = make_engine(settings)
        init_db(db)
        with Session(db) as session:
            out = funnel(session, tenant=tenant, threshold=threshold)
        db.dispose()
        typer.echo(json.dumps(out, ensure_ascii=False, default=str))
