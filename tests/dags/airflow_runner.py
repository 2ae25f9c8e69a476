"""Run inside the Airflow environment (not volforecast's): describe the DAGs, or test one.

    python airflow_runner.py describe DAGS_FOLDER
    python airflow_runner.py test DAGS_FOLDER DAG_ID [--conf JSON] [--logical-date ISO|none]
        [--retry-delay-s N] [--run-after ISO]
    python airflow_runner.py assets DAGS_FOLDER

``assets`` lists the asset events recorded and the DAG runs they queued for the scheduler.

A test of a logical date that already has a run runs it again (the earlier run is deleted
first, as clearing it would).

Prints one JSON line last; the tests in this folder read it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Any

from airflow.dag_processing.dagbag import BundleDagBag


def _bag(folder: str) -> BundleDagBag:
    # As Airflow's DAG processor does, the bundle (the dags folder) goes on sys.path, so the
    # DAG files can import their helper module. Examples: AIRFLOW__CORE__LOAD_EXAMPLES=False.
    return BundleDagBag(dag_folder=folder, bundle_path=Path(folder).resolve())


def _uris(condition: Any) -> list[str]:
    # The assets a DAG is scheduled on: a condition (AssetAll/AssetAny) holds them as objects.
    if condition is None:
        return []
    if hasattr(condition, "uri"):
        return [condition.uri]
    return sorted(uri for member in condition.objects for uri in _uris(member))


def describe(folder: str) -> dict[str, Any]:
    bag = _bag(folder)
    dags = {}
    for dag_id, dag in bag.dags.items():
        dags[dag_id] = {
            "schedule": str(dag.schedule),
            "catchup": dag.catchup,
            "tags": sorted(dag.tags),
            "start_date": dag.start_date.isoformat() if dag.start_date else None,
            "timetable": type(dag.timetable).__name__,
            "schedule_assets": _uris(getattr(dag.timetable, "asset_condition", None)),
            "tasks": {
                task.task_id: {
                    "upstream": sorted(task.upstream_task_ids),
                    "retries": task.retries,
                    "exponential_backoff": bool(task.retry_exponential_backoff),
                    "mapped": type(task).__name__.endswith("MappedOperator"),
                    "trigger_rule": str(task.trigger_rule),
                    "outlets": sorted(getattr(o, "uri", str(o)) for o in task.outlets),
                }
                for task in dag.tasks
            },
        }
    return {"import_errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": dags}


def run_test(args: argparse.Namespace) -> dict[str, Any]:
    """``dag.test()`` of ``args.dag_id``, and the state of each task."""
    dag_id, conf, logical_date = args.dag_id, json.loads(args.conf), args.logical_date
    retry_delay_s, run_after = args.retry_delay_s, args.run_after
    dag = _bag(args.folder).get_dag(dag_id)
    if retry_delay_s is not None:  # the test's pace, not the production schedule's
        for task in dag.tasks:
            task.retry_delay = dt.timedelta(seconds=retry_delay_s)
            task.retry_exponential_backoff = False
    if logical_date == "none":  # a run without a logical date, as asset events start
        run = dag.test(
            run_conf=conf,
            logical_date=None,
            run_after=None if run_after is None else dt.datetime.fromisoformat(run_after),
        )
        return _states(run, dag_id)
    when = None if logical_date is None else dt.datetime.fromisoformat(logical_date)
    if when is not None:
        _forget_runs(dag_id, when)
    run = dag.test(run_conf=conf, logical_date=when)
    return _states(run, dag_id)


def _states(run: Any, dag_id: str) -> dict[str, Any]:
    return {
        "state": str(run.state),
        "tasks": [
            {"task_id": ti.task_id, "map_index": ti.map_index, "state": str(ti.state),
             "try_number": ti.try_number}
            for ti in run.get_task_instances()
        ],
        "other_runs": _other_runs(dag_id),
    }  # fmt: skip


def _other_runs(dag_id: str) -> list[dict[str, Any]]:
    # Runs of other DAGs, such as those a TriggerDagRunOperator created (dag.test() runs
    # only its own DAG; a triggered run waits, queued, for a scheduler).
    from airflow.models.dagrun import DagRun  # noqa: PLC0415
    from airflow.utils.session import create_session  # noqa: PLC0415
    from sqlalchemy import select  # noqa: PLC0415

    with create_session() as session:
        runs = session.scalars(select(DagRun).where(DagRun.dag_id != dag_id)).all()
        return [{"dag_id": r.dag_id, "conf": r.conf, "state": str(r.state),
                 "run_type": str(r.run_type)} for r in runs]  # fmt: skip


def assets() -> dict[str, Any]:
    """Asset events recorded (URI, extra, producing DAG) and the DAGs they queued."""
    from airflow.models.asset import AssetDagRunQueue, AssetEvent, AssetModel  # noqa: PLC0415
    from airflow.utils.session import create_session  # noqa: PLC0415
    from sqlalchemy import select  # noqa: PLC0415

    with create_session() as session:
        events = session.execute(
            select(AssetModel.uri, AssetEvent.extra, AssetEvent.source_dag_id)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .order_by(AssetEvent.id)
        ).all()
        queued = session.execute(
            select(AssetModel.uri, AssetDagRunQueue.target_dag_id).join(
                AssetModel, AssetModel.id == AssetDagRunQueue.asset_id
            )
        ).all()
    return {"events": [{"uri": u, "extra": e, "source_dag_id": d} for u, e, d in events],
            "queued": [{"uri": u, "dag_id": d} for u, d in queued]}  # fmt: skip


def _forget_runs(dag_id: str, when: dt.datetime) -> None:
    # dag.test() returns an earlier finished run of the same logical date instead of running
    # it again; deleting that run makes this one a rerun, as clearing it in the UI would.
    from airflow.models.dagrun import DagRun  # noqa: PLC0415
    from airflow.utils.session import create_session  # noqa: PLC0415
    from sqlalchemy import delete  # noqa: PLC0415

    with create_session() as session:
        session.execute(delete(DagRun).where(DagRun.dag_id == dag_id, DagRun.logical_date == when))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["describe", "test", "assets"])
    parser.add_argument("folder")
    parser.add_argument("dag_id", nargs="?")
    parser.add_argument("--conf", default="{}")
    parser.add_argument("--logical-date")
    parser.add_argument("--retry-delay-s", type=float)
    parser.add_argument("--run-after")
    args = parser.parse_args()
    if args.command == "describe":
        result = describe(args.folder)
    elif args.command == "assets":
        result = assets()
    else:
        result = run_test(args)
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
