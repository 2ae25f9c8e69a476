r"""Safe promotion: a challenger reaches production only by beating it; every move is logged.

The MLflow registry knows where an alias points now; ``ml.model_promotions`` knows every move,
who made it, when and why, so "which version served on date X" has an answer and a rollback
knows where to go back to.

Concurrency: each registered model's log entries carry a sequence number that is unique in the
database. A promoter reads the last entry, decides, appends entry ``n + 1`` in a transaction,
moves the alias, and only then commits. Two promoters that read the same entry cannot both
append the next one: the second fails on the unique key (PostgreSQL blocks it until the first
commits; SQLite serialises writers), re-reads the new production version, and decides again
against it. So two training runs never promote twice on the strength of one comparison. A
process killed before the commit leaves the log as it was; if it had already moved the alias,
the next entry still records the truth, since its previous version is read from the registry,
not from the log.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import logging
import math
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sqlalchemy import Connection, Engine, Table, func, insert, select
from sqlalchemy.exc import IntegrityError

from volforecast.data.db import UNAVAILABLE_ERRORS, unavailable
from volforecast.data.tables import ModelPromotion
from volforecast.errors import RegistryError
from volforecast.evaluation.stats import diebold_mariano
from volforecast.faults import checkpoint
from volforecast.registry.names import (
    CHALLENGER,
    PRODUCTION,
    TAG_CONVERGED,
    TAG_MODEL_TYPE,
    TAG_TICKER,
    TAG_TICKERS,
)
from volforecast.registry.serving import registered_models
from volforecast.settings import PromotionSettings

log = logging.getLogger(__name__)

PROMOTIONS = cast("Table", ModelPromotion.__table__)
_Moved = TypeVar("_Moved")
MAX_ATTEMPTS = 5


def default_actor() -> str:
    """``user@host``: who moved an alias, when nobody says otherwise."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, as in some containers
        user = "unknown"
    return f"{user}@{socket.gethostname()}"[:100]


# ---------------------------------------------------------------- the decision (pure)


@dataclass(frozen=True)
class Decision:
    """Whether a challenger replaces production, and the figures that decided it."""

    promote: bool
    reason: str
    metrics: dict[str, float] = field(default_factory=dict)


def compare(
    challenger: pd.DataFrame,
    production: pd.DataFrame | None,
    *,
    converged: bool,
    settings: PromotionSettings,
) -> Decision:
    r"""Decide on a challenger from both versions' QLIKE losses on the same test window.

    Parameters
    ----------
    challenger, production : pandas.DataFrame
        One row per ticker and forecast origin: ``ticker, origin_date, loss`` (QLIKE at the
        decision's horizon and proxy). ``production`` is None when there is no production
        version yet.
    converged : bool
        Whether the challenger's fit converged; a version that did not is never promoted.
    settings : PromotionSettings
        The margin and the significance asked for.

    Returns
    -------
    Decision
        ``metrics`` holds both mean losses, their ratio, the Diebold–Mariano statistic and
        its one-sided p-value (challenger better), and the number of origins compared.

    Notes
    -----
    The comparison uses the origins both versions forecast. With several tickers (a pooled
    model) the losses are averaged across tickers per date first, so the Diebold–Mariano test
    runs on one time series and cross-sectional correlation cannot inflate its significance.
    """
    if not converged:
        return Decision(False, "its fit did not converge, so it can never be promoted")
    if production is None:
        mean = float(challenger["loss"].mean()) if len(challenger) else math.nan
        return Decision(True, "first version: nothing in production yet", {"qlike": mean})
    both = challenger.merge(
        production, on=["ticker", "origin_date"], suffixes=("_challenger", "_production")
    )
    if both.empty:
        return Decision(False, "the two versions share no forecast origin to compare on")
    a, b = both["loss_challenger"], both["loss_production"]
    metrics = {
        "qlike_challenger": float(a.mean()),
        "qlike_production": float(b.mean()),
        "qlike_ratio": float(a.mean() / b.mean()),
        "n_origins": float(len(both)),
    }
    by_date = both.groupby("origin_date")[["loss_challenger", "loss_production"]].mean()
    if len(by_date) >= 10:
        test = diebold_mariano(
            by_date["loss_challenger"].to_numpy(), by_date["loss_production"].to_numpy()
        )
        # One-sided: evidence that the challenger's loss is smaller (a negative statistic).
        one_sided = test.pvalue / 2 if test.statistic < 0 else 1 - test.pvalue / 2
        metrics |= {"dm_statistic": test.statistic, "dm_pvalue": float(one_sided)}
    else:
        metrics["dm_pvalue"] = math.nan
    threshold = metrics["qlike_production"] * (1.0 - settings.margin)
    better = metrics["qlike_challenger"] < threshold
    figures = (
        f"QLIKE {metrics['qlike_challenger']:.4f} vs {metrics['qlike_production']:.4f} "
        f"(ratio {metrics['qlike_ratio']:.3f}, DM p = {metrics['dm_pvalue']:.3g}, "
        f"{len(both)} origins)"
    )
    if not better:
        margin = f" by the margin of {settings.margin:.1%}" if settings.margin else ""
        return Decision(False, f"does not beat production{margin}: {figures}", metrics)
    significant = settings.max_pvalue >= 1.0 or metrics["dm_pvalue"] <= settings.max_pvalue
    if not significant:
        return Decision(
            False, f"better, but not significantly (p > {settings.max_pvalue}): {figures}", metrics
        )
    return Decision(True, f"beats production: {figures}", metrics)


# ---------------------------------------------------------------- the log


@dataclass(frozen=True)
class PromotionEvent:
    """One row of the promotion log."""

    registered_model: str
    seq: int
    alias: str
    action: str
    version: str | None
    previous_version: str | None
    reason: str
    metrics: dict[str, float]
    actor: str
    created_at: dt.datetime
    candidate: str | None = None
    """The version a training run judged (``None`` for a move by hand)."""


class LogConflictError(Exception):
    """Another promoter appended the entry this one meant to."""


class PromotionLog:
    """The append-only log in ``ml.model_promotions``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def events(self, registered_model: str | None = None) -> list[PromotionEvent]:
        """Every entry, oldest first, for one registered model or all."""
        query = select(PROMOTIONS).order_by(PROMOTIONS.c.registered_model, PROMOTIONS.c.seq)
        if registered_model is not None:
            query = query.where(PROMOTIONS.c.registered_model == registered_model)
        try:
            with self.engine.connect() as connection:
                rows = connection.execute(query).mappings().all()
        except UNAVAILABLE_ERRORS as exc:
            raise unavailable(self.engine, exc) from exc
        return [_event(row) for row in rows]

    def served_on(self, registered_model: str, when: dt.datetime) -> str | None:
        """The version ``production`` pointed at, at ``when`` (None before the first)."""
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        served = None
        for event in self.events(registered_model):
            if event.alias == PRODUCTION and event.created_at <= when:
                served = event.version if event.action != "reject" else served
        return served

    def last_seq(self, connection: Connection, registered_model: str) -> int:
        """The sequence number of the newest entry (0 when there is none)."""
        query = select(func.max(PROMOTIONS.c.seq)).where(
            PROMOTIONS.c.registered_model == registered_model
        )
        return int(connection.execute(query).scalar() or 0)

    @contextmanager
    def appending(self, event: PromotionEvent) -> Iterator[None]:
        """Insert ``event`` in a transaction that commits after the ``with`` body.

        The body moves the alias; if it raises, nothing is logged. Raises :class:`LogConflictError`
        when another promoter took the sequence number first.
        """
        row = {
            "registered_model": event.registered_model,
            "seq": event.seq,
            "alias": event.alias,
            "action": event.action,
            "version": event.version,
            "previous_version": event.previous_version,
            "candidate": event.candidate,
            "reason": event.reason[:2000],
            "metrics": json.dumps(_finite(event.metrics)),
            "actor": event.actor[:100],
            "created_at": event.created_at,
        }
        try:
            with self.engine.begin() as connection:
                try:
                    connection.execute(insert(PROMOTIONS).values(**row))
                except IntegrityError as exc:
                    raise LogConflictError from exc
                yield
        except UNAVAILABLE_ERRORS as exc:
            raise unavailable(self.engine, exc) from exc


def _finite(metrics: dict[str, float]) -> dict[str, float | None]:
    return {k: (float(v) if math.isfinite(v) else None) for k, v in metrics.items()}


def _event(row: Any) -> PromotionEvent:
    created = row["created_at"]
    if created.tzinfo is None:  # SQLite gives naive datetimes back; they were written in UTC
        created = created.replace(tzinfo=dt.UTC)
    metrics = {
        k: (math.nan if v is None else float(v)) for k, v in json.loads(row["metrics"]).items()
    }
    return PromotionEvent(
        registered_model=row["registered_model"],
        seq=int(row["seq"]),
        alias=row["alias"],
        action=row["action"],
        version=row["version"],
        previous_version=row["previous_version"],
        reason=row["reason"],
        metrics=metrics,
        actor=row["actor"],
        created_at=created,
        candidate=row["candidate"],
    )


# ---------------------------------------------------------------- the registry's aliases


LossesOf = Callable[[str], pd.DataFrame]
"""Losses of a registered version (by number) on the challenger's test window."""


class Registry:
    """Aliases of registered models, moved only with an entry in the promotion log."""

    def __init__(
        self,
        client: MlflowClient,
        log_: PromotionLog,
        settings: PromotionSettings,
        actor: str | None = None,
    ) -> None:
        self.client = client
        self.log = log_
        self.settings = settings
        self.actor = actor or default_actor()

    def alias_version(self, name: str, alias: str) -> str | None:
        """The version ``alias`` points at, or None."""
        try:
            return str(self.client.get_model_version_by_alias(name, alias).version)
        except MlflowException as exc:
            if exc.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
                return None
            raise

    def converged(self, name: str, version: str) -> bool:
        """Whether the version's fit converged (its tag says so)."""
        tags = self._version(name, version).tags or {}
        return bool(tags.get(TAG_CONVERGED, "false").lower() == "true")

    def consider(
        self, name: str, version: str, challenger: pd.DataFrame, losses_of: LossesOf
    ) -> Decision:
        """Make ``version`` the challenger, then promote it if it beats production.

        ``challenger`` are its losses on its test window; ``losses_of(v)`` gives the losses of
        version ``v`` on the same window. Safe to call from two processes at once.
        """
        converged = self.converged(name, version)
        self._retrying(
            name,
            lambda: self._move(
                name,
                CHALLENGER,
                version,
                "register",
                "registered by a training run",
                {},
                candidate=version,
            ),
        )
        checkpoint("promotion.after_challenger")
        for _ in range(MAX_ATTEMPTS):
            production = self.alias_version(name, PRODUCTION)
            if production == version:
                return Decision(True, "already in production")
            losses = None if production is None else losses_of(production)
            decision = compare(challenger, losses, converged=converged, settings=self.settings)
            try:
                if decision.promote:
                    self._move(
                        name, PRODUCTION, version, "promote", decision.reason, decision.metrics,
                        expect=production, candidate=version,
                    )  # fmt: skip
                else:
                    self._record(name, version, production, decision)
            except LogConflictError:
                log.info("%s: another run moved an alias meanwhile; deciding again", name)
                continue
            log.info(
                "%s v%s %s: %s", name, version,
                "promoted to production" if decision.promote else "stays challenger",
                decision.reason,
            )  # fmt: skip
            return decision
        msg = f"{name}: gave up promoting v{version} after {MAX_ATTEMPTS} concurrent moves"
        raise RegistryError(msg)

    def record_not_promoted(self, name: str, version: str, decision: Decision) -> None:
        """Log that ``version`` stays out of production for ``decision``'s reason."""
        self._retrying(
            name,
            lambda: self._record(name, version, self.alias_version(name, PRODUCTION), decision),
        )

    def promote(self, name: str, version: str, reason: str = "promoted by hand") -> PromotionEvent:
        """Point ``production`` at ``version`` by hand; one that did not converge is refused."""
        if not self.converged(name, version):
            msg = f"{name} v{version} did not converge, so it cannot be promoted"
            raise RegistryError(msg)
        return self._retrying(
            name, lambda: self._move(name, PRODUCTION, version, "promote", reason, {})
        )

    def rollback(self, name: str, reason: str = "rolled back by hand") -> PromotionEvent:
        """Point ``production`` back at the version it served before the current one."""

        def attempt() -> PromotionEvent:
            current = self.alias_version(name, PRODUCTION)
            if current is None:
                msg = f"{name} has no production version to roll back"
                raise RegistryError(msg)
            target = self._before(name, current)
            if target is None:
                msg = f"{name}: the log has no production version before v{current}"
                raise RegistryError(msg)
            return self._move(name, PRODUCTION, target, "rollback", reason, {}, expect=current)

        return self._retrying(name, attempt)

    # ------------------------------------------------------------ internals

    @staticmethod
    def _retrying(name: str, move: Callable[[], _Moved]) -> _Moved:
        for _ in range(MAX_ATTEMPTS):
            try:
                return move()
            except LogConflictError:
                continue
        msg = f"{name}: {MAX_ATTEMPTS} concurrent alias moves in a row; try again"
        raise RegistryError(msg)

    def _version(self, name: str, version: str) -> Any:
        try:
            return self.client.get_model_version(name, version)
        except MlflowException as exc:
            msg = f"{name} has no version {version}: {exc.message}"
            raise RegistryError(msg) from exc

    def _before(self, name: str, current: str) -> str | None:
        # Replay the log as a stack: a promotion pushes a version, a rollback pops one, so
        # repeated rollbacks walk further back instead of undoing each other.
        served: list[str] = []
        for event in self.log.events(name):
            if event.alias != PRODUCTION or event.action == "reject" or event.version is None:
                continue
            if event.action == "rollback":
                if served:
                    served.pop()
                if not served or served[-1] != event.version:
                    served.append(event.version)
            elif not served or served[-1] != event.version:
                served.append(event.version)
        if not served or served[-1] != current:
            served.append(current)  # an alias moved outside volforecast: start from it
        return served[-2] if len(served) >= 2 else None

    def _move(  # noqa: PLR0917  (mirrors the log entry's fields)
        self,
        name: str,
        alias: str,
        version: str,
        action: str,
        reason: str,
        metrics: dict[str, float],
        *,
        expect: str | None = None,
        candidate: str | None = None,
    ) -> PromotionEvent:
        self._version(name, version)
        with self.log.engine.connect() as connection:
            seq = self.log.last_seq(connection, name) + 1
        previous = self.alias_version(name, alias)
        if alias == PRODUCTION and expect is not None and previous != expect:
            raise LogConflictError
        event = PromotionEvent(
            registered_model=name,
            seq=seq,
            alias=alias,
            action=action,
            version=version,
            previous_version=previous,
            reason=reason,
            metrics=metrics,
            actor=self.actor,
            created_at=dt.datetime.now(dt.UTC),
            candidate=candidate,
        )
        with self.log.appending(event):
            checkpoint(f"promotion.{action}.before_alias_move")
            self.client.set_registered_model_alias(name, alias, version)
            checkpoint(f"promotion.{action}.after_alias_move")
            if alias == PRODUCTION and self.alias_version(name, CHALLENGER) == version:
                self.client.delete_registered_model_alias(name, CHALLENGER)
        return event

    def _record(
        self, name: str, version: str, production: str | None, decision: Decision
    ) -> PromotionEvent:
        with self.log.engine.connect() as connection:
            seq = self.log.last_seq(connection, name) + 1
        if self.alias_version(name, PRODUCTION) != production:
            raise LogConflictError  # judged against a version that no longer serves
        event = PromotionEvent(
            registered_model=name,
            seq=seq,
            alias=PRODUCTION,
            action="reject",
            version=production,
            previous_version=production,
            reason=f"v{version} not promoted: {decision.reason}",
            metrics=decision.metrics,
            actor=self.actor,
            created_at=dt.datetime.now(dt.UTC),
            candidate=version,
        )
        with self.log.appending(event):
            pass
        return event


def losses_frame(ticker: str, dates: pd.DatetimeIndex, losses: np.ndarray) -> pd.DataFrame:
    """The ``ticker, origin_date, loss`` layout :func:`compare` reads."""
    return pd.DataFrame({"ticker": ticker, "origin_date": dates, "loss": losses})


@dataclass(frozen=True)
class ModelSummary:
    """One registered model as ``volforecast models list`` shows it."""

    name: str
    model_type: str
    serves: str
    """The ticker, or ``N tickers`` for a pooled model."""
    latest: str | None
    production: str | None
    challenger: str | None
    production_qlike: float | None


def overview(client: MlflowClient) -> list[ModelSummary]:
    """Every volforecast registered model with its aliases, by name."""
    summaries = []
    for model in registered_models(client):
        aliases = {alias: str(version) for alias, version in (model.aliases or {}).items()}
        latest = max((int(v.version) for v in model.latest_versions or []), default=None)
        production = aliases.get(PRODUCTION)
        qlike = None
        serves = "?"
        model_type = model.name.split("_volatility_")[0].upper()
        if latest is not None:
            shown = client.get_model_version(model.name, str(production or latest))
            tags = shown.tags or {}
            serves = tags.get(TAG_TICKER) or f"{len(tags.get(TAG_TICKERS, '').split(','))} tickers"
            if TAG_TICKERS not in tags and TAG_TICKER not in tags:
                serves = "?"
            model_type = tags.get(TAG_MODEL_TYPE, model_type)
            if production is not None and "metric.qlike_h1_range" in tags:
                qlike = float(tags["metric.qlike_h1_range"])
        summaries.append(
            ModelSummary(
                model.name,
                model_type,
                serves,
                None if latest is None else str(latest),
                production,
                aliases.get(CHALLENGER),
                qlike,
            )
        )
    return sorted(summaries, key=lambda s: s.name)
