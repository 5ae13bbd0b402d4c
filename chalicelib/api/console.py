"""The operators' console: what the Step Functions console shows, on any stack.

`GET /console` serves one static page (chalicelib/console/index.html, plain
JS, no build step). The page calls two JSON endpoints, for platform admins
only: recent executions with their state, per-state timings, retries and
errors (Step Functions' ListExecutions and GetExecutionHistory, joined with
the video and the `stage_runs` attempts in Postgres), and the pipeline graph
laid out from the deployed state machine's definition (DescribeStateMachine).
The same boto3 calls answer from AWS and from the local emulator.
"""
from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from chalicelib import aws, db
from chalicelib.api.http import iso
from chalicelib.auth.users import require_platform_admin
from chalicelib.config import get_settings
from chalicelib.errors import NotFoundError, ValidationError

PAGE = Path(__file__).resolve().parents[1] / "console" / "index.html"
MAX_EXECUTIONS = 50
_HISTORY_PAGES = 10
_FAILURE_DETAILS = ("taskFailedEventDetails", "lambdaFunctionFailedEventDetails",
                    "lambdaFunctionTimedOutEventDetails", "taskTimedOutEventDetails",
                    "executionFailedEventDetails", "executionTimedOutEventDetails",
                    "executionAbortedEventDetails")


@lru_cache(maxsize=1)
def page() -> str:
    """The console's HTML (it holds no data; the data endpoints check the token)."""
    return PAGE.read_text()


def _sfn() -> Any:
    return aws.client("stepfunctions")


def _state_machine_arn() -> str:
    arn = get_settings().state_machine_arn
    if not arn:
        raise NotFoundError("No state machine is configured (STATE_MACHINE_ARN)")
    return arn


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return round((end - start).total_seconds(), 3) if start and end else None


# ---------------------------------------------------------------- executions

def executions(user: dict, limit: str | None) -> dict:
    """The most recent executions, newest first, each with its states, attempts and error (platform admins)."""
    require_platform_admin(user)
    try:
        count = int(limit or 20)
    except ValueError:
        raise ValidationError("Invalid limit", details=["limit must be an integer"]) from None
    if not 1 <= count <= MAX_EXECUTIONS:
        raise ValidationError("Invalid limit", details=[f"limit must be between 1 and {MAX_EXECUTIONS}"])
    listed = _sfn().list_executions(stateMachineArn=_state_machine_arn(), maxResults=count)["executions"]
    listed.sort(key=lambda e: e["startDate"], reverse=True)
    names = [e["name"] for e in listed]
    videos = _videos_of(names)
    runs = _stage_runs_of(names)
    return {"state_machine_arn": _state_machine_arn(),
            "executions": [_execution(e, videos.get(e["name"]), runs.get(e["name"], []))
                           for e in listed]}


def _execution(summary: dict, video: dict | None, runs: list[dict]) -> dict:
    states, error = states_from_history(_history(summary["executionArn"]))
    return {
        "name": summary["name"],
        "arn": summary["executionArn"],
        "status": summary["status"],
        "started_at": iso(summary.get("startDate")),
        "stopped_at": iso(summary.get("stopDate")),
        "seconds": _seconds(summary.get("startDate"), summary.get("stopDate")),
        "video_id": str(video["video_id"]) if video else None,
        "title": video["title"] if video else None,
        "states": states,
        "error": error,
        "stage_runs": runs,
    }


def _history(arn: str) -> list[dict]:
    events: list[dict] = []
    kwargs: dict[str, Any] = {"executionArn": arn, "maxResults": 1000}
    for _ in range(_HISTORY_PAGES):
        page_ = _sfn().get_execution_history(**kwargs)
        events += page_["events"]
        if not page_.get("nextToken"):
            break
        kwargs["nextToken"] = page_["nextToken"]
    return events


def _failure(event: dict) -> dict | None:
    for key in _FAILURE_DETAILS:
        details = event.get(key)
        if details is not None:
            return {"error": details.get("error"), "cause": _readable_cause(details.get("cause"))}
    return None


def _readable_cause(cause: str | None) -> str | None:
    """A Lambda error's message rather than its whole JSON (the type is the event's `error`)."""
    try:
        parsed = json.loads(cause or "")
    except ValueError:
        return cause
    if isinstance(parsed, dict) and parsed.get("errorMessage"):
        return str(parsed["errorMessage"])
    return cause


def states_from_history(events: list[dict]) -> tuple[list[dict], dict | None]:
    """Each visited state (in order) with its timing, attempts and outcome; the execution's error.

    A state's attempts are its task schedulings (the state machine's Retry
    reschedules); a state left through a Catch counts as failed with the
    error it caught.
    """
    states: list[dict] = []
    execution_error = None
    # Parallel and Map branches interleave their events: each event belongs to the state its
    # previousEventId chain started in, and a StateExited names its state.
    owner: dict[int, dict] = {}
    open_by_name: dict[str, dict] = {}
    last: dict | None = None
    for event in sorted(events, key=lambda e: e["id"]):
        kind = event["type"]
        current = owner.get(event.get("previousEventId"), last)
        if kind.endswith("StateEntered"):
            current = {"name": event["stateEnteredEventDetails"]["name"],
                       "type": kind[:-len("StateEntered")], "status": "running",
                       "entered_at": event["timestamp"], "exited_at": None, "attempts": 0,
                       "error": None, "retried_errors": []}
            states.append(current)
            open_by_name[current["name"]] = current
        elif kind.endswith("StateExited"):
            current = open_by_name.pop((event.get("stateExitedEventDetails") or {}).get("name"), current)
            if current is not None:
                current["exited_at"] = event["timestamp"]
                if current["status"] == "running":
                    current["status"] = "succeeded"
        elif kind in ("TaskScheduled", "LambdaFunctionScheduled") and current is not None:
            current["attempts"] += 1
            if current["error"]:  # the Retry of an earlier failed attempt
                current["retried_errors"].append(current["error"])
                current["error"], current["status"] = None, "running"
        elif kind.startswith("Execution"):
            execution_error = _failure(event) or execution_error
            if current is not None and current["status"] == "running" and kind != "ExecutionStarted":
                # Fail and Succeed states end the execution without a StateExited event.
                current["exited_at"] = event["timestamp"]
                current["status"] = {"ExecutionSucceeded": "succeeded",
                                     "ExecutionAborted": "aborted"}.get(kind, "failed")
                current["error"] = current["error"] or _failure(event)
        elif current is not None and (failure := _failure(event)) is not None:
            current["error"], current["status"] = failure, "failed"
        if current is not None:
            owner[event["id"]] = current
            last = current
    out = [{**s, "seconds": _seconds(s["entered_at"], s["exited_at"]),
            "entered_at": iso(s["entered_at"]), "exited_at": iso(s["exited_at"])} for s in states]
    return out, execution_error


def _videos_of(names: list[str]) -> dict[str, dict]:
    if not names:
        return {}
    rows = db.fetch_all(
        "SELECT e.execution_name, e.video_id, v.title FROM pipeline_executions e"
        " LEFT JOIN videos v ON v.id = e.video_id WHERE e.execution_name = ANY(%s)", (names,))
    return {r["execution_name"]: r for r in rows}


def _stage_runs_of(names: list[str]) -> dict[str, list[dict]]:
    if not names:
        return {}
    out: dict[str, list[dict]] = {}
    for r in db.fetch_all(
            "SELECT execution_name, stage, status, started_at, finished_at, error, resumed"
            " FROM stage_runs WHERE execution_name = ANY(%s) ORDER BY started_at, id", (names,)):
        out.setdefault(r["execution_name"], []).append({
            "stage": r["stage"], "status": r["status"], "resumed": r["resumed"],
            "started_at": iso(r["started_at"]), "seconds": _seconds(r["started_at"], r["finished_at"]),
            "error": r["error"]})
    return out


# ---------------------------------------------------------------- graph

def graph(user: dict) -> dict:
    """The deployed state machine as boxes and arrows, laid out in rows (platform admins)."""
    require_platform_admin(user)
    described = _sfn().describe_state_machine(stateMachineArn=_state_machine_arn())
    return {"name": described["name"], **layout(json.loads(described["definition"]))}


def _edges(name: str, state: dict) -> list[dict]:
    edges = []
    for choice in state.get("Choices", []):
        edges.append({"from": name, "to": choice["Next"], "kind": "choice"})
    if state.get("Default"):
        edges.append({"from": name, "to": state["Default"], "kind": "default"})
    if state.get("Next"):
        edges.append({"from": name, "to": state["Next"], "kind": "next"})
    for catch in state.get("Catch", []):
        edges.append({"from": name, "to": catch["Next"], "kind": "catch"})
    return edges


def layout(definition: dict) -> dict:
    """Nodes with a row (longest path from the start) and a column: the happy path in the
    first column, other branches next to it, failure handling (Catch targets) beyond.

    Parallel and Map states keep their branches' state names, which the page
    draws inside the box.
    """
    states: dict[str, dict] = definition["States"]
    edges = [e for name, state in states.items() for e in _edges(name, state) if e["to"] in states]
    row = {name: 0 for name in states}
    for _ in range(len(states)):  # longest path; a loop in the machine just stops growing rows
        changed = False
        for e in edges:
            if row[e["to"]] < row[e["from"]] + 1 and row[e["from"]] + 1 < len(states):
                row[e["to"]], changed = row[e["from"]] + 1, True
        if not changed:
            break
    spine, main = _happy_path(definition["StartAt"], states), _main_path(definition["StartAt"], states)
    order = list(states)
    nodes, used = [], {}
    for name in sorted(states, key=lambda n: (row[n], n not in spine, n not in main, order.index(n))):
        col = 0 if name in spine else used.get(row[name], 1)  # column 0 is the happy path's
        used[row[name]] = col + 1
        state = states[name]
        branches = [list(b["States"]) for b in state.get("Branches", [])]
        if state.get("Iterator") or state.get("ItemProcessor"):
            branches.append(list((state.get("ItemProcessor") or state["Iterator"])["States"]))
        nodes.append({"id": name, "type": state["Type"], "comment": state.get("Comment"),
                      "row": row[name], "col": col, "end": bool(state.get("End")) or state["Type"] in
                      ("Succeed", "Fail"), "branches": branches})
    return {"start_at": definition["StartAt"], "nodes": nodes, "edges": edges}


def _happy_path(start: str, states: dict[str, dict]) -> set[str]:
    """The states a run passes when nothing goes wrong: Next, and a Choice's Default."""
    seen, name = set(), start
    while name in states and name not in seen:
        seen.add(name)
        name = states[name].get("Next") or states[name].get("Default")
    return seen


def _main_path(start: str, states: dict[str, dict]) -> set[str]:
    """States reachable from the start without taking a Catch."""
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name in seen or name not in states:
            continue
        seen.add(name)
        todo += [e["to"] for e in _edges(name, states[name]) if e["kind"] != "catch"]
    return seen
