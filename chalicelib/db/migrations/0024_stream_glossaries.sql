-- A stream's game vocabulary (chalicelib/glossary.py): terms that bias transcription
-- (Whisper hotwords) and the spellings rewritten to them in transcripts. No row: the
-- platform's default gaming glossary alone. Stream admins replace it whole
-- (PUT /streams/{id}/glossary); members read it.
CREATE TABLE IF NOT EXISTS stream_glossaries (
    stream_id       uuid PRIMARY KEY REFERENCES streams(id) ON DELETE CASCADE,
    entries         jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(entries) = 'array'),
    include_default boolean NOT NULL DEFAULT true,
    updated_by      uuid REFERENCES users(id) ON DELETE SET NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
