"""Conflict-free video metadata: LWW registers, an OR-Set of tags, vector clocks. Pure.

A replica's state is a join-semilattice: `merge` is commutative, associative
and idempotent, so replicas that receive the same operations, in any order
and any number of times, end up equal (tests/sync/test_crdt.py checks
this with hypothesis). An operation is applied by merging the small state it
stands for (`delta`), which is why applying operations inherits the same laws.

- Every operation carries the vector clock of its actor after the actor's own
  entry was incremented. Its `Stamp` (clock sum, actor, counter, op id) is a
  total order that extends the vector-clock order: a write that causally
  follows another always has the larger clock sum, and concurrent writes are
  ordered by the sum, then the actor, the counter and the op id, so every
  replica picks the same winner.
- title, description, category and featured are last-writer-wins registers.
- tags are an observed-remove set: each add has a unique id; a remove
  tombstones the add ids its author had observed. An add the remover had not
  seen (a concurrent add) survives, so add and remove both merge correctly,
  which a grow-only set cannot do. An add also tombstones the adds of its tag
  that its author had observed (it replaces them: the tag stays present), so a
  tag has at most one live add per actor however often it is re-added, and a
  remove's list of observed adds stays small.

Nothing a client sends is trusted (see "Bounds" below): a clock may only be
ahead of the server's in its own actor's entry, by at most the operations it
sends, and every clock, counter and operation has a fixed maximum size.

No I/O, no imports beyond the standard library: the API and the tests use it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

FIELDS = ("title", "description", "category", "featured")
TAGS = "tags"

Clock = Mapping[str, int]

# ---------------------------------------------------------------- bounds
MAX_CLOCK_ENTRIES = 64      # actors in any clock: a client's, an operation's, a video's
MAX_ACTOR = 101             # an actor id: a user id (36) + ":" + a device id (1 to 64)
MAX_COUNTER = 2**31 - 1     # one actor's count (video_operations.counter is a Postgres integer)
MAX_OP_BYTES = 32 * 1024    # one operation as UTF-8 JSON: the size of a video_operations row


# ---------------------------------------------------------------- vector clocks

def clock_merge(a: Clock, b: Clock) -> dict[str, int]:
    """Pointwise maximum: everything either side has seen."""
    out = dict(a)
    for actor, n in b.items():
        if n > out.get(actor, 0):
            out[actor] = n
    return {k: v for k, v in out.items() if v > 0}


def clock_leq(a: Clock, b: Clock) -> bool:
    """a happened before or equals b: every entry of a is at most b's."""
    return all(n <= b.get(actor, 0) for actor, n in a.items())


def compare(a: Clock, b: Clock) -> str:
    """'equal', 'before' (a < b), 'after' (a > b) or 'concurrent'."""
    le, ge = clock_leq(a, b), clock_leq(b, a)
    if le and ge:
        return "equal"
    if le:
        return "before"
    if ge:
        return "after"
    return "concurrent"


def seen(clock: Clock, actor: str, counter: int) -> bool:
    """Whether a replica at `clock` has seen the actor's operation number `counter`."""
    return clock.get(actor, 0) >= counter


# ---------------------------------------------------------------- what a client may send

def parse_clock(raw: Any, name: str = "vector_clock") -> tuple[dict[str, int] | None, list[str]]:
    """A client's clock, checked for shape and size only: (clock without zero entries, problems)."""
    if not isinstance(raw, dict):
        return None, [f"{name} must be an object of actor ids to counts"]
    if len(raw) > MAX_CLOCK_ENTRIES:     # checked first: nothing else is read from a huge clock
        return None, [f"{name} must have at most {MAX_CLOCK_ENTRIES} entries"]
    problems = []
    if not all(isinstance(k, str) and 0 < len(k) <= MAX_ACTOR for k in raw):
        problems.append(f"{name}: actor ids must be 1 to {MAX_ACTOR} characters")
    if not all(type(v) is int and 0 <= v <= MAX_COUNTER for v in raw.values()):  # bool is not a count
        problems.append(f"{name}: counts must be integers from 0 to {MAX_COUNTER}")
    if problems:
        return None, problems
    return {k: v for k, v in raw.items() if v > 0}, []


def clock_bound_problems(clock: Clock, server: Clock, actor: str, allowance: int,
                         name: str = "vector_clock") -> list[str]:
    """Why a client's clock claims more than the server has seen; [] when it does not.

    Another actor's entry may not pass the server's (no one can claim to have
    seen edits that never happened, nor inflate the sum that orders writes);
    the client's own entry may be ahead by at most the `allowance` operations
    it sends with the clock.
    """
    problems = []
    for a, n in sorted(clock.items()):
        known = server.get(a, 0)
        if a == actor and n > known + allowance:
            problems.append(f"{name}[{a}]: {n} is ahead of the server's {known} by more than the"
                            f" {allowance} operations sent")
        elif a != actor and n > known:
            problems.append(f"{name}[{a}]: {n} is more than the server has seen ({known})")
    return problems


def op_problems(op: Op) -> list[str]:
    """Why an operation may not be stored: a clock or counter out of bounds, or too large a row."""
    problems = []
    if len(op.clock) > MAX_CLOCK_ENTRIES:
        problems.append(f"an operation's clock has at most {MAX_CLOCK_ENTRIES} actors")
    if any(n > MAX_COUNTER for _, n in op.clock):
        problems.append(f"the count of actor {op.actor} would pass {MAX_COUNTER}; sync with another device_id")
    size = op_size(op)
    if size > MAX_OP_BYTES:
        problems.append(f"an operation is at most {MAX_OP_BYTES} bytes of JSON (this one: {size})")
    return problems


def op_size(op: Op) -> int:
    """Bytes of the operation as UTF-8 JSON, what its log row holds."""
    return len(json.dumps(op.to_dict(), ensure_ascii=False).encode("utf-8", "surrogatepass"))


# ---------------------------------------------------------------- operations

@dataclass(frozen=True, order=True)
class Stamp:
    """The total order of writes: clock sum first (extends causality), then ids."""

    lamport: int
    actor: str
    counter: int
    op_id: str

    def to_list(self) -> list:
        return [self.lamport, self.actor, self.counter, self.op_id]

    @classmethod
    def from_list(cls, value: list) -> Stamp:
        return cls(int(value[0]), str(value[1]), int(value[2]), str(value[3]))


ZERO = Stamp(0, "", 0, "")


@dataclass(frozen=True)
class Op:
    """One edit: set a field, add a tag, or remove the observed adds of a tag."""

    id: str
    actor: str
    clock: tuple[tuple[str, int], ...]   # sorted items, hashable
    kind: str                            # "set" | "add" | "remove"
    field: str                           # one of FIELDS, or "tags"
    value: Any = None                    # the field's value, or the tag
    observed: tuple[str, ...] = ()       # add and remove: the add ids it tombstones

    @property
    def clock_dict(self) -> dict[str, int]:
        return dict(self.clock)

    @property
    def stamp(self) -> Stamp:
        clock = self.clock_dict
        return Stamp(sum(clock.values()), self.actor, clock.get(self.actor, 0), self.id)

    def to_dict(self) -> dict:
        out = {"id": self.id, "actor": self.actor, "vector_clock": self.clock_dict,
               "kind": self.kind, "field": self.field, "value": self.value}
        if self.kind in ("add", "remove"):
            out["observed"] = list(self.observed)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Op:
        return make_op(data["id"], data["actor"], data["vector_clock"], data["kind"],
                       data["field"], data.get("value"), data.get("observed", ()))


def make_op(op_id: str, actor: str, clock: Clock, kind: str, field_name: str, value: Any = None,
            observed: Iterable[str] = ()) -> Op:
    """An Op with a normalised clock; raises ValueError for an impossible one."""
    if kind == "set" and field_name not in FIELDS:
        raise ValueError(f"unknown field {field_name!r}")
    if kind in ("add", "remove") and field_name != TAGS:
        raise ValueError("tags are the only set")
    if kind not in ("set", "add", "remove"):
        raise ValueError(f"unknown operation kind {kind!r}")
    clean = tuple(sorted((str(k), int(v)) for k, v in clock.items() if int(v) > 0))
    if dict(clean).get(actor, 0) < 1:
        raise ValueError("an operation's clock must count the operation itself")
    return Op(str(op_id), str(actor), clean, kind, field_name, value,
              tuple(sorted(set(observed))) if kind in ("add", "remove") else ())


# ---------------------------------------------------------------- state

@dataclass(frozen=True)
class Register:
    value: Any
    stamp: Stamp


@dataclass
class State:
    """A replica: registers, the tag OR-Set (adds and tombstones) and its clock."""

    registers: dict[str, Register] = field(default_factory=dict)
    adds: dict[str, dict[str, Stamp]] = field(default_factory=dict)   # tag -> add id -> stamp
    removed: set[str] = field(default_factory=set)                     # tombstoned add ids
    clock: dict[str, int] = field(default_factory=dict)

    # -- reading
    def value(self, name: str, default: Any = None) -> Any:
        reg = self.registers.get(name)
        return reg.value if reg else default

    def live_adds(self, tag: str) -> dict[str, Stamp]:
        return {i: s for i, s in self.adds.get(tag, {}).items() if i not in self.removed}

    def tags(self) -> list[str]:
        """Present tags, ordered by their earliest surviving add (same on every replica)."""
        firsts = [(min(live.values()), tag) for tag in self.adds
                  if (live := self.live_adds(tag))]
        return [tag for _, tag in sorted(firsts)]

    def materialize(self) -> dict[str, Any]:
        """What users see: the winning field values and the present tags."""
        out = {name: self.value(name) for name in FIELDS}
        out[TAGS] = self.tags()
        return out

    # -- serialising (Postgres jsonb)
    def to_json(self) -> dict:
        return {
            "registers": {k: {"value": r.value, "stamp": r.stamp.to_list()}
                          for k, r in sorted(self.registers.items())},
            "adds": {tag: {i: s.to_list() for i, s in sorted(ids.items())}
                     for tag, ids in sorted(self.adds.items())},
            "removed": sorted(self.removed),
            "clock": dict(sorted(self.clock.items())),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> State:
        data = data or {}
        return cls(
            registers={k: Register(r["value"], Stamp.from_list(r["stamp"]))
                       for k, r in (data.get("registers") or {}).items()},
            adds={tag: {i: Stamp.from_list(s) for i, s in ids.items()}
                  for tag, ids in (data.get("adds") or {}).items()},
            removed=set(data.get("removed") or ()),
            clock={k: int(v) for k, v in (data.get("clock") or {}).items()},
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, State) and self.to_json() == other.to_json()


def initial_state(values: Mapping[str, Any], tags: Iterable[str]) -> State:
    """The state of a video never edited through operations: every later write wins."""
    state = State(registers={name: Register(values.get(name), ZERO) for name in FIELDS
                             if name in values})
    for n, tag in enumerate(dict.fromkeys(tags)):
        add_id = f"initial:{tag}"
        state.adds[tag] = {add_id: Stamp(0, "", n, add_id)}
    return state


# ---------------------------------------------------------------- the laws

def merge(a: State, b: State) -> State:
    """The least upper bound of two replicas (commutative, associative, idempotent)."""
    registers = dict(a.registers)
    for name, reg in b.registers.items():
        if name not in registers or reg.stamp > registers[name].stamp:
            registers[name] = reg
    adds = {tag: dict(ids) for tag, ids in a.adds.items()}
    for tag, ids in b.adds.items():
        adds.setdefault(tag, {}).update(ids)
    return State(registers=registers, adds=adds, removed=a.removed | b.removed,
                 clock=clock_merge(a.clock, b.clock))


def delta(op: Op) -> State:
    """The state that one operation stands for."""
    state = State(clock=op.clock_dict)
    if op.kind == "set":
        state.registers[op.field] = Register(op.value, op.stamp)
    elif op.kind == "add":
        state.adds[op.value] = {op.id: op.stamp}
        state.removed = set(op.observed) - {op.id}
    else:
        state.removed = set(op.observed)
    return state


def apply(state: State, op: Op) -> State:
    """state with op applied: merge with the op's delta (so order and repeats do not matter)."""
    return merge(state, delta(op))


def apply_all(state: State, ops: Iterable[Op]) -> State:
    for op in ops:
        state = apply(state, op)
    return state


def observed_adds(state: State, tag: str, clock: Clock) -> list[str]:
    """The add ids of tag that a replica at `clock` had seen: what its add or remove tombstones.

    An add is seen when the clock counts its actor's operation; adds made at
    the same time elsewhere are not, and survive the remove (add wins). Only
    live adds are listed: a tombstoned one stays tombstoned by the operation
    that removed it, so the list is bounded by the live adds, not the history.
    """
    return sorted(i for i, s in state.live_adds(tag).items()
                  if s.actor == "" or seen(clock, s.actor, s.counter))


# ---------------------------------------------------------------- writing on a replica

class Replica:
    """One actor's copy: makes operations with the right clocks and applies them locally."""

    def __init__(self, actor: str, state: State | None = None) -> None:
        self.actor = actor
        self.state = state or State()

    def _next_clock(self) -> dict[str, int]:
        clock = dict(self.state.clock)
        clock[self.actor] = clock.get(self.actor, 0) + 1
        return clock

    def _emit(self, kind: str, name: str, value: Any, observed: Iterable[str] = ()) -> Op:
        clock = self._next_clock()
        op = make_op(f"{self.actor}:{clock[self.actor]}", self.actor, clock, kind, name, value,
                     observed)
        self.state = apply(self.state, op)
        return op

    def set(self, name: str, value: Any) -> Op:
        return self._emit("set", name, value)

    def add_tag(self, tag: str) -> Op:
        return self._emit("add", TAGS, tag, self.state.live_adds(tag))

    def remove_tag(self, tag: str) -> Op:
        return self._emit("remove", TAGS, tag, self.state.live_adds(tag))

    def receive(self, other: State) -> None:
        self.state = merge(self.state, other)
