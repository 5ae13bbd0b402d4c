"""Video metadata under the CRDT: apply operation batches atomically, log them, detect stale PUTs.

Each write runs in one transaction holding the video row (`SELECT ... FOR
UPDATE`): the stored CRDT state is read, the batch is turned into operations
with their vector clocks, merged (chalicelib.sync.crdt), and the winning values
are written back to the video's ordinary columns together with the state, the
clock and version + 1; every operation lands in video_operations (the audit
trail). Concurrent writers of one video queue on the row lock, so none is lost.

An operation the client sends gets the clock `client clock + own entry`, where
the own entry continues the larger of the client's and the server's count for
that actor, so the clock says exactly which edits the author had seen.

No client clock is trusted: under the lock it is checked against the server's
(crdt.clock_bound_problems), a video's clock holds at most
crdt.MAX_CLOCK_ENTRIES actors (MAX_ACTORS_PER_USER of them one user's devices),
and every operation is checked (crdt.op_problems) before anything is written;
any violation is a 400 that changes nothing.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable

from chalicelib import access, db, live
from chalicelib.errors import ConflictError, ValidationError
from chalicelib.sync import crdt

MAX_TAGS = 20

# Operation types of the sync API -> (kind, field).
OP_TYPES = {
    "update_title": ("set", "title"),
    "update_description": ("set", "description"),
    "update_category": ("set", "category"),
    "update_featured": ("set", "featured"),
    "add_tag": ("add", crdt.TAGS),
    "remove_tag": ("remove", crdt.TAGS),
    "set_tags": ("replace", crdt.TAGS),
}
_TYPE_OF = {(kind, name): t for t, (kind, name) in OP_TYPES.items() if kind != "replace"}


@dataclass
class Edit:
    """One validated change a client asked for (before it has a clock)."""

    type: str
    value: Any
    id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class Outcome:
    row: dict
    applied: list[crdt.Op]
    duplicates: int
    relation: str          # client clock vs server clock before the batch
    conflicts: int


MAX_ACTORS_PER_USER = 8    # a user's actors (devices) in one video's clock
MAX_VERSION = 2**31 - 1    # videos.version is a Postgres integer


def parse_clock_and_version(clock: Any, version: Any, clock_name: str = "vector_clock",
                            version_name: str = "version",
                            ) -> tuple[dict[str, int] | None, int | None, list[str]]:
    """A client's vector clock and version from a request: (clock, version, problems)."""
    problems: list[str] = []
    if clock is not None:
        clock, problems = crdt.parse_clock(clock, clock_name)
    if version is not None and (type(version) is not int or not 1 <= version <= MAX_VERSION):
        problems.append(f"{version_name} must be a positive integer")
        version = None
    return clock, version, problems


def state_of(row: dict) -> crdt.State:
    """The video's CRDT state; a video never edited starts from its column values."""
    if row.get("crdt_state"):
        return crdt.State.from_json(row["crdt_state"])
    state = crdt.initial_state({"title": row["title"], "description": row["description"],
                                "category": row.get("category"),
                                "featured": bool(row.get("featured"))}, row["tags"] or [])
    state.clock = dict(row.get("vector_clock") or {})
    return state


def apply_edits(video_id: str, user_id: str, actor: str, edits: list[Edit], *,
                client_clock: dict[str, int] | None, client_version: int | None, source: str,
                refuse_concurrent: bool = False, clock_name: str = "vector_clock",
                invalid: str = "Invalid video data") -> Outcome:
    """Apply a client's edits to one video atomically; see the module docstring.

    With refuse_concurrent (PUT, which sends whole values, not per-field
    operations), a change to a field that someone else changed since the
    client's clock or version raises a 409 instead of merging. A clock that
    claims more than the server has seen is a 400 `invalid` naming `clock_name`.
    """
    with db.transaction() as cur:
        row = access.lock_video(cur, video_id)
        server_clock = dict(row["vector_clock"] or {})
        if client_clock is not None:
            problems = crdt.clock_bound_problems(client_clock, server_clock, actor, len(edits), clock_name)
            if problems:
                raise ValidationError(invalid, details=problems)
        else:
            # A version only names the state the client saw; no clock at all: the latest.
            client_clock = server_clock if client_version is None else \
                _clock_at_version(cur, video_id, min(client_version, row["version"]))
        unseen = _unseen_changes(cur, video_id, client_clock)
        relation = crdt.compare(client_clock, server_clock)
        if refuse_concurrent:
            _refuse_concurrent(row, edits, unseen)
        fresh = _fresh(cur, video_id, edits)
        state = state_of(row)
        ops = _to_ops(state, fresh, actor, client_clock, server_clock)
        problems = (_actor_room(server_clock, actor, user_id) if ops else []) or \
            list(dict.fromkeys(p for op in ops for p in crdt.op_problems(op)))
        if problems:
            raise ValidationError(invalid, details=problems)
        new_state = crdt.apply_all(state, ops)
        if len(new_state.tags()) > MAX_TAGS:
            raise ValidationError("Invalid operations", details=[f"a video has at most {MAX_TAGS} tags"])
        conflicts = sum(1 for op in ops if _touches(op) & unseen)
        if ops:
            row = _write(cur, row, new_state, ops, user_id, source)
    if ops:  # reference/003: the merged state is broadcast to every client following the video
        live.publish_video(video_id, "video.updated", actor=actor, source=source, version=row["version"],
                           vector_clock=dict(row["vector_clock"] or {}),
                           fields=sorted({f for op in ops for f in _touches(op)}))
    return Outcome(row=row, applied=ops, duplicates=len(edits) - len(fresh),
                   relation=relation, conflicts=conflicts)


def operations_since(video_id: str, since: Any, limit: int) -> tuple[list[dict], bool]:
    """Logged operations of a video after `since` (all when None), oldest first; (rows, more)."""
    rows = db.fetch_all(
        "SELECT seq, op_id, actor, user_id, op_type, kind, field, value, observed, vector_clock,"
        " version, source, created_at FROM video_operations WHERE video_id = %s"
        " AND (%s::timestamptz IS NULL OR created_at > %s::timestamptz)"
        " ORDER BY created_at, seq LIMIT %s", (video_id, since, since, limit + 1))
    return rows[:limit], len(rows) > limit


# ---------------------------------------------------------------- inside the transaction

def _clock_at_version(cur: Any, video_id: str, version: int) -> dict[str, int]:
    """The video's vector clock as it was at a version: the merge of the clocks logged up to it."""
    cur.execute("SELECT vector_clock FROM video_operations WHERE video_id = %s AND version <= %s",
                (video_id, version))
    clock: dict[str, int] = {}
    for r in cur.fetchall():
        clock = crdt.clock_merge(clock, r["vector_clock"])
    return clock


def _unseen_changes(cur: Any, video_id: str, clock: dict[str, int]) -> set[str]:
    """Fields (and "tag:<name>") changed by logged operations a client at `clock` had not seen.

    An operation is unseen when the client's entry for its actor is below the
    operation's own count.
    """
    cur.execute("SELECT DISTINCT field, value FROM video_operations WHERE video_id = %s"
                " AND counter > COALESCE((%s::jsonb ->> actor)::bigint, 0)",
                (video_id, json.dumps(clock)))
    out: set[str] = set()
    for r in cur.fetchall():
        out.add(r["field"])
        if r["field"] == crdt.TAGS:
            out.add(f"tag:{r['value']}")
    return out


def _actor_room(server_clock: dict[str, int], actor: str, user_id: str) -> list[str]:
    """Why a new actor may not join the video's clock (bounded: the clock rides on every op)."""
    if actor in server_clock:
        return []
    if len(server_clock) >= crdt.MAX_CLOCK_ENTRIES:
        return [f"a video's vector clock has at most {crdt.MAX_CLOCK_ENTRIES} actors;"
                " edit from a device that has edited it before"]
    mine = [a for a in server_clock if a == user_id or a.startswith(f"{user_id}:")]
    if len(mine) >= MAX_ACTORS_PER_USER:
        return [f"a user edits a video from at most {MAX_ACTORS_PER_USER} devices;"
                " use a device_id that has edited it before"]
    return []


def _touches(op: crdt.Op) -> set[str]:
    return {f"tag:{op.value}"} if op.field == crdt.TAGS else {op.field}


def _refuse_concurrent(row: dict, edits: list[Edit], unseen: set[str]) -> None:
    clashing = sorted({OP_TYPES[e.type][1] for e in edits} & unseen)
    if clashing:
        raise ConflictError(
            "Conflict detected: the video changed since your copy. Refresh and try again.",
            conflict_type="concurrent_update", fields=clashing,
            server_vector_clock=dict(row["vector_clock"] or {}), server_version=row["version"])


def _fresh(cur: Any, video_id: str, edits: list[Edit]) -> list[Edit]:
    """The edits whose ids are not in the log yet (a resent batch applies once)."""
    if not edits:
        return []
    cur.execute("SELECT op_id FROM video_operations WHERE video_id = %s AND op_id = ANY(%s)",
                (video_id, [e.id for e in edits]))
    known = {r["op_id"] for r in cur.fetchall()}
    seen_ids: set[str] = set()
    out = []
    for e in edits:
        if e.id not in known and e.id not in seen_ids:
            out.append(e)
            seen_ids.add(e.id)
    return out


def _to_ops(state: crdt.State, edits: list[Edit], actor: str, client_clock: dict[str, int],
            server_clock: dict[str, int]) -> list[crdt.Op]:
    """CRDT operations with clocks for a batch; removes observe what the author had seen."""
    base = max(client_clock.get(actor, 0), server_clock.get(actor, 0))
    ops: list[crdt.Op] = []
    current = state
    for edit in edits:
        kind, name = OP_TYPES[edit.type]
        for n, (k, value) in enumerate(_expand(current, kind, edit.value)):
            base += 1
            clock = crdt.clock_merge(client_clock, {actor: base})
            observed = crdt.observed_adds(current, value, clock) if k in ("add", "remove") else ()
            op_id = edit.id if n == 0 else f"{edit.id}#{n}"
            op = crdt.make_op(op_id, actor, clock, k, name, value, observed)
            current = crdt.apply(current, op)
            ops.append(op)
    return ops


def _expand(state: crdt.State, kind: str, value: Any) -> Iterable[tuple[str, Any]]:
    """set_tags becomes removes of the present tags and adds of the new list, in order."""
    if kind != "replace":
        return [(kind, value)]
    return [("remove", t) for t in state.tags()] + [("add", t) for t in value]


def _write(cur: Any, row: dict, state: crdt.State, ops: list[crdt.Op], user_id: str,
           source: str) -> dict:
    values = state.materialize()
    version = row["version"] + 1
    cur.execute(
        "UPDATE videos SET title = %s, description = %s, tags = %s, category = %s, featured = %s,"
        " vector_clock = %s, version = %s, crdt_state = %s, updated_at = now()"
        " WHERE id = %s RETURNING *",
        (values["title"], values["description"] or "", values["tags"], values["category"],
         bool(values["featured"]), json.dumps(state.clock), version, json.dumps(state.to_json()),
         row["id"]))
    updated = cur.fetchone()
    for op in ops:
        cur.execute(
            "INSERT INTO video_operations (video_id, op_id, actor, user_id, op_type, kind, field,"
            " value, observed, vector_clock, counter, version, source)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (row["id"], op.id, op.actor, user_id, _TYPE_OF[(op.kind, op.field)], op.kind, op.field,
             json.dumps(op.value), json.dumps(list(op.observed)), json.dumps(op.clock_dict),
             op.clock_dict[op.actor], version, source))
    return updated
