"""The operators' console: its JSON endpoints, and the page in headless Chromium (with a screenshot)."""
from __future__ import annotations

import json
import struct
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[3]
ASL_STATES = set(json.loads((ROOT / "stepfunctions" / "pipeline.asl.json").read_text())["States"])


def _get(client, path, who=None):
    resp = client.http.get(path, headers=who["headers"] if who else {})
    return resp.status_code, json.loads(resp.body) if resp.body else None


def test_executions_show_states_timings_attempts_and_errors(hd_video, failed_video, admin, member):
    status, body = _get(member["client"], "/console/api/executions?limit=50", admin)
    assert status == 200
    by_name = {e["name"]: e for e in body["executions"]}
    done, failed = by_name[hd_video["execution"]], by_name[failed_video["execution"]]

    assert done["status"] == "SUCCEEDED" and done["video_id"] == hd_video["id"] and done["title"] == "Clutch round"
    visited = [s["name"] for s in done["states"]]
    # Finalize makes it playable; the Fallbacks state (the MP4 fallbacks) comes after it.
    assert visited[:3] == ["Dedup", "IsDuplicate", "Process"] and visited[-2:] == ["Finalize", "Fallbacks"]
    assert {"Ladder", "Speech", "Analysis"} <= set(visited)      # the Parallel state's branches
    for state in done["states"]:
        assert state["status"] == "succeeded" and state["seconds"] is not None and state["seconds"] >= 0
        assert state["entered_at"] <= state["exited_at"]
    transcode = next(s for s in done["states"] if s["name"] == "Ladder")
    assert transcode["attempts"] == 1 and transcode["type"] == "Task"
    # Branches overlap: the top-level states (the Parallel one spanning its branches) add up.
    assert done["seconds"] >= sum(s["seconds"] for s in done["states"] if s["name"] in ASL_STATES) * 0.9
    runs = {r["stage"]: r for r in done["stage_runs"]}
    assert {"dedup", "transcode", "transcribe", "embed"} <= set(runs)
    assert all(r["status"] == "succeeded" and r["seconds"] > 0 for r in runs.values())

    assert failed["status"] == "FAILED"
    dedup = next(s for s in failed["states"] if s["name"] == "Dedup")
    assert dedup["status"] == "failed" and dedup["error"]["error"] == "PermanentStepError"
    assert "not a usable video" in dedup["error"]["cause"]
    assert [s["name"] for s in failed["states"]][-2:] == ["MarkFailed", "Failed"]
    assert failed["error"] is not None
    assert [r["status"] for r in failed["stage_runs"]] == ["failed"]
    # Newest first.
    starts = [e["started_at"] for e in body["executions"]]
    assert starts == sorted(starts, reverse=True)


def test_graph_is_the_deployed_state_machine(admin, member):
    status, graph = _get(member["client"], "/console/api/graph", admin)
    assert status == 200 and graph["start_at"] == "Dedup"
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert set(nodes) == ASL_STATES
    # The main path runs down the first column; failure handling sits beside it.
    main = ["Dedup", "IsDuplicate", "Process", "Finalize", "Fallbacks"]
    assert all(nodes[n]["col"] == 0 for n in main)
    assert [nodes[n]["row"] for n in main] == sorted(nodes[n]["row"] for n in main)
    assert nodes["MarkFailed"]["col"] > 0 and nodes["MarkFailed"]["row"] > nodes["Finalize"]["row"]
    edges = {(e["from"], e["to"], e["kind"]) for e in graph["edges"]}
    assert ("Dedup", "IsDuplicate", "next") in edges and ("IsDuplicate", "MarkDuplicate", "choice") in edges
    assert ("IsDuplicate", "Process", "default") in edges and ("Dedup", "DedupFailed", "catch") in edges
    assert [b[0] for b in nodes["Process"]["branches"]] == ["LadderPlan", "Speech"]


def test_console_data_is_for_platform_admins(member):
    client = member["client"]
    for path in ("/console/api/executions", "/console/api/graph"):
        assert _get(client, path)[0] == 401
        status, body = _get(client, path, member["me"])
        assert status == 403 and body["error"]


def test_console_limit_is_validated(admin, member):
    for bad in ("0", "51", "ten"):
        status, body = _get(member["client"], f"/console/api/executions?limit={bad}", admin)
        assert status == 400 and body["details"], bad
    status, body = _get(member["client"], "/console/api/executions?limit=1", admin)
    assert status == 200 and len(body["executions"]) == 1


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def test_console_page_in_chromium(browser, live_api, hd_video, failed_video, admin, tmp_path):
    """The page an operator opens: executions with states and errors, and the pipeline graph."""
    page_html = requests.get(f"{live_api}/console", timeout=10)
    assert page_html.status_code == 200 and page_html.headers["Content-Type"].startswith("text/html")

    page = browser.new_page()
    script_errors: list = []
    page.on("pageerror", lambda error: script_errors.append(error))
    try:
        page.goto(f"{live_api}/console?token={admin['app_token']}")
        page.wait_for_selector("body[data-loaded=true]", timeout=30_000)
        assert "token=" not in page.url                      # the token left the address bar
        done = page.locator(f'tr[data-execution="{hd_video["execution"]}"]')
        assert done.get_attribute("data-status") == "SUCCEEDED" and "Clutch round" in done.inner_text()
        failed = page.locator(f'tr[data-execution="{failed_video["execution"]}"]')
        assert failed.get_attribute("data-status") == "FAILED"
        assert "not a usable video" in failed.inner_text()
        drawn = set(page.eval_on_selector_all("svg g.state", "gs => gs.map(g => g.dataset.state)"))
        assert drawn == ASL_STATES

        done.click()
        status = dict(page.eval_on_selector_all("svg g.state", "gs => gs.map(g => [g.dataset.state, g.dataset.status])"))
        assert status["Dedup"] == status["Process"] == status["Finalize"] == status["Fallbacks"] == "succeeded"
        assert status["Transcode"] == "idle"                   # the serial shape's state
        assert status["MarkFailed"] == status["MarkDuplicate"] == "idle"
        assert page.locator("#states tr[data-state=Ladder]").count() == 1

        failed.click()
        status = dict(page.eval_on_selector_all("svg g.state", "gs => gs.map(g => [g.dataset.state, g.dataset.status])"))
        assert status["Dedup"] == "failed" and status["MarkFailed"] == "succeeded" and status["Process"] == "idle"
        shot = tmp_path / "console.png"
        page.screenshot(path=str(shot), full_page=True)
        assert script_errors == []
    finally:
        page.close()
    width, height = _png_size(shot)
    assert width >= 1000 and height >= 600 and shot.stat().st_size > 20_000
    print(f"console screenshot: {shot}")


def test_console_page_without_a_token_asks_for_one(browser, live_api, member):
    page = browser.new_page()
    try:
        page.goto(f"{live_api}/console")
        page.wait_for_function("document.getElementById('message').textContent.length > 0", timeout=10_000)
        assert "platform admin" in page.inner_text("#message")
        page.fill("#token", member["me"]["app_token"])        # not an admin: refused, said so
        page.click("#use-token")
        page.wait_for_function("document.getElementById('message').textContent.includes('403')", timeout=10_000)
        assert page.locator("tr.execution").count() == 0
    finally:
        page.close()


def test_an_execution_stopped_mid_state_shows_that_state_aborted():
    """StopExecution (a video deleted while processing) ends the running state without its own event."""
    from datetime import datetime, timedelta, timezone

    from chalicelib.api.console import states_from_history

    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    events = [
        {"id": 1, "type": "ExecutionStarted", "timestamp": t0},
        {"id": 2, "type": "TaskStateEntered", "timestamp": t0, "stateEnteredEventDetails": {"name": "Dedup"}},
        {"id": 3, "type": "TaskScheduled", "timestamp": t0},
        {"id": 4, "type": "ExecutionAborted", "timestamp": t0 + timedelta(seconds=2),
         "executionAbortedEventDetails": {"error": "States.Aborted", "cause": "video deleted"}},
    ]
    states, error = states_from_history(events)
    assert [(s["name"], s["status"], s["seconds"]) for s in states] == [("Dedup", "aborted", 2.0)]
    assert states[0]["error"] == error == {"error": "States.Aborted", "cause": "video deleted"}
