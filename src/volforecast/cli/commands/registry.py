"""``volforecast models``: the MLflow registry, its production versions and promotion log."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from volforecast.cli import (
    ExitCode,
    database_errors,
    engine,
    errors,
    fail,
    options,
    out,
    settings,
)
from volforecast.cli.options import JsonOption, TickersOption
from volforecast.cli.render import show_listing, write_json

if TYPE_CHECKING:
    from volforecast.registry.aliases import Registry
    from volforecast.settings import Settings

app: typer.Typer = typer.Typer(
    help="The MLflow registry: list models, promote or roll back production, read the log.",
    no_args_is_help=True,
)
NameArgument = Annotated[str, typer.Argument(help="Registered model, e.g. garch_volatility_aapl.")]
ReasonOption = Annotated[str, typer.Option(help="Why, for the promotion log.")]


def _registry(given: Settings) -> Registry:
    from volforecast.registry.aliases import Registry  # noqa: PLC0415
    from volforecast.registry.promotion_log import PromotionLog  # noqa: PLC0415
    from volforecast.registry.tracking import connect  # noqa: PLC0415

    store = engine(given)
    with database_errors(store):  # the schema first: the promotion log is a table of ours
        promotions = PromotionLog(store)
    return Registry(connect(given), promotions, given.promotion)


@app.command("list")
def models_list(as_json: JsonOption = False) -> None:
    """Registered models with their production and challenger versions."""
    from volforecast import listings  # noqa: PLC0415
    from volforecast.registry.champion_book import ChampionBook  # noqa: PLC0415
    from volforecast.registry.overview import overview  # noqa: PLC0415

    given = settings()
    with errors():
        registry = _registry(given)
        rows = overview(registry.client)
        champions = {t: c.model for t, c in ChampionBook(registry.log.engine).all().items()}
    listing, payload = listings.models(rows, given.mlflow_tracking_uri_safe, champions)
    show_listing(listing, payload, as_json=as_json,
                 empty="no registered models yet: try `volforecast train --all`")  # fmt: skip


@app.command("champion")
def models_champion(
    tickers: TickersOption = None,
    as_json: JsonOption = False,
    report_json: Annotated[
        Path | None, typer.Option("--report-json", help="Write every decision as JSON.")
    ] = None,
) -> None:
    """Decide each ticker's champion now: the family that answers requests naming no model.

    Every candidate family's production version forecasts the ticker's test window; the
    lowest QLIKE wins, and replaces the sitting champion only when a one-sided
    Diebold-Mariano test gives p at most VOLFORECAST_CHAMPION__MAX_PVALUE. Changes are
    logged (`volforecast models history champion/<TICKER>`). A ticker where a candidate
    cannot be evaluated keeps its champion; exit code 3 says some did.
    """
    from volforecast import listings  # noqa: PLC0415
    from volforecast.jobs.champion import decide_champions  # noqa: PLC0415

    given = settings()
    store = engine(given)
    with errors(), database_errors(store):
        report = decide_champions(store, given, options.split_tickers(tickers))
    listing, payload = listings.champions(report)
    write_json(report_json, payload)
    show_listing(listing, payload, as_json=as_json, empty="no ticker has a production model yet")
    if report.undecided:  # the others are decided and stored; exit 3 as a partial training
        raise typer.Exit(int(ExitCode.PARTIAL))


@app.command("compare")
def models_compare(
    name: NameArgument,
    ticker: Annotated[
        str | None, typer.Option(help="One ticker of a pooled model (default every one).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """The live A/B of a waiting challenger: QLIKE of both versions on the same days.

    With VOLFORECAST_PROMOTION__MIN_LIVE_DAYS=N above 0, a challenger that wins at training
    stays challenger and forecasts beside production every day; after N live days the daily
    job promotes it if it beat production by the training rule, and rejects it otherwise.
    Shows each judged day, the means, the one-sided Diebold-Mariano p and the status
    (waiting k/N days, would promote, not beating production, promoted).
    """
    from volforecast import listings  # noqa: PLC0415
    from volforecast.jobs.live_ab import live_record_of  # noqa: PLC0415
    from volforecast.registry.tracking import connect  # noqa: PLC0415

    given = settings()
    store = engine(given)
    with errors(), database_errors(store), _tracking(given, "the live record"):
        chosen = None if ticker is None else [ticker.strip().upper()]
        record = live_record_of(store, given, connect(given), name, tickers=chosen)
    listing, payload = listings.live_record(record)
    if as_json:
        listings.print_json(payload)
        return
    listing.print(out)


@app.command("live")
def models_live(
    as_of: Annotated[
        dt.datetime | None,
        options.day("--as-of", help="The judged day: prices after it are not read (default all)."),
    ] = None,
    report_json: Annotated[
        Path | None, typer.Option("--report-json", help="Write every outcome as JSON.")
    ] = None,
) -> None:
    """Decide each waiting challenger whose live days are up: promote or reject (daily job).

    A challenger waiting for live evidence is decided once it has
    VOLFORECAST_PROMOTION__MIN_LIVE_DAYS live days: promoted if it beat production on them by
    the training rule, rejected otherwise (no longer challenger, so the next training can
    start a new A/B); each verdict is logged. Before that it keeps waiting and the output
    says why. A promotion a killed run left unlogged, and `live` tags left on versions that
    no longer wait, are repaired first. Running it again for the same day decides nothing
    twice.
    """
    from volforecast.jobs.live_ab import promote_live  # noqa: PLC0415
    from volforecast.registry.tracking import connect  # noqa: PLC0415

    given = settings()
    store = engine(given)
    with errors(), database_errors(store), _tracking(given, "the live A/B's verdicts"):
        report = promote_live(
            store, given, connect(given), as_of=None if as_of is None else as_of.date()
        )
    for warning in report.warnings:
        out.print(f"[yellow]warning:[/] {warning}", highlight=False)
    for settled in report.settled:
        out.print(f"{settled.registered_model} v{settled.version}: recovered: {settled.reason}",
                  highlight=False)  # fmt: skip
    for outcome in report.outcomes:
        word = ("[green]promoted[/]" if outcome.promoted else
                "[red]rejected[/]" if outcome.rejected else "waiting")  # fmt: skip
        out.print(f"{outcome.registered_model} v{outcome.version}: {word}: "
                  f"{outcome.record['reason']}", highlight=False)  # fmt: skip
    for name, why in report.failures.items():
        out.print(f"[yellow]{name}:[/] {why}")
    if not report.outcomes and not report.failures:
        out.print("no challenger waits for live evidence")
    write_json(report_json, report.to_dict())
    if report.failures:
        raise typer.Exit(int(ExitCode.PARTIAL))


@contextmanager
def _tracking(given: Settings, during: str) -> Iterator[None]:
    """A tracking server that stops answering: one sentence and exit code 4, as training's."""
    from volforecast.jobs.train import given_up_on  # noqa: PLC0415
    from volforecast.registry.deadline import tracking_deadline  # noqa: PLC0415
    from volforecast.registry.tracking import retry_policy  # noqa: PLC0415

    with (
        tracking_deadline(given.mlflow_deadline_s, retry_policy(given)),
        given_up_on(given, during, "nothing was decided; run it again once the server answers"),
    ):
        yield


@app.command("promote")
def models_promote(
    name: NameArgument,
    version: Annotated[str, typer.Argument(help="The version to put in production.")],
    reason: ReasonOption = "promoted by hand",
) -> None:
    """Point production at a version by hand (one whose fit converged); logged."""
    with errors():
        event = _registry(settings()).promote(name, version, reason)
    out.print(f"{name}: production v{event.previous_version or '-'} -> v{event.version}")


@app.command("rollback")
def models_rollback(name: NameArgument, reason: ReasonOption = "rolled back by hand") -> None:
    """Point production back at the version it served before the current one; logged."""
    with errors():
        event = _registry(settings()).rollback(name, reason)
    out.print(f"{name}: production v{event.previous_version} -> v{event.version} (rolled back)")


@app.command("history")
def models_history(
    name: NameArgument,
    at: Annotated[
        dt.datetime | None,
        typer.Option(help="Also say which version served at this time (UTC), e.g. 2026-11-20."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """The promotion log of a model: every alias move and decision, oldest first."""
    from volforecast import listings  # noqa: PLC0415
    from volforecast.registry.names import CHAMPION, PRODUCTION, LoggedAlias  # noqa: PLC0415
    from volforecast.registry.promotion_log import PromotionLog  # noqa: PLC0415

    store = engine(settings())
    with errors(), database_errors(store):
        promotions = PromotionLog(store)
        events = promotions.events(name)
        alias: LoggedAlias = CHAMPION if name.startswith(f"{CHAMPION}/") else PRODUCTION
        served = promotions.served_on(name, at, alias) if at is not None else None
    if not events:
        fail(f"the promotion log has nothing for {name}", ExitCode.ERROR)
    listing, payload = listings.promotion_log(name, events, at, served)
    if as_json:
        listings.print_json(payload)
        return
    listing.print(out)
    if at is not None:
        when = f"{at:%Y-%m-%d %H:%M}"
        if alias == CHAMPION:
            out.print(f"champion at {when}: {served}" if served else f"no champion at {when}")
        else:
            out.print(f"served in production at {when}: v{served}" if served else
                      f"nothing was in production at {when}")  # fmt: skip
