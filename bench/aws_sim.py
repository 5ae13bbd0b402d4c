"""Time to playable at AWS scale, simulated from executions measured here (issue 19, item 3).

An execution is a tree of what ran (Seq, Par, Map, Task: the shape of
stepfunctions/pipeline.asl.json); every Task carries what was measured for its
Lambda invocation on this machine: wall time, CPU seconds of its FFmpeg
children and of its own process threads, and the bytes it moved to and from S3.
The model replays the tree with each Task's duration as it would be on Lambda:

    task = transition + cold start (every invocation, worst case)
         + S3 bytes / per-function S3 throughput + S3 requests x request latency
         + FFmpeg CPU / min(vCPUs, ffmpeg_threads)   (x264 spreads over the cores it gets)
         + in-process CPU / min(vCPUs, 1)            (Python and the ML runtimes: one core)

with vCPUs = memory / 1,769 MB, and 6 at 10,240 MB, as AWS documents for
Lambda. Seq adds, Par takes its slowest branch, Map packs its items into
`concurrency` slots in order (a new item starts on the first slot to free up).
The critical path is the tree's duration; playable = processing_index 0, i.e.
after Finalize, the last Task (the Fallbacks state after it, which stores the
MP4 fallbacks while the video already plays, is not on the path).

Pure arithmetic, no I/O: tests/bench/test_aws_sim.py checks it on hand-made trees.
"""
from __future__ import annotations

import heapq
from dataclasses import asdict, dataclass, field, replace
from typing import Union

MB_PER_VCPU = 1769
MAX_VCPUS = 6.0
MAX_MEMORY_MB = 10240


def vcpus(memory_mb: int) -> float:
    """vCPUs Lambda gives a function of this memory size: 1 per 1,769 MB, and 6 at the
    10,240 MB maximum (where the ratio alone would say 5.79)."""
    if memory_mb >= MAX_MEMORY_MB:
        return MAX_VCPUS
    return min(MAX_VCPUS, memory_mb / MB_PER_VCPU)


@dataclass(frozen=True)
class Params:
    """The model's stated parameters (printed beside every figure)."""
    cold_start_image_s: float = 1.5       # container image function, first invocation of a sandbox
    cold_start_zip_s: float = 0.5         # zip function (+ layer)
    transition_s: float = 0.05            # Step Functions Standard: state entry to Lambda start
    s3_mb_per_s: float = 80.0             # one Lambda's GET/PUT throughput (MB/s, per function)
    s3_request_s: float = 0.02            # first-byte latency per S3 request
    ffmpeg_threads: float = 6.0           # how many vCPUs one FFmpeg ladder keeps busy
    in_process_threads: float = 1.0       # Python + CTranslate2/ONNX as run here: one core
    map_concurrency: int = 40             # infra/aws/functions.py CHUNK_CONCURRENCY


@dataclass(frozen=True)
class Task:
    name: str
    function: str
    wall_s: float = 0.0                   # measured here (diagnostic; the model does not use it)
    ffmpeg_cpu_s: float = 0.0
    process_cpu_s: float = 0.0
    s3_bytes: int = 0
    s3_requests: int = 0


@dataclass(frozen=True)
class Seq:
    steps: tuple


@dataclass(frozen=True)
class Par:
    branches: tuple


@dataclass(frozen=True)
class Map:
    items: tuple
    concurrency: int | None = None        # None: Params.map_concurrency


Node = Union[Task, Seq, Par, Map]


@dataclass(frozen=True)
class Function:
    memory_mb: int
    image: bool


def task_seconds(task: Task, fn: Function, p: Params) -> float:
    """One invocation's duration on Lambda under the model."""
    cpus = vcpus(fn.memory_mb)
    cold = p.cold_start_image_s if fn.image else p.cold_start_zip_s
    s3 = task.s3_bytes / (p.s3_mb_per_s * 1e6) + task.s3_requests * p.s3_request_s
    ffmpeg = task.ffmpeg_cpu_s / min(cpus, p.ffmpeg_threads) if task.ffmpeg_cpu_s else 0.0
    proc = task.process_cpu_s / min(cpus, p.in_process_threads) if task.process_cpu_s else 0.0
    return p.transition_s + cold + s3 + ffmpeg + proc


def makespan(durations: list[float], slots: int) -> float:
    """Items started in order, each on the first slot to free up (a Map with MaxConcurrency)."""
    if not durations:
        return 0.0
    free = [0.0] * max(1, min(slots, len(durations)))
    heapq.heapify(free)
    end = 0.0
    for d in durations:
        start = heapq.heappop(free)
        end = max(end, start + d)
        heapq.heappush(free, start + d)
    return end


def duration(node: Node, functions: dict[str, Function], p: Params, *, measured: bool = False) -> float:
    """The node's critical path: simulated, or (measured=True) from the Tasks' local wall times."""
    if isinstance(node, Task):
        return node.wall_s if measured else task_seconds(node, functions[node.function], p)
    if isinstance(node, Seq):
        return sum(duration(s, functions, p, measured=measured) for s in node.steps)
    if isinstance(node, Par):
        return max((duration(b, functions, p, measured=measured) for b in node.branches), default=0.0)
    if isinstance(node, Map):
        slots = node.concurrency or p.map_concurrency
        return makespan([duration(i, functions, p, measured=measured) for i in node.items], slots)
    raise TypeError(f"not an execution node: {node!r}")


def critical_tasks(node: Node, functions: dict[str, Function], p: Params) -> list[str]:
    """The Task names on the simulated critical path (for a Map: its slowest item)."""
    if isinstance(node, Task):
        return [node.name]
    if isinstance(node, Seq):
        return [n for s in node.steps for n in critical_tasks(s, functions, p)]
    children = node.branches if isinstance(node, Par) else node.items
    if not children:
        return []
    slowest = max(children, key=lambda c: duration(c, functions, p))
    return critical_tasks(slowest, functions, p)


def tasks(node: Node) -> list[Task]:
    if isinstance(node, Task):
        return [node]
    children = node.steps if isinstance(node, Seq) else node.branches if isinstance(node, Par) else node.items
    return [t for c in children for t in tasks(c)]


# ---------------------------------------------------------------- from measured invocations

# Function names of the pipeline (app.py handlers) -> the state they run.
LADDER_SINGLE = "pipeline_transcode"
LADDER_PLAN, LADDER_CHUNK, LADDER_STITCH = ("pipeline_transcode_plan", "pipeline_transcode_chunk",
                                            "pipeline_transcode_stitch")


def execution_tree(invocations: list[Task], shape: str, map_concurrency: int | None = None) -> Node:
    """The execution's tree from its invocations (in start order), as pipeline.asl.json runs them.

    serial: Dedup -> Transcode -> Transcribe -> Embed -> Finalize.
    fanout: Dedup -> Parallel[LadderPlan -> (Ladder | Map(chunks) -> LadderStitch)
                              | Speech -> Analysis] -> Finalize.
    """
    by_fn: dict[str, list[Task]] = {}
    for t in invocations:
        by_fn.setdefault(t.function, []).append(t)

    def one(fn: str) -> list[Task]:
        return by_fn.get(fn, [])[:1]

    head = one("pipeline_dedup")
    tail = one("pipeline_finalize")
    speech = [*one("pipeline_transcribe"), *one("pipeline_embed")]
    if shape == "serial":
        return Seq((*head, *one(LADDER_SINGLE), *speech, *tail))
    if by_fn.get(LADDER_CHUNK):
        ladder: tuple = (*one(LADDER_PLAN), Map(tuple(by_fn[LADDER_CHUNK]), map_concurrency),
                         *one(LADDER_STITCH))
    else:
        ladder = (*one(LADDER_PLAN), *one(LADDER_SINGLE))
    return Seq((*head, Par((Seq(ladder), Seq(tuple(speech)))), *tail))


def with_map_concurrency(node: Node, concurrency: int | None) -> Node:
    if isinstance(node, Task):
        return node
    if isinstance(node, Seq):
        return Seq(tuple(with_map_concurrency(s, concurrency) for s in node.steps))
    if isinstance(node, Par):
        return Par(tuple(with_map_concurrency(b, concurrency) for b in node.branches))
    return replace(node, items=tuple(with_map_concurrency(i, concurrency) for i in node.items),
                   concurrency=concurrency)


def report(node: Node, functions: dict[str, Function], p: Params) -> dict:
    """Measured and simulated critical path, per Task and in total, with the parameters."""
    per_task = []
    for t in tasks(node):
        fn = functions[t.function]
        per_task.append({"state": t.name, "function": t.function, "memory_mb": fn.memory_mb,
                         "vcpus": round(vcpus(fn.memory_mb), 2), "image": fn.image,
                         "measured_wall_s": round(t.wall_s, 3), "ffmpeg_cpu_s": round(t.ffmpeg_cpu_s, 3),
                         "process_cpu_s": round(t.process_cpu_s, 3), "s3_mb": round(t.s3_bytes / 1e6, 2),
                         "s3_requests": t.s3_requests,
                         "simulated_s": round(task_seconds(t, fn, p), 3)})
    return {"measured_critical_path_s": round(duration(node, functions, p, measured=True), 3),
            "simulated_s": round(duration(node, functions, p), 3),
            "critical_path": critical_tasks(node, functions, p),
            "tasks": per_task, "params": asdict(p)}


@dataclass
class Totals:
    """Accumulates one invocation's measurements (the bench's probes add to it from any thread)."""
    function: str
    started: float = 0.0
    ended: float = 0.0
    ffmpeg_cpu_s: float = 0.0
    ffmpeg_wall_s: float = 0.0
    thread_cpu_s: float = 0.0
    native_cpu_s: float = 0.0
    s3_bytes: int = 0
    s3_requests: int = 0
    s3_wall_s: float = 0.0
    extra: dict = field(default_factory=dict)

    def task(self, name: str) -> Task:
        """In-process CPU: the invocation's Python threads plus the native ML threads
        (CTranslate2, ONNX Runtime) that worked while it ran."""
        return Task(name=name, function=self.function, wall_s=max(0.0, self.ended - self.started),
                    ffmpeg_cpu_s=self.ffmpeg_cpu_s, process_cpu_s=self.thread_cpu_s + self.native_cpu_s,
                    s3_bytes=self.s3_bytes, s3_requests=self.s3_requests)


def deployed_functions() -> dict[str, Function]:
    """Memory and package kind of every pipeline function as the template deploys them:
    .chalice/config.json's lambda_memory_size, overridden by infra/aws/functions.py."""
    import json
    from pathlib import Path

    from infra.aws import functions

    config = json.loads((Path(__file__).resolve().parents[1] / ".chalice" / "config.json").read_text())
    default = config.get("lambda_memory_size", 128)
    per_fn = config.get("lambda_functions", {})
    out = {}
    for name, spec in functions.PIPELINE_FUNCTIONS.items():
        memory = spec.memory or per_fn.get(name, {}).get("lambda_memory_size", default)
        out[name] = Function(memory_mb=int(memory), image=spec.image)
    return out


# ---------------------------------------------------------------- replay a stored run (what-if)

def tasks_from_report(rep: dict) -> list[Task]:
    """The Tasks a report() stored, back as model inputs."""
    return [Task(name=t["state"], function=t["function"], wall_s=t["measured_wall_s"],
                 ffmpeg_cpu_s=t["ffmpeg_cpu_s"], process_cpu_s=t["process_cpu_s"],
                 s3_bytes=int(t["s3_mb"] * 1e6), s3_requests=t["s3_requests"]) for t in rep["tasks"]]


def replay(doc: dict, p: Params, memory: dict[str, int] | None = None) -> dict:
    """Every clip and shape of an aws_sim.json, simulated again under other parameters or memory sizes."""
    functions = deployed_functions()
    for name, mb in (memory or {}).items():
        functions[name] = replace(functions[name], memory_mb=mb)
    out = {}
    for clip, entry in doc.get("clips", {}).items():
        for shape in ("serial", "fanout"):
            if shape not in entry:
                continue
            rep = entry[shape]["simulation"]["map_concurrency_1"]
            tree = execution_tree(tasks_from_report(rep), shape)
            out[f"{clip} {shape}"] = {
                "measured_s": entry[shape]["median_s"],
                "map_1_s": round(duration(with_map_concurrency(tree, 1), functions, p), 2),
                f"map_{p.map_concurrency}_s": round(duration(tree, functions, p), 2),
                "critical_path": critical_tasks(tree, functions, p)}
    return out


def main(argv: list[str] | None = None) -> None:
    """python -m bench.aws_sim [aws_sim.json] [--memory fn=MB ...]: replay a stored run."""
    import argparse
    import json
    from pathlib import Path
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("path", nargs="?", default=str(Path(__file__).parent / "results" / "aws_sim.json"))
    parser.add_argument("--memory", action="append", default=[], help="function=MB, e.g. pipeline_dedup=10240")
    parser.add_argument("--cold-start-image", type=float, default=Params.cold_start_image_s)
    parser.add_argument("--cold-start-zip", type=float, default=Params.cold_start_zip_s)
    args = parser.parse_args(argv)
    doc = json.loads(Path(args.path).read_text())
    p = Params(cold_start_image_s=args.cold_start_image, cold_start_zip_s=args.cold_start_zip)
    memory = {k: int(v) for k, v in (m.split("=", 1) for m in args.memory)}
    print(json.dumps({"params": asdict(p), "memory_overrides": memory, "runs": replay(doc, p, memory)}, indent=2))


if __name__ == "__main__":
    main()
