"""Speech quality over game sound: WER per condition and real-time factor per model/decoding.

Run: .venv/bin/python bench/speech_quality.py [--per-condition 6] [--model NAME=DIR ...]
Builds the hard corpus of tests/ml/corpus.py (every condition, `--per-condition`
items each), transcribes it with the shipped model (Whisper tiny.en, the baseline)
under each decoding configuration in CONFIGS, and with every extra CTranslate2
Whisper directory given by --model, and writes bench/results/speech_quality.json.
The real-time factor is wall time over audio time; on a shared machine it is
inflated by the load, so `rtf_vs_baseline` (same run, same clips) is the figure
to compare, with the load average recorded beside it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

RESULTS = ROOT / "bench" / "results" / "speech_quality.json"

# Decoding variants measured on the shipped model, each a change to TRANSCRIBE_OPTIONS.
CONFIGS: dict[str, dict] = {
    "shipped": {},
    "greedy": {"beam_size": 1},
    "no_vad": {"vad_filter": False},
    "vad_0.25": {"vad_parameters": {"threshold": 0.25, "min_speech_duration_ms": 250,
                                    "min_silence_duration_ms": 500, "speech_pad_ms": 400}},
    "prompted": {"initial_prompt": "Game voice chat: headshot, medkit, one tap, bomb site, "
                                   "flank, rotate, smoke grenade, spawn, objective."},
}


def run_config(model, items, options: dict) -> dict:
    from tests.ml import corpus

    hyps, wall, cpu = [], 0.0, 0.0
    for item in items:
        t, c = time.perf_counter(), time.process_time()
        segments, _ = model.transcribe(str(item.path), **options)
        hyps.append(" ".join(s.text.strip() for s in segments))
        wall += time.perf_counter() - t
        cpu += time.process_time() - c
    audio = sum(i.duration for i in items)
    return {"wer": corpus.wer_by_condition(items, hyps), "rtf": round(wall / audio, 4),
            "cpu_s_per_audio_s": round(cpu / audio, 4), "audio_s": round(audio, 1),
            "load_average": round(os.getloadavg()[0], 2)}


def main(argv: list[str]) -> None:
    from chalicelib.ml import transcribe
    from tests.ml import corpus

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-condition", type=int, default=6)
    parser.add_argument("--model", action="append", default=[], help="NAME=CT2_DIR")
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    items = corpus.corpus(Path(tempfile.mkdtemp(prefix="speech-corpus-")), args.per_condition)
    doc = {"per_condition": args.per_condition, "items": len(items), "cpu_count": os.cpu_count(),
           "conditions": {k: list(v) for k, v in corpus.CONDITIONS.items()}, "runs": {}}
    tiny = transcribe.load_model(threads=os.cpu_count())
    for name in args.configs.split(","):
        options = {**transcribe.TRANSCRIBE_OPTIONS, **CONFIGS[name]}
        doc["runs"][f"tiny.en/{name}"] = run_config(tiny, items, options)
        print(f"tiny.en/{name}", json.dumps(doc["runs"][f"tiny.en/{name}"]), flush=True)
    for spec in args.model:
        label, _, path = spec.partition("=")
        model = transcribe.load_model(path, threads=os.cpu_count())
        options = {**transcribe.TRANSCRIBE_OPTIONS, "language": "en"}
        doc["runs"][f"{label}/shipped"] = run_config(model, items, options)
        print(f"{label}/shipped", json.dumps(doc["runs"][f"{label}/shipped"]), flush=True)
    base = doc["runs"]["tiny.en/shipped"]["rtf"]
    for run in doc["runs"].values():
        run["rtf_vs_baseline"] = round(run["rtf"] / base, 3)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main(sys.argv[1:])
