"""The CRDT's laws, for any interleaving of operations from several actors (hypothesis)."""
from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from chalicelib.sync.crdt import (FIELDS, MAX_ACTOR, MAX_CLOCK_ENTRIES, MAX_COUNTER, MAX_OP_BYTES, TAGS,
                                  Replica, State, apply_all, clock_bound_problems, clock_leq, clock_merge,
                                  compare, make_op, merge, observed_adds, op_problems, op_size, parse_clock)

pytestmark = pytest.mark.unit

ACTORS = ("phone", "laptop", "tablet")
TAG_NAMES = ("fps", "ace", "clutch", "funny")

edit = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(FIELDS), st.sampled_from(["a", "b", "c", True, False, None])),
    st.tuples(st.just("add"), st.sampled_from(TAG_NAMES)),
    st.tuples(st.just("remove"), st.sampled_from(TAG_NAMES)),
)
step = st.one_of(
    st.tuples(st.just("edit"), st.integers(0, len(ACTORS) - 1), edit),
    st.tuples(st.just("sync"), st.integers(0, len(ACTORS) - 1), st.integers(0, len(ACTORS) - 1)),
)


def run(steps) -> tuple[list[Replica], list]:
    """Play a history: actors edit their own replica and now and then pull another's state."""
    replicas = [Replica(a) for a in ACTORS]
    ops = []
    for kind, i, what in steps:
        if kind == "sync":
            replicas[i].receive(replicas[what].state)
            continue
        replica = replicas[i]
        if what[0] == "set":
            ops.append(replica.set(what[1], what[2]))
        elif what[0] == "add":
            ops.append(replica.add_tag(what[1]))
        else:
            ops.append(replica.remove_tag(what[1]))
    return replicas, ops


histories = st.lists(step, max_size=40)


@settings(max_examples=300, deadline=None)
@given(histories)
def test_merge_is_commutative_associative_and_idempotent(steps):
    a, b, c = (r.state for r in run(steps)[0])
    assert merge(a, b) == merge(b, a)
    assert merge(merge(a, b), c) == merge(a, merge(b, c))
    assert merge(a, a) == a
    # The merge is an upper bound: merging it again with either side changes nothing.
    assert merge(merge(a, b), a) == merge(a, b)


@settings(max_examples=300, deadline=None)
@given(histories, st.data())
def test_replicas_applying_the_same_operations_in_any_order_converge(steps, data):
    replicas, ops = run(steps)
    reference = apply_all(State(), ops)
    shuffled = data.draw(st.permutations(ops))
    repeated = data.draw(st.lists(st.sampled_from(ops), max_size=10)) if ops else []
    other = apply_all(State(), [*shuffled, *repeated])
    assert other == reference
    assert other.materialize() == reference.materialize()
    # Full anti-entropy between the actors reaches the same state too.
    everything = State()
    for r in replicas:
        everything = merge(everything, r.state)
    assert everything == reference


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.just("edit"), st.just(0), edit), max_size=30))
def test_one_actor_gets_exactly_the_sequential_result(steps):
    """Without concurrency the CRDT is a plain record: last write wins, remove removes."""
    replicas, ops = run(steps)
    fields, tags = {}, []
    for _, _, what in steps:
        if what[0] == "set":
            fields[what[1]] = what[2]
        elif what[0] == "add" and what[1] not in tags:
            tags.append(what[1])
        elif what[0] == "remove" and what[1] in tags:
            tags.remove(what[1])
    state = apply_all(State(), ops).materialize()
    assert {k: state[k] for k in fields} == fields
    assert sorted(state["tags"]) == sorted(tags)


def test_concurrent_add_survives_a_remove_and_observed_adds_go():
    phone, laptop = Replica("phone"), Replica("laptop")
    phone.add_tag("ace")
    laptop.receive(phone.state)
    removal = laptop.remove_tag("ace")          # laptop saw phone's add: it goes
    again = phone.add_tag("ace")                # phone re-adds at the same time: it survives
    phone.receive(laptop.state)
    laptop.receive(phone.state)
    assert phone.state == laptop.state and phone.state.tags() == ["ace"]
    assert removal.observed and again.id not in removal.observed
    laptop.remove_tag("ace")                    # now both adds are observed
    assert laptop.state.tags() == []
    assert merge(phone.state, laptop.state).tags() == []


def test_causally_later_write_wins_and_concurrent_ties_break_the_same_everywhere():
    phone, laptop = Replica("phone"), Replica("laptop")
    first = phone.set("title", "draft")
    laptop.receive(phone.state)
    later = laptop.set("title", "final")
    assert compare(first.clock_dict, later.clock_dict) == "before"
    assert merge(phone.state, laptop.state).value("title") == "final"
    x, y = Replica("x").set("title", "from x"), Replica("y").set("title", "from y")
    assert compare(x.clock_dict, y.clock_dict) == "concurrent"
    assert apply_all(State(), [x, y]).value("title") == apply_all(State(), [y, x]).value("title")


def test_observed_adds_are_the_live_adds_the_clock_has_seen():
    phone, laptop, tablet = Replica("phone"), Replica("laptop"), Replica("tablet")
    seen_add = phone.add_tag("fps")
    laptop.receive(phone.state)
    unseen_add = tablet.add_tag("fps")
    merged = merge(merge(phone.state, laptop.state), tablet.state)
    assert observed_adds(merged, "fps", laptop.state.clock) == [seen_add.id]
    assert clock_leq(laptop.state.clock, merged.clock)
    assert set(merged.live_adds("fps")) == {seen_add.id, unseen_add.id}
    # A re-add replaces the adds its author saw: the tag stays, with one live add per actor.
    again = phone.add_tag("fps")
    assert again.observed == (seen_add.id,)
    merged = merge(merged, phone.state)
    assert set(merged.live_adds("fps")) == {again.id, unseen_add.id} and merged.tags() == ["fps"]
    assert observed_adds(merged, "fps", merged.clock) == sorted([again.id, unseen_add.id])


def test_state_round_trips_through_json():
    replicas, _ = run([("edit", 0, ("set", "title", "a")), ("edit", 1, ("add", "fps")),
                       ("sync", 0, 1), ("edit", 0, ("remove", "fps")), ("edit", 2, ("set", "featured", True))])
    for r in replicas:
        assert State.from_json(r.state.to_json()) == r.state


@settings(max_examples=200, deadline=None)
@given(histories)
def test_a_tag_has_at_most_one_live_add_per_actor(steps):
    """Re-adds replace the adds they saw, so the state and a remove's observed list stay bounded."""
    replicas, ops = run(steps)
    state = apply_all(State(), ops)
    for tag in state.adds:
        actors = [s.actor for s in state.live_adds(tag).values()]
        assert len(actors) == len(set(actors)) <= len(ACTORS)
    assert all(len(op.observed) <= len(ACTORS) for op in ops)


# ---------------------------------------------------------------- the bounds on what a client sends

json_value = st.recursive(
    st.none() | st.booleans() | st.integers(-2**80, 2**80) | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8)
actor_ids = st.text(min_size=1, max_size=MAX_ACTOR)
counts = st.integers(0, MAX_COUNTER)
# What a client may put in a clock: sometimes sane, sometimes anything JSON can carry.
raw_clocks = st.one_of(
    st.dictionaries(actor_ids, counts, max_size=MAX_CLOCK_ENTRIES + 3),
    st.dictionaries(st.text(max_size=MAX_ACTOR + 20), json_value, max_size=8),
    json_value)


@settings(max_examples=500, deadline=None)
@given(raw_clocks)
@example({"a": 2**63})
@example({"a": True})
@example({f"a{i}": 1 for i in range(MAX_CLOCK_ENTRIES + 1)})
def test_parse_clock_accepts_only_bounded_clocks_and_never_raises(raw):
    clock, problems = parse_clock(raw, "c")
    assert (clock is None) == bool(problems)
    if clock is not None:
        assert len(clock) <= MAX_CLOCK_ENTRIES
        assert all(0 < len(a) <= MAX_ACTOR and type(n) is int and 0 < n <= MAX_COUNTER
                   for a, n in clock.items())
    else:
        assert all(p.startswith("c") for p in problems)


# Counts leave room for a batch of up to 100 operations past a client clock up to 100 ahead (own
# offline edits): the store numbers new operations past both. Counts at the limit itself are 400s,
# which test_sync's test_a_counter_at_the_limit_is_400_not_500 covers.
servers = st.dictionaries(st.sampled_from([f"actor{i}" for i in range(MAX_CLOCK_ENTRIES)]),
                          st.integers(1, MAX_COUNTER - 200), max_size=MAX_CLOCK_ENTRIES)


@settings(max_examples=500, deadline=None)
@given(servers, st.dictionaries(st.sampled_from([f"actor{i}" for i in range(MAX_CLOCK_ENTRIES + 8)]),
                                counts, max_size=MAX_CLOCK_ENTRIES),
       st.sampled_from(["actor0", "actor1", "newcomer"]), st.integers(0, 100), st.data())
def test_a_clock_within_the_servers_merges_and_its_operations_stay_in_bounds(server, raw, actor, sent, data):
    """Any clock the validator accepts merges without error, claims nothing the server has not
    seen (beyond its own operations), and the operations made from it pass op_problems."""
    # Half the time start from a clock that is honest by construction (at most what the server saw).
    if data.draw(st.booleans()):
        raw = {a: data.draw(st.integers(0, n)) for a, n in server.items()}
        raw[actor] = server.get(actor, 0) + data.draw(st.integers(0, sent))
    clock, problems = parse_clock(raw)
    assert not problems
    bounds = clock_bound_problems(clock, server, actor, sent)
    over = {a for a, n in clock.items() if n > server.get(a, 0) + (sent if a == actor else 0)}
    assert len(bounds) == len(over)                   # one detail per entry that claims too much
    if bounds:
        return
    merged = clock_merge(clock, server)
    assert set(merged) <= set(server) | {actor}
    assert len(merged) <= len(server) + 1
    assert all(n <= server.get(a, 0) + (sent if a == actor else 0) for a, n in merged.items())
    assert compare(clock, server) in ("equal", "before") or clock.get(actor, 0) > server.get(actor, 0)
    # The operations the store makes: the client clock plus the own entry continued past both.
    base = max(clock.get(actor, 0), server.get(actor, 0))
    for n in range(1, sent + 1):
        op = make_op(f"op{n}", actor, clock_merge(clock, {actor: base + n}), "set", "title", "x")
        assert op_problems(op) == [] or len(server) == MAX_CLOCK_ENTRIES and actor not in server


def test_the_largest_valid_operation_fits_in_a_row():
    """64 actors of 101 characters at the largest count, a 5000-character description of 4-byte
    characters, and a remove observing one add of every actor: still within MAX_OP_BYTES."""
    actors = [f"{i:02d}".ljust(MAX_ACTOR, "x") for i in range(MAX_CLOCK_ENTRIES)]
    clock = {a: MAX_COUNTER for a in actors}
    biggest_value = make_op("i" * 100, actors[0], clock, "set", "description", "\U0001F600" * 5000)
    biggest_remove = make_op("i" * 100, actors[0], clock, "remove", TAGS, "t" * 40,
                             [f"{'i' * 100}#{n}" for n in range(MAX_CLOCK_ENTRIES + 1)])
    assert op_problems(biggest_value) == [] and op_problems(biggest_remove) == []
    assert max(op_size(biggest_value), op_size(biggest_remove)) <= MAX_OP_BYTES
    too_big = make_op("i", actors[0], clock, "set", "description", "x" * MAX_OP_BYTES)
    assert op_problems(too_big) == [f"an operation is at most {MAX_OP_BYTES} bytes of JSON"
                                    f" (this one: {op_size(too_big)})"]
    past = make_op("i", "a", {"a": MAX_COUNTER + 1}, "set", "title", "x")
    assert op_problems(past) == [f"the count of actor a would pass {MAX_COUNTER}; sync with another device_id"]
