"""Speech quality over game sound: WER per condition and real-time factor per model/decoding.

Run: .venv/bin/python bench/speech_quality.py [--per-condition 6] [--model NAME=DIR ...]
     .venv/bin/python bench/speech_quality.py --languages NAME=DIR   (adds other languages)
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
    # Speech enhancement before Whisper (FFmpeg filters of the shipped FFmpeg; `_af` is
    # the filter graph the audio goes through, decoded to 16 kHz float samples).
    "bandpass": {"_af": "highpass=f=200,lowpass=f=3800"},
    "afftdn": {"_af": "afftdn=nf=-25"},
    # RNNoise (its weights are compiled into librnnoise, shipped in the pyrnnoise wheel):
    # measured with the wheel on PYTHONPATH, not a dependency of the project.
    "rnnoise": {"_af": "rnnoise"},
    "bandpass_afftdn": {"_af": "highpass=f=200,lowpass=f=3800,afftdn=nf=-25"},
    # The stream glossary (chalicelib.glossary, the default gaming one) with its terms as
    # hotwords (what the transcribe step does) or as the initial prompt, and its spellings
    # normalised. Every run also reports `wer_spelling`: its own hypotheses normalised
    # by the glossary, the effect of the spelling rewrite alone (no decoding noise).
    "glossary_hotwords": {"_glossary": "hotwords"},
    "glossary_prompt": {"_glossary": "prompt"},
    # What the step did before decode_failed: failed segments kept after retrying them at
    # five higher temperatures, no n-gram rule.
    "glossary_hotwords_retried": {"_glossary": "hotwords", "_keep_failed": True,
                                  "temperature": [0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
                                  "no_repeat_ngram_size": 0},
    # No decoder bias: the glossary only rewrites spellings.
    "glossary_spelling_only": {"_glossary": "spelling"},
}


def _filtered(path: Path, graph: str):
    """The clip through an FFmpeg filter graph (or RNNoise), as 16 kHz mono float32 samples."""
    import subprocess

    import numpy as np

    from chalicelib.media.ffmpeg import ffmpeg_exe

    if graph == "rnnoise":
        return _rnnoise(path)
    pcm = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-af", graph, "-ac", "1",
                          "-ar", "16000", "-f", "s16le", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(pcm, np.int16).astype(np.float32) / 32768.0


def _rnnoise(path: Path):
    """RNNoise over the clip: 48 kHz frames of 480 samples through librnnoise, back to 16 kHz."""
    import ctypes
    import importlib.util
    import subprocess

    import numpy as np

    from chalicelib.media.ffmpeg import ffmpeg_exe

    spec = importlib.util.find_spec("pyrnnoise")
    if spec is None:
        raise SystemExit("rnnoise: put the pyrnnoise wheel on PYTHONPATH (pip install --target DIR)")
    lib = ctypes.CDLL(str(Path(spec.origin).parent / "librnnoise.so"))
    lib.rnnoise_create.restype = ctypes.c_void_p
    lib.rnnoise_create.argtypes = [ctypes.c_void_p]
    lib.rnnoise_destroy.argtypes = [ctypes.c_void_p]
    lib.rnnoise_process_frame.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float),
                                          ctypes.POINTER(ctypes.c_float)]
    pcm = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-ac", "1", "-ar", "48000",
                          "-f", "s16le", "-"], capture_output=True, check=True).stdout
    x = np.frombuffer(pcm, np.int16).astype(np.float32)  # RNNoise works in 16-bit units
    x = np.concatenate([x, np.zeros(-len(x) % 480, np.float32)])
    out = np.empty_like(x)
    state = lib.rnnoise_create(None)
    ptr = ctypes.POINTER(ctypes.c_float)
    for i in range(0, len(x), 480):
        frame = np.ascontiguousarray(x[i:i + 480])
        dst = np.empty(480, np.float32)
        lib.rnnoise_process_frame(state, dst.ctypes.data_as(ptr), frame.ctypes.data_as(ptr))
        out[i:i + 480] = dst
    lib.rnnoise_destroy(state)
    back = subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "f32le", "-ar", "48000", "-ac", "1",
                           "-i", "-", "-ar", "16000", "-f", "f32le", "-"],
                          input=(out / 32768.0).astype(np.float32).tobytes(),
                          capture_output=True, check=True).stdout
    return np.frombuffer(back, np.float32).copy()


def run_config(model, items, options: dict) -> dict:
    from chalicelib import glossary
    from chalicelib.ml import transcribe
    from tests.ml import corpus

    options = dict(options)
    graph, bias = options.pop("_af", None), options.pop("_glossary", None)
    keep_failed = options.pop("_keep_failed", False)
    entries = glossary.effective([])
    fix = glossary.Normalizer(entries)
    if bias == "hotwords":
        options["hotwords"] = glossary.prompt(entries)
    elif bias == "prompt":
        options["initial_prompt"] = glossary.prompt(entries)
    import ctranslate2

    hyps, wall, cpu = [], 0.0, 0.0
    for index, item in enumerate(items):
        # Whisper falls back to sampling (temperature > 0) on doubtful segments: the same
        # seed per clip makes runs repeatable, so two configurations differ only by their change.
        ctranslate2.set_random_seed(index + 1)
        t, c = time.perf_counter(), time.process_time()
        audio = _filtered(item.path, graph) if graph else str(item.path)
        segments, _ = model.transcribe(audio, **options)
        if not keep_failed:  # as the step does
            segments = [s for s in segments if not transcribe.decode_failed(s)]
        text = " ".join(s.text.strip() for s in segments)
        hyps.append(fix.text(text) if bias else text)
        wall += time.perf_counter() - t
        cpu += time.process_time() - c
    audio_s = sum(i.duration for i in items)
    with_terms = [i for i, item in enumerate(items) if _has_glossary_term(item.reference)]
    fixed = [fix.text(h) for h in hyps]
    return {"wer": corpus.wer_by_condition(items, hyps),
            "wer_spelling": corpus.wer_by_condition(items, fixed),
            "wer_glossary_clips": corpus.wer_by_condition([items[i] for i in with_terms],
                                                          [hyps[i] for i in with_terms]),
            "wer_glossary_clips_spelling": corpus.wer_by_condition([items[i] for i in with_terms],
                                                                   [fixed[i] for i in with_terms]),
            "rtf": round(wall / audio_s, 4),
            "cpu_s_per_audio_s": round(cpu / audio_s, 4), "audio_s": round(audio_s, 1),
            "load_average": round(os.getloadavg()[0], 2)}


def _has_glossary_term(reference: str) -> bool:
    """Whether the sentence says a term of the default glossary (in any of its spellings)."""
    from chalicelib import glossary

    said = f" {' '.join(glossary.words(reference))} "
    return any(f" {' '.join(glossary.words(s))} " in said
               for e in glossary.effective([]) for s in [e["term"], *glossary.spellings(e)])


# Speech in other languages (espeak-ng voices), for a multilingual model: is the language
# detected, and how well is it transcribed (clean speech, no game sound).
LANGUAGE_SENTENCES: dict[str, tuple[str, list[str]]] = {
    "en": ("en-us", ["They are pushing the bomb site right now.",
                     "I need a medkit before we go back into the tunnel.", "Watch the sniper on the roof."]),
    "es": ("es", ["Están empujando el punto de la bomba ahora mismo.",
                  "Necesito un botiquín antes de volver al túnel.", "Cuidado con el francotirador en el tejado."]),
    "de": ("de", ["Sie greifen gerade den Bombenplatz an.",
                  "Ich brauche ein Medikit bevor wir zurück in den Tunnel gehen.",
                  "Achtung, Scharfschütze auf dem Dach."]),
    "fr": ("fr", ["Ils poussent sur le site de la bombe maintenant.",
                  "J'ai besoin d'un kit de soin avant de retourner dans le tunnel.",
                  "Attention au tireur sur le toit."]),
    "pt": ("pt", ["Eles estão empurrando o local da bomba agora.",
                  "Preciso de um kit médico antes de voltar ao túnel.", "Cuidado com o atirador no telhado."]),
}


def run_languages(model, work: Path) -> dict:
    """Per language: clips whose language Whisper detected, WER (words as written), RTF."""
    import re

    import ctranslate2
    import numpy as np

    from chalicelib.ml import transcribe
    from chalicelib.ml.wer import edit_distance
    from tests.ml import corpus
    from tests.ml.clips import SR, write_wav

    def tokens(text: str) -> list[str]:
        return re.findall(r"\w+", text.lower())

    out = {}
    for lang, (voice, sentences) in LANGUAGE_SENTENCES.items():
        errors = words = detected = 0
        wall = audio = 0.0
        for i, sentence in enumerate(sentences):
            pad = np.zeros(SR, np.float32)
            speech = corpus.speak(sentence, voice, 150)
            path = write_wav(work / f"lang-{lang}-{i}.wav", np.concatenate([pad, speech, pad]))
            ctranslate2.set_random_seed(i + 1)
            t = time.perf_counter()
            segments, info = model.transcribe(str(path), **transcribe.TRANSCRIBE_OPTIONS)
            text = " ".join(s.text.strip() for s in segments)
            wall += time.perf_counter() - t
            audio += len(speech) / SR + 2
            detected += info.language == lang
            errors += edit_distance(tokens(sentence), tokens(text))
            words += len(tokens(sentence))
        out[lang] = {"detected": f"{detected}/{len(sentences)}", "wer": round(errors / words, 4),
                     "rtf": round(wall / audio, 3)}
        print(lang, json.dumps(out[lang]), flush=True)
    return out


def main(argv: list[str]) -> None:
    from chalicelib.ml import transcribe
    from tests.ml import corpus

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-condition", type=int, default=6)
    parser.add_argument("--model", action="append", default=[], help="NAME=CT2_DIR")
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--languages", metavar="NAME=CT2_DIR",
                        help="only measure other languages with this multilingual model, added to --out")
    args = parser.parse_args(argv)
    if args.languages:
        label, _, path = args.languages.partition("=")
        doc = json.loads(args.out.read_text())
        model = transcribe.load_model(path, threads=os.cpu_count())
        doc.setdefault("languages", {})[label] = run_languages(
            model, Path(tempfile.mkdtemp(prefix="speech-languages-")))
        args.out.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"wrote {args.out}")
        return
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
    base = doc["runs"].get("tiny.en/shipped", {}).get("rtf")
    for run in doc["runs"].values():
        if base:
            run["rtf_vs_baseline"] = round(run["rtf"] / base, 3)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main(sys.argv[1:])
