"""Speech to text (transcribe), sentence embeddings (embed) and word error rate (wer).

Deliberately empty: the model runtimes load lazily, on first use, and only in the
functions that need them.
"""
