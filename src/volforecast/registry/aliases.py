"""Safe promotion: a challenger reaches production only by beating it; every move is logged.

:class:`Registry` moves the aliases, each move with an entry in the promotion log
(:mod:`~volforecast.registry.promotion_log`, which tells how concurrent promoters stay safe).
"""

from __future__ import annotations

import datetime as dt
import getpass
import logging
import socket
from collections.abc import Callable
from typing import Any, TypeVar

import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from volforecast.errors import RegistryError
from volforecast.faults import checkpoint
from volforecast.registry.decision import Decision, compare, live_overdue
from volforecast.registry.names import (
    CHALLENGER,
    LIVE,
    NOT_PROMOTED,
    PRODUCTION,
    TAG_CONVERGED,
    TAG_DATA_END,
    TAG_DECISION,
    TAG_LIVE_SINCE,
    Alias,
)
from volforecast.registry.promotion_log import (
    STAYS,
    LogConflictError,
    PromotionAction,
    PromotionEvent,
    PromotionLog,
)
from volforecast.settings import PromotionSettings

log = logging.getLogger(__name__)

_Moved = TypeVar("_Moved")
MAX_ATTEMPTS = 5


def default_actor() -> str:
    """``user@host``: who moved an alias, when nobody says otherwise."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, as in some containers
        user = "unknown"
    return f"{user}@{socket.gethostname()}"[:100]


def alias_version(client: MlflowClient, name: str, alias: Alias) -> str | None:
    """The version ``alias`` of registered model ``name`` points at; None if none."""
    return aliases_of(client, name).get(alias)


def aliases_of(client: MlflowClient, name: str) -> dict[str, str]:
    """Where each alias of registered model ``name`` points; {} before its first version.

    One registry call for every alias: each of MlflowClient's alias calls first reads the
    registered model anyway (to refuse a prompt), so asking per alias costs twice as many.
    """
    try:
        found = client.get_registered_model(name).aliases
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return {}
        if exc.error_code == "INVALID_PARAMETER_VALUE":
            msg = f"{name!r} is not a registered model's name: {exc.message}"
            raise RegistryError(msg) from exc
        raise
    return {alias: str(version) for alias, version in found.items()}


LossesOf = Callable[[str], pd.DataFrame]
"""Losses of a registered version (by number) on the challenger's test window."""
LiveDaysOf = Callable[[str], int]
"""Live days a waiting challenger (by number) has been judged on so far."""


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

    def alias_version(self, name: str, alias: Alias) -> str | None:
        """The version ``alias`` points at, or None."""
        return aliases_of(self.client, name).get(alias)

    def converged(self, name: str, version: str) -> bool:
        """Whether the version's fit converged (its tag says so)."""
        return _converged(self._version(name, version).tags)

    def consider(
        self,
        name: str,
        version: str,
        challenger: pd.DataFrame,
        losses_of: LossesOf,
        live_days_of: LiveDaysOf | None = None,
    ) -> Decision:
        """Make ``version`` the challenger, then promote it if it beats production.

        ``challenger`` are its losses on its test window; ``losses_of(v)`` gives the losses of
        version ``v`` on the same window. With ``settings.min_live_days`` above 0, a version
        that beats production stays challenger, waiting for live evidence (``Decision.live``;
        the daily job promotes or rejects it, :mod:`volforecast.jobs.live_ab`). While another
        version waits so, ``version`` is judged against production but never made challenger:
        replacing the waiting one would restart its live days at every training, and no A/B
        would ever end. ``live_days_of(v)`` counts the waiting version's live days for the
        reason. Safe to call from two processes at once.
        """
        tags = self._version(name, version).tags or {}  # also: the version exists
        converged = _converged(tags)
        waiting = self._waiting_version(name, version, tags)
        if waiting is None:
            self._retrying(name, lambda: self._register(name, version))
        checkpoint("promotion.after_challenger")
        for _ in range(MAX_ATTEMPTS):
            production = self.alias_version(name, PRODUCTION)
            if production == version:
                return Decision(True, "already in production")
            losses = None if production is None else losses_of(production)
            decision = compare(challenger, losses, converged=converged, settings=self.settings)
            if waiting is not None and decision.promote:
                decision = self._beside(waiting, decision, live_days_of)
            try:
                if decision.promote and production is not None and self.settings.min_live_days:
                    decision = self._wait(name, version, production, decision)
                elif decision.promote:
                    self._move(
                        name, PRODUCTION, version, "promote", decision.reason, decision.metrics,
                        expect=production, candidate=version, known=True,
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

    def promote_live(
        self, name: str, version: str, production: str | None, decision: Decision
    ) -> PromotionEvent | None:
        """Promote waiting challenger ``version`` that beat ``production`` on its live days.

        None, and nothing moved, when ``version`` is no longer challenger (a later training
        replaced it, or it was promoted already) or production is no longer ``production``:
        the daily job decides again on its next run.
        """
        for _ in range(MAX_ATTEMPTS):
            if self.alias_version(name, CHALLENGER) != version:
                return None
            if self.alias_version(name, PRODUCTION) != production:
                return None
            try:
                return self._move(
                    name, PRODUCTION, version, "promote", decision.reason, decision.metrics,
                    expect=production, candidate=version,
                )  # fmt: skip
            except LogConflictError:
                continue
        msg = f"{name}: gave up promoting v{version} after {MAX_ATTEMPTS} concurrent moves"
        raise RegistryError(msg)

    def reject_live(
        self, name: str, version: str, production: str | None, decision: Decision
    ) -> PromotionEvent | None:
        """Reject waiting challenger ``version`` after its live days: logged, alias removed.

        None, and nothing logged, when ``version`` is no longer challenger or production is
        no longer ``production`` (as :meth:`promote_live`).
        """
        for _ in range(MAX_ATTEMPTS):
            if self.alias_version(name, CHALLENGER) != version:
                return None
            if self.alias_version(name, PRODUCTION) != production:
                return None
            # Logged as the challenger alias's removal, as an abandoned version's is, so that
            # replaying the log gives where each alias stands.
            event = PromotionEvent(
                name, self.log.next_seq(name), CHALLENGER, "reject", None, version,
                f"v{version} {decision.reason}", decision.metrics, self.actor, candidate=version,
            )  # fmt: skip
            try:
                with self.log.appending(event):
                    # It stops being challenger with its log entry, or not at all.
                    self.client.delete_registered_model_alias(name, CHALLENGER)
            except LogConflictError:
                continue
            self.client.set_model_version_tag(name, version, TAG_DECISION, NOT_PROMOTED)
            return event
        msg = f"{name}: gave up rejecting v{version} after {MAX_ATTEMPTS} concurrent moves"
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

    def _register(self, name: str, version: str) -> PromotionEvent:
        """Point ``challenger`` at ``version``; a ``live`` version it replaces is retagged."""
        replaced = self.alias_version(name, CHALLENGER)
        event = self._move(
            name, CHALLENGER, version, "register", "registered by a training run", {},
            candidate=version, known=True,
        )  # fmt: skip
        if replaced is not None and replaced != version and self._is_live(name, replaced):
            # Only without live days asked (a waiting challenger is never replaced otherwise).
            self.client.set_model_version_tag(name, replaced, TAG_DECISION, NOT_PROMOTED)
        return event

    def _is_live(self, name: str, version: str) -> bool:
        return (self._version(name, version).tags or {}).get(TAG_DECISION) == LIVE

    def _waiting_version(self, name: str, version: str, tags: dict[str, str]) -> str | None:
        """The other version that waits for live evidence as challenger, if live days are asked.

        ``tags`` are ``version``'s.
        """
        days = self.settings.min_live_days
        if not days:
            return None
        aliases = aliases_of(self.client, name)
        current = aliases.get(CHALLENGER)
        if aliases.get(PRODUCTION) is None or current is None or current == version:
            return None  # nothing to be judged beside: the new version goes on as before
        current_tags = self._version(name, current).tags or {}
        if current_tags.get(TAG_DECISION) != LIVE:
            return None
        since, end = current_tags.get(TAG_LIVE_SINCE), tags.get(TAG_DATA_END)
        if since and end and live_overdue(since, end, days):
            log.warning("%s v%s: its A/B ran past its time; v%s replaces it", name, current,
                        version)  # fmt: skip
            return None
        return current

    def _beside(self, waiting: str, won: Decision, live_days_of: LiveDaysOf | None) -> Decision:
        """A winner that is not made challenger, because ``waiting`` waits for live evidence."""
        days = "?"
        if live_days_of is not None:
            try:
                days = str(live_days_of(waiting))
            except Exception as exc:  # noqa: BLE001  (a count for the reason, not a verdict)
                log.warning("live days of v%s not counted: %s", waiting, exc)
        return Decision(
            False, f"v{waiting} is waiting for live evidence ({days} of "
            f"{self.settings.min_live_days} days); this version was not put beside it "
            f"({won.reason})", won.metrics,
        )  # fmt: skip

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
            if event.alias != PRODUCTION or event.action in STAYS or event.version is None:
                continue
            if event.action == "rollback" and served:
                served.pop()
            if not served or served[-1] != event.version:
                served.append(event.version)
        if not served or served[-1] != current:
            served.append(current)  # an alias moved outside volforecast: start from it
        return served[-2] if len(served) >= 2 else None

    def _move(  # noqa: PLR0913  (the log entry's fields)
        self,
        name: str,
        alias: Alias,
        version: str | None,
        action: PromotionAction,
        reason: str,
        metrics: dict[str, float],
        *,
        expect: str | None = None,
        candidate: str | None = None,
        known: bool = False,
    ) -> PromotionEvent:
        # A reject moves nothing: it logs that production (``version``, maybe None) stays.
        # ``known``: the caller has read the version already, so it is not looked up again.
        moves = action not in STAYS
        if moves and not known:
            self._version(name, str(version))
        seq = self.log.next_seq(name)
        previous = self.alias_version(name, alias)
        if alias == PRODUCTION and (expect is not None or not moves) and previous != expect:
            raise LogConflictError  # judged against a version that no longer serves
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
            candidate=candidate,
        )
        with self.log.appending(event):
            if moves:
                checkpoint(f"promotion.{action}.before_alias_move")
                self.client.set_registered_model_alias(name, alias, str(version))
                checkpoint(f"promotion.{action}.after_alias_move")
                if alias == PRODUCTION and self.alias_version(name, CHALLENGER) == version:
                    self.client.delete_registered_model_alias(name, CHALLENGER)
        return event

    def _record(
        self, name: str, version: str, production: str | None, decision: Decision
    ) -> PromotionEvent:
        reason = f"v{version} not promoted: {decision.reason}"
        return self._move(
            name, PRODUCTION, production, "reject", reason, decision.metrics,
            expect=production, candidate=version,
        )  # fmt: skip

    def _wait(self, name: str, version: str, production: str, won: Decision) -> Decision:
        """Log that winning ``version`` stays challenger until it has beaten production live."""
        days = self.settings.min_live_days
        tags = self._version(name, version).tags or {}
        # Its live days start at the last close it was trained on: forecasts from before
        # would be judged on days it was fitted to.
        since = tags.get(TAG_DATA_END) or dt.datetime.now(dt.UTC).date().isoformat()
        self.client.set_model_version_tag(name, version, TAG_LIVE_SINCE, since)
        waiting = Decision(
            False, f"waiting for {days} live days beside production (since {since}); "
            f"{won.reason}", won.metrics, live=True,
        )  # fmt: skip
        self._move(
            name, PRODUCTION, production, "wait", f"v{version} {waiting.reason}", won.metrics,
            expect=production, candidate=version,
        )  # fmt: skip
        # After its log entry: a run killed in between leaves it pending, and the next
        # training settles it from the entry (volforecast.registry.recovery).
        self.client.set_model_version_tag(name, version, TAG_DECISION, LIVE)
        return waiting


def _converged(tags: dict[str, str] | None) -> bool:
    return bool((tags or {}).get(TAG_CONVERGED, "false").lower() == "true")
