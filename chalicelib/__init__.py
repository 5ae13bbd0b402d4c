"""Clipstream's library: everything app.py routes to.

LAYERS orders the packages from the bottom up. A module may import modules of
its own layer or of a lower one, never of a higher one (tests/test_layers.py
checks every import, lazy ones included). A new module or package is declared
here, in the layer of what it imports.
"""

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # Settings and the shapes every layer shares: no I/O.
    ("base", ("chalicelib.config", "chalicelib.errors", "chalicelib.failures", "chalicelib.stages")),
    # The one way to each external service (AWS clients, Postgres, S3, logs and metrics).
    ("adapters", ("chalicelib.aws", "chalicelib.db", "chalicelib.storage", "chalicelib.observability",
                  "chalicelib.idempotency", "chalicelib.outbound")),
    # What users see, independent of HTTP and of the state machines.
    ("domain", ("chalicelib.access", "chalicelib.auth", "chalicelib.glossary", "chalicelib.media",
                "chalicelib.ml", "chalicelib.sync", "chalicelib.video_deletion",
                "chalicelib.quota", "chalicelib.live", "chalicelib.webhooks")),
    # The Step Functions steps (stepfunctions/*.asl.json).
    ("workflows", ("chalicelib.pipeline", "chalicelib.moments")),
    # HTTP: routes, middleware and the contract's shapes.
    ("api", ("chalicelib.api",)),
)
