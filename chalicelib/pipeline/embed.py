"""Embed step (processing_index 4): vectors for speech search and similar clips.

Each transcript segment gets an all-MiniLM-L6-v2 embedding (ONNX runtime,
loaded once per warm container) for semantic search. The clip vector joins
what the clip says (mean of its segment vectors) and what it shows (its
perceptual signature vector), each unit length and weighted, so one cosine
distance ranks similar clips. The step also finds trimmed cuts and other
points of view (chalicelib.pipeline.relate).
"""
from __future__ import annotations

import json
import logging
import math

from chalicelib import db, storage
from chalicelib.pipeline import media_io, relate
from chalicelib.pipeline.step import Envelope, stage_step

logger = logging.getLogger(__name__)

TEXT_WEIGHT = 0.5  # share of the clip vector's cosine that comes from speech
VISUAL_DIM = 128


def _unit(vec: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vec))
    return [x / norm for x in vec] if norm > 0 else [0.0] * len(vec)


def clip_vector(text: list[float] | None, visual: list[float] | None, dim: int) -> list[float]:
    """[√w·text, √(1-w)·visual], renormalised; a missing part counts as zeros."""
    t = _unit(text) if text else [0.0] * dim
    v = _unit(visual) if visual else [0.0] * VISUAL_DIM
    wt = math.sqrt(TEXT_WEIGHT) if any(t) else 0.0
    wv = math.sqrt(1 - TEXT_WEIGHT) if any(v) else 0.0
    return _unit([wt * x for x in t] + [wv * x for x in v])


def encode(texts: list[str]) -> list[list[float]]:
    from chalicelib.ml import embed
    return embed.get_encoder().encode(texts).tolist() if texts else []


@stage_step("embed")
def run(event: Envelope) -> dict:
    """Embed the transcript segments, store the clip vector, find related clips."""
    from chalicelib.ml import embed

    video_id = event["video_id"]
    segments = db.fetch_all(
        "SELECT idx, start_s, end_s, text FROM transcript_segments WHERE video_id = %s ORDER BY idx",
        (video_id,))
    vectors = encode([s["text"] for s in segments])
    text_vec = _unit([sum(col) / len(vectors) for col in zip(*vectors)]) if vectors else None
    sig = db.fetch_one("SELECT vector FROM video_signatures WHERE video_id = %s", (video_id,))
    visual = json.loads(sig["vector"]) if sig else None
    combined = clip_vector(text_vec, visual, embed.DIM)
    key = storage.embedding_key(video_id)
    body = json.dumps({
        "video_id": video_id, "model": embed.MODEL_NAME, "dim": embed.DIM,
        "clip_vector": combined, "text_vector": text_vec,
        "segments": [{"idx": s["idx"], "start": s["start_s"], "end": s["end_s"], "vector": v}
                     for s, v in zip(segments, vectors)]}).encode()
    storage.put_bytes(key, body, "application/json")
    with db.transaction() as cur:
        for s, v in zip(segments, vectors):
            cur.execute("UPDATE transcript_segments SET embedding = %s::vector"
                        " WHERE video_id = %s AND idx = %s", (json.dumps(v), video_id, s["idx"]))
        cur.execute(
            "INSERT INTO video_embeddings (video_id, model, dim, embedding, clip_vector)"
            " VALUES (%s, %s, %s, %s::vector, %s::vector) ON CONFLICT (video_id) DO UPDATE"
            " SET model = EXCLUDED.model, dim = EXCLUDED.dim, embedding = EXCLUDED.embedding,"
            "     clip_vector = EXCLUDED.clip_vector, created_at = now()",
            (video_id, embed.MODEL_NAME, embed.DIM, json.dumps(text_vec or [0.0] * embed.DIM),
             json.dumps(combined)))
        media_io.record_assets(video_id, [(key, len(body), "application/json")],
                               lambda _key: "embeddings", cur)
    relations = relate.find_relations(video_id)
    relate.store_relations(video_id, relations)
    return {"embeddings": {"key": key, "segments": len(segments), "relations": len(relations)}}
