"""POV matching across voice chat: precision, recall and offset error per condition.

Run: .venv/bin/python bench/pov_quality.py [--per-condition 6]
Builds the pairs of tests/ml/pov_pairs.py (one game-sound bed - gunfire and explosions,
engine hum, music, music under gunfire - under two players' voice chats, offsets up to
+-30 s, overlaps down to 5 s; negatives: one voice over two beds, and unrelated clips),
encodes each clip as AAC (what uploads carry), decodes it back to the 16 kHz speech WAV
(what the dedup step writes) and scores each pair with two matchers:
- chromaprint: align() on the chromaprint sequence (what relate.py used alone before);
- landmarks: gamesound.landmarks/match (spectral peak pairs outside speech, offset votes),
  what relate.py decides POV by now.
A pair is found when the matcher says "match" AND the offset is within 0.5 s; a match
of a negative pair, or at a wrong offset, counts against precision. Also reports the
landmark fingerprint's CPU time per minute of audio (the cost it adds to dedup) and the
time per pair comparison; writes bench/results/pov_quality.json.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results" / "pov_quality.json"
MAX_OFFSET_ERROR_S = 0.5
MATCHERS = ("chromaprint", "landmarks")


def _via_aac(samples, work: Path, name: str) -> Path:
    from chalicelib.media.ffmpeg import ffmpeg_exe, speech_wav_args
    from tests.ml.clips import write_wav

    wav = write_wav(work / f"{name}.wav", samples)
    m4a = work / f"{name}.m4a"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(wav), "-c:a", "aac",
                    "-b:a", "96k", str(m4a)], check=True, timeout=120)
    back = work / f"{name}.16k.wav"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(m4a), *speech_wav_args(),
                    str(back)], check=True, timeout=120)
    return m4a, back


def _score(pair, work: Path) -> dict:
    from chalicelib.media import fingerprint as fp, gamesound
    from tests.ml.clips import SR

    out = {"pair": pair.name, "condition": pair.condition, "offset_s": pair.offset_s,
           "overlap_s": round(pair.overlap_s, 2), "seconds": round((len(pair.a) + len(pair.b)) / SR, 1)}
    (ma, wa), (mb, wb) = _via_aac(pair.a, work, pair.name + "-a"), _via_aac(pair.b, work, pair.name + "-b")
    # B's start in A's time: align(short, long) gives the short clip's start in the long one.
    b_is_short = len(pair.b) <= len(pair.a)

    def b_in_a(offset: float) -> float:
        return offset if b_is_short else -offset

    t = time.perf_counter()
    ca, cb = fp.audio_fingerprint(ma, 60), fp.audio_fingerprint(mb, 60)
    short, long_ = (cb, ca) if b_is_short else (ca, cb)
    chroma = fp.align(fp.MediaSignature(0, None, short), fp.MediaSignature(0, None, long_))
    out["chromaprint"] = {"score": chroma.score, "offset_s": round(b_in_a(chroma.offset_s), 3),
                          "matched": chroma.score >= fp.ALIGN_MIN_SCORE}
    t_chroma = time.perf_counter() - t
    t = time.process_time()
    la = gamesound.landmarks(gamesound.read_speech_wav(wa))
    lb = gamesound.landmarks(gamesound.read_speech_wav(wb))
    t_fp = time.process_time() - t
    t = time.perf_counter()
    m = gamesound.match(la, lb)
    t_match = time.perf_counter() - t
    out["landmarks"] = {"score": m.score, "votes": m.votes, "offset_s": m.offset_s,
                        "matched": m.matched, "fingerprint_cpu_s": round(t_fp, 3),
                        "match_s": round(t_match, 4), "peaks": [len(la.bins) // 2, len(lb.bins) // 2]}
    out["chromaprint"]["seconds"] = round(t_chroma, 3)
    for key in MATCHERS:
        r = out[key]
        if pair.offset_s is not None:
            r["offset_error_s"] = round(abs(r["offset_s"] - pair.offset_s), 3)
            r["found"] = r["matched"] and r["offset_error_s"] <= MAX_OFFSET_ERROR_S
    return out


def summarise(rows: list[dict]) -> dict:
    """Per matcher and condition: precision, recall, offset error (positives), false matches."""
    summary: dict = {}
    for key in MATCHERS:
        per: dict = {}
        for cond in sorted({r["condition"] for r in rows}) + ["all"]:
            rs = [r for r in rows if cond in ("all", r["condition"])]
            pos = [r for r in rs if r["offset_s"] is not None]
            matched = [r for r in rs if r[key]["matched"]]
            found = [r for r in pos if r[key]["found"]]
            per[cond] = {"pairs": len(rs), "matched": len(matched),
                         "precision": round(len(found) / len(matched), 3) if matched else None,
                         "false_matches": len(matched) - len(found)}
            if pos:
                errors = [r[key]["offset_error_s"] for r in found]
                per[cond] |= {"recall": round(len(found) / len(pos), 3),
                              "offset_error_s_max": max(errors, default=None),
                              "offset_error_s_mean": round(sum(errors) / len(errors), 4) if errors else None}
            score = "votes" if key == "landmarks" else "score"
            if pos:
                per[cond]["min_positive_" + score] = min(r[key][score] for r in pos)
            if len(pos) < len(rs):
                per[cond]["max_negative_" + score] = max(r[key][score] for r in rs if r["offset_s"] is None)
        summary[key] = per
    audio_s = sum(r["seconds"] for r in rows)
    summary["landmarks_cpu_s_per_audio_minute"] = round(
        60 * sum(r["landmarks"]["fingerprint_cpu_s"] for r in rows) / audio_s, 3)
    summary["landmarks_match_ms_per_pair"] = round(
        1000 * sum(r["landmarks"]["match_s"] for r in rows) / len(rows), 3)
    return summary


def main() -> None:
    from tests.ml import pov_pairs

    parser = argparse.ArgumentParser()
    parser.add_argument("--per-condition", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [_score(p, Path(tmp)) for p in pov_pairs.pairs(args.per_condition)]
    summary = summarise(rows)
    result = {"per_condition": args.per_condition, "load_average": os.getloadavg(),
              "summary": summary, "pairs": rows}
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    for row in rows:
        print(row["pair"], row["offset_s"], row["overlap_s"],
              "chroma", row["chromaprint"]["score"], row["chromaprint"]["offset_s"],
              "landmarks", row["landmarks"]["votes"], row["landmarks"]["score"],
              row["landmarks"]["offset_s"])
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
