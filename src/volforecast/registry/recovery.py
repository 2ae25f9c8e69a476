"""Versions a killed training run left undecided: found at the next run, and settled.

A training run registers a version tagged ``volforecast.decision = pending`` with its job
token, stores its metrics, decides (moving aliases with an entry in ``ml.model_promotions``
that names the version as its candidate) and only then tags the decision. A run killed
anywhere in between leaves the tag at ``pending``; its lease (:mod:`volforecast.data.leases`)
died with it. The next run settles every such version before it trains, from the log, which
is the truth:

* the log holds a decision for it: the decision stands, only the tag was missing;
* production points at it without a log entry (killed between the alias move and the log's
  commit): the promotion is recorded, marked as recovered;
* otherwise it is **abandoned**: an ``abandon`` entry is logged, the ``challenger`` alias is
  removed if it points at the version, and its run is marked killed. The fingerprint check
  ignores abandoned versions, so the run that found it trains that model again and judges the
  new version like any other: production never keeps an old model just because a run died.

Runs a killed job left ``RUNNING`` without a version (killed while logging its model) are
marked killed as well. Versions of a job that is still alive are left alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

from mlflow import MlflowClient
from mlflow.entities import RunStatus
from sqlalchemy import Engine

from volforecast.data.leases import is_alive
from volforecast.registry.names import (
    ABANDONED,
    CHALLENGER,
    EXPERIMENT_PREFIX,
    LIVE,
    NOT_PROMOTED,
    PENDING,
    PRODUCTION,
    PROMOTED,
    TAG_DECISION,
    TAG_JOB,
    Alias,
)
from volforecast.registry.promotion_log import LogConflictError, PromotionEvent, PromotionLog
from volforecast.registry.tracking import paged

log = logging.getLogger(__name__)

Settlement = Literal["decided", "promoted", "abandoned", "undecided"]
DECIDED = {"promote": PROMOTED, "reject": NOT_PROMOTED, "wait": LIVE, "abandon": ABANDONED}
"""The decision tag that each kind of log entry naming a candidate stands for."""
MAX_ATTEMPTS = 5
RUNNING, KILLED = RunStatus.to_string(RunStatus.RUNNING), RunStatus.to_string(RunStatus.KILLED)


@dataclass(frozen=True)
class Recovered:
    """One version settled after its training run died."""

    registered_model: str
    version: str
    settlement: Settlement
    reason: str


def recover(client: MlflowClient, promotions: PromotionLog, actor: str) -> list[Recovered]:
    """Settle every version whose training run died before deciding it; returns what was done."""
    engine = promotions.engine
    settled = []
    pending = f"tags.`{TAG_DECISION}` = '{PENDING}'"
    # Listed in full before any is settled: settling changes the tag the search is by.
    for version in list(paged(client.search_model_versions, pending)):
        token = (version.tags or {}).get(TAG_JOB)
        if token and is_alive(engine, token):
            continue
        settled.append(_settle(client, promotions, version, actor))
        log.warning("%s v%s: %s", settled[-1].registered_model, settled[-1].version,
                    settled[-1].reason)  # fmt: skip
    _end_dead_runs(client, engine)
    return settled


def _alias(client: MlflowClient, name: str, alias: Alias) -> str | None:
    aliases = client.get_registered_model(name).aliases or {}
    target = aliases.get(alias)
    return None if target is None else str(target)


def _settle(client: MlflowClient, promotions: PromotionLog, version: Any, actor: str) -> Recovered:
    name, number = str(version.name), str(version.version)
    for _ in range(MAX_ATTEMPTS):
        events = promotions.events(name)
        # Its own decision, or a promotion by hand (which names no candidate).
        judged = [
            e for e in events
            if (e.candidate == number and e.action in DECIDED)
            or (e.action == "promote" and e.alias == PRODUCTION and e.version == number)
        ]  # fmt: skip
        if judged:
            settlement: Settlement = "decided"
            tag, reason = DECIDED[judged[-1].action], f"decided ({judged[-1].action}) before"
            break
        event = _entry(client, name, number, events, actor)
        try:
            with promotions.appending(event):
                # As a promotion by a training run would have, the version stops being
                # challenger; an abandoned one stops being anything.
                if _alias(client, name, CHALLENGER) == number:
                    client.delete_registered_model_alias(name, CHALLENGER)
        except LogConflictError:
            continue  # another run appended meanwhile: read the log again
        settlement = "promoted" if event.action == "promote" else "abandoned"
        tag, reason = DECIDED[event.action], event.reason
        break
    else:
        reason = (
            f"still undecided after {MAX_ATTEMPTS} concurrent log entries; the next run retries"
        )
        return Recovered(name, number, "undecided", reason)
    client.set_model_version_tag(name, number, TAG_DECISION, tag)
    if version.run_id and client.get_run(version.run_id).info.status == RUNNING:
        client.set_terminated(version.run_id, KILLED)
    return Recovered(name, number, settlement, reason)


def _entry(
    client: MlflowClient, name: str, number: str, events: list[PromotionEvent], actor: str
) -> PromotionEvent:
    """The log entry that settles an undecided version, from where the aliases stand."""
    seq = max((e.seq for e in events), default=0) + 1
    if _alias(client, name, PRODUCTION) == number:
        served = [e.version for e in events if e.alias == PRODUCTION and e.version is not None]
        return PromotionEvent(
            name, seq, PRODUCTION, "promote", number, served[-1] if served else None,
            f"recovered: a training run moved production to v{number} and was stopped "
            "before logging it", {}, actor, candidate=number,
        )  # fmt: skip
    challenger = _alias(client, name, CHALLENGER)
    return PromotionEvent(
        name, seq, CHALLENGER, "abandon", None if challenger == number else challenger,
        challenger, f"abandoned: v{number}'s training run was stopped before deciding it; "
        "the next training judges a new version", {}, actor, candidate=number,
    )  # fmt: skip


def _end_dead_runs(client: MlflowClient, engine: Engine) -> None:
    """Mark killed the runs still ``RUNNING`` whose job is dead (killed before registering)."""
    experiments = [
        e.experiment_id
        for e in client.search_experiments(filter_string=f"name LIKE '{EXPERIMENT_PREFIX}%'")
    ]
    if not experiments:
        return
    running = client.search_runs(
        experiments, filter_string="attributes.status = 'RUNNING'", max_results=1000
    )
    for run in running:
        token = run.data.tags.get(TAG_JOB)
        if token and not is_alive(engine, token):
            client.set_terminated(run.info.run_id, KILLED)
            log.warning("run %s of a stopped training job marked killed", run.info.run_id)
