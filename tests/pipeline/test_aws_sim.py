"""The AWS time-to-playable model (bench/aws_sim.py) on hand-made execution histories."""
from __future__ import annotations

import pytest

from bench import aws_sim
from bench.aws_sim import Function, Map, Par, Params, Seq, Task

# No cold start, transition or S3 latency unless a test asks: the arithmetic stays visible.
BARE = Params(cold_start_image_s=0.0, cold_start_zip_s=0.0, transition_s=0.0, s3_mb_per_s=100.0,
              s3_request_s=0.0, ffmpeg_threads=6.0, in_process_threads=1.0, map_concurrency=40)
FNS = {"big": Function(memory_mb=10240, image=True),       # 6 vCPUs (capped)
       "one": Function(memory_mb=1769, image=False),       # exactly 1 vCPU
       "half": Function(memory_mb=884, image=True)}        # 0.4997 vCPU


def test_vcpus_follow_memory_and_stop_at_six():
    assert aws_sim.vcpus(1769) == 1.0
    assert aws_sim.vcpus(3538) == 2.0
    assert aws_sim.vcpus(10240) == 6.0          # 10,240 / 1,769 = 5.79; AWS says 6 at the top
    assert aws_sim.vcpus(10000) == pytest.approx(10000 / 1769)
    assert aws_sim.vcpus(128) == pytest.approx(128 / 1769)


def test_a_task_adds_cold_start_transfer_and_cpu_over_its_vcpus():
    p = Params(cold_start_image_s=1.5, cold_start_zip_s=0.5, transition_s=0.1, s3_mb_per_s=50.0,
               s3_request_s=0.02, ffmpeg_threads=4.0, in_process_threads=1.0)
    t = Task("Ladder", "big", ffmpeg_cpu_s=40.0, process_cpu_s=3.0, s3_bytes=100_000_000, s3_requests=10)
    # 0.1 + 1.5 + (100 MB / 50 MB/s = 2) + 10 x 0.02 + 40 / min(6, 4) + 3 / min(6, 1)
    assert aws_sim.task_seconds(t, FNS["big"], p) == pytest.approx(0.1 + 1.5 + 2 + 0.2 + 10 + 3)
    # A zip function under 1 vCPU: its in-process CPU slows down by the fraction it gets.
    small = Task("Plan", "half", process_cpu_s=1.0)
    assert aws_sim.task_seconds(small, Function(884, False), p) == pytest.approx(
        0.1 + 0.5 + 1.0 / (884 / 1769))


def test_map_packs_items_into_its_slots_in_order():
    assert aws_sim.makespan([4, 4, 4, 4], 40) == 4
    assert aws_sim.makespan([4, 4, 4, 4], 1) == 16
    assert aws_sim.makespan([4, 4, 4, 4], 2) == 8
    # 5 and 1 start; the 1 frees its slot at t=1 so 3 runs 1..4, then 2 starts at 4 -> 6.
    assert aws_sim.makespan([5, 1, 3, 2], 2) == 6
    assert aws_sim.makespan([], 3) == 0


def test_critical_path_of_a_parallel_with_a_map_inside():
    dedup = Task("Dedup", "one", process_cpu_s=2.0)                        # 2 s
    plan = Task("LadderPlan", "one", process_cpu_s=0.5)                    # 0.5 s
    chunks = tuple(Task(f"LadderChunk{i}", "big", ffmpeg_cpu_s=12.0) for i in range(4))  # 2 s each
    stitch = Task("LadderStitch", "big", s3_bytes=100_000_000)             # 1 s of transfer
    speech = Task("Speech", "one", process_cpu_s=6.0)                      # 6 s
    analysis = Task("Analysis", "one", process_cpu_s=1.0)                  # 1 s
    finalize = Task("Finalize", "one", process_cpu_s=0.25)                 # 0.25 s
    tree = Seq((dedup, Par((Seq((plan, Map(chunks), stitch)), Seq((speech, analysis)))), finalize))

    # Map at 40: ladder = 0.5 + 2 + 1 = 3.5 < speech 7, so speech is critical: 2 + 7 + 0.25.
    assert aws_sim.duration(tree, FNS, BARE) == pytest.approx(9.25)
    assert aws_sim.critical_tasks(tree, FNS, BARE) == ["Dedup", "Speech", "Analysis", "Finalize"]
    # Map at 1: ladder = 0.5 + 8 + 1 = 9.5 > 7: the ladder becomes critical: 2 + 9.5 + 0.25.
    serial_map = aws_sim.with_map_concurrency(tree, 1)
    assert aws_sim.duration(serial_map, FNS, BARE) == pytest.approx(11.75)
    assert aws_sim.critical_tasks(serial_map, FNS, BARE)[:3] == ["Dedup", "LadderPlan", "LadderChunk0"]


def test_measured_critical_path_uses_the_wall_times():
    a, b, c = Task("A", "one", wall_s=3.0), Task("B", "one", wall_s=5.0), Task("C", "one", wall_s=1.0)
    tree = Seq((a, Par((b, Map((c, c, c), concurrency=2)))))
    # 3 + max(5, makespan(1, 1, 1 in 2 slots) = 2)
    assert aws_sim.duration(tree, FNS, BARE, measured=True) == 8.0


def test_execution_tree_follows_the_state_machine_shapes():
    inv = [Task("d", "pipeline_dedup"), Task("p", "pipeline_transcode_plan"),
           Task("t", "pipeline_transcribe"), Task("c0", "pipeline_transcode_chunk"),
           Task("c1", "pipeline_transcode_chunk"), Task("e", "pipeline_embed"),
           Task("s", "pipeline_transcode_stitch"), Task("f", "pipeline_finalize")]
    tree = aws_sim.execution_tree(inv, "fanout")
    assert tree == Seq((inv[0], Par((Seq((inv[1], Map((inv[3], inv[4])), inv[6])),
                                     Seq((inv[2], inv[5])))), inv[7]))
    single = [Task("d", "pipeline_dedup"), Task("x", "pipeline_transcode"), Task("t", "pipeline_transcribe"),
              Task("e", "pipeline_embed"), Task("f", "pipeline_finalize")]
    assert aws_sim.execution_tree(single, "serial") == Seq(tuple(single))


def test_totals_add_python_and_native_thread_cpu():
    t = aws_sim.Totals("pipeline_transcribe", started=10.0, ended=20.0, ffmpeg_wall_s=2.0,
                       ffmpeg_cpu_s=3.0, thread_cpu_s=1.0, native_cpu_s=4.5, s3_wall_s=1.0, s3_bytes=5,
                       s3_requests=2)
    task = t.task("Speech")
    assert (task.wall_s, task.ffmpeg_cpu_s, task.process_cpu_s, task.s3_bytes, task.s3_requests) == (
        10.0, 3.0, 5.5, 5, 2)


def test_a_stored_run_replays_with_other_memory_sizes():
    chunks = [Task(f"c{i}", "pipeline_transcode_chunk", ffmpeg_cpu_s=12.0) for i in range(2)]
    inv = [Task("d", "pipeline_dedup", process_cpu_s=1.0), Task("p", "pipeline_transcode_plan"), *chunks,
           Task("s", "pipeline_transcode_stitch"), Task("t", "pipeline_transcribe"), Task("e", "pipeline_embed"),
           Task("f", "pipeline_finalize")]
    fns = aws_sim.deployed_functions()
    tree = aws_sim.execution_tree(inv, "fanout")
    rep = aws_sim.report(aws_sim.with_map_concurrency(tree, 1), fns, BARE)
    doc = {"clips": {"x": {"fanout": {"median_s": 9.0, "simulation": {"map_concurrency_1": rep}}}}}
    base = aws_sim.replay(doc, BARE, {"pipeline_dedup": 1024})["x fanout"]
    # Dedup at 1,024 MB (0.579 vCPU) -> at 1,769 MB (1 vCPU): its 1 s of CPU shrinks from 1.727 s to 1 s.
    more = aws_sim.replay(doc, BARE, {"pipeline_dedup": 1769})["x fanout"]
    assert base["map_40_s"] - more["map_40_s"] == pytest.approx(1769 / 1024 - 1.0, abs=0.011)
    # Replayed with no override, it runs at the deployed size (10,240 MB: 6 vCPUs, in-process capped at 1).
    assert aws_sim.replay(doc, BARE)["x fanout"]["map_40_s"] == pytest.approx(more["map_40_s"], abs=0.011)
    # Two 12 s chunks at 6 vCPUs: 2 s each, side by side at 40, one after the other at 1.
    assert base["map_1_s"] - base["map_40_s"] == pytest.approx(2.0, abs=0.011)
