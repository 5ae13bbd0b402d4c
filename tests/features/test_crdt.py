"""The CRDT's laws, for any interleaving of operations from several actors (hypothesis)."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.sync.crdt import (FIELDS, Replica, State, apply_all, clock_leq, compare, merge,
                                  observed_adds)

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
