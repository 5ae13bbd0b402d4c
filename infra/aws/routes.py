"""Route groups: which API function serves which path.

Chalice deploys the whole API as one function. In AWS each group below is its
own Lambda function behind the same API Gateway, with its own memory,
timeout and role, so a slow or broken area cannot starve the others and a
function can reach only what its routes use.

A route belongs to the group of the first rule whose pattern matches its
path; the last rule catches whatever no rule names yet, so a new route
always lands in a group (with the baseline role: database and token key
only) until it is given a better one here. Who may call a route is not
decided here: chalicelib/api/routes.py declares it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class RouteGroup:
    name: str             # function suffix: clipstream-<stage>-api_<name>
    patterns: tuple[str, ...]
    memory: int = 512     # MB; 512 MB is ~1/3 vCPU, enough for JSON and SQL
    timeout: int = 29     # s; API Gateway gives up after 29 s anyway
    why: str = ""


# Ordered: more specific rules first.
ROUTE_GROUPS: tuple[RouteGroup, ...] = (
    RouteGroup("system", (r"^/$", r"^/health$", r"^/openapi\.json$"),
               memory=256, timeout=15, why="health check and API document"),
    RouteGroup("web", (r"^/web(/|$)", r"^/docs$"), memory=256, timeout=10,
               why="the web pages and their scripts (static files of the package): no data, no AWS call"),
    RouteGroup("auth", (r"^/auth/",),
               why="Google ID token check (fetches Google's keys), app and refresh tokens"),
    RouteGroup("webhooks", (r"^/webhooks/",), memory=256,
               why="MinIO's upload webhook starts executions like the S3 trigger"),
    RouteGroup("search", (r"^/search",), timeout=20,
               why="keyword + semantic search; invokes embed_query for the query vector"),
    RouteGroup("ops", (r"^/console", r"^/metrics"),
               why="the operations console (executions and their history) and metrics"),
    RouteGroup("media", (r"^/api/videos/", r"^/files/", r"^/videos/[^/]+/(stream|captions\.vtt|storyboard\.vtt)$"),
               memory=1024,
               why="playlists and presigned segments for players: the hottest read path"),
    RouteGroup("processing", (r"^/processing/", r"^/videos/[^/]+/processing$"),
               why="processing status, queue and stats"),
    RouteGroup("hooks", (r"^/streams/[^/]+/webhooks",),
               why="a stream's webhook endpoints and deliveries; a replay starts a delivery execution"),
    RouteGroup("community", (r"^/admin/(reports|audit|videos/[^/]+/(hide|unhide)$)",
                             r"^/streams/[^/]+/(analytics|reports|bans|audit)", r"^/users/[^/]+/analytics$",
                             r"^/videos/[^/]+/(analytics|report|views)$"),
               why="analytics, reports, bans and the audit log: database only"),
    RouteGroup("admin", (r"^/admin/", r"^/system/"),
               why="platform admins: retry executions, duplicates, storage usage"),
    RouteGroup("social", (r"^/share/", r"^/videos/[^/]+/(like|likes|share|shares|shares/[^/]+)$"),
               why="likes and share links"),
    RouteGroup("relations", (r"^/videos/[^/]+/(duplicates|similar|trimmed|timeline|pov|transcript|"
                             r"embeddings)$",),
               why="results of the pipeline: relations, transcript, embeddings"),
    RouteGroup("clips", (r"^/clips", r"^/moments",
                         r"^/videos/[^/]+/(clips|moments|highlights|generate-moments|clip-extraction-status)"),
               why="moments and clips: starts the clips state machine, presigns clips"),
    RouteGroup("sync", (r"^/sync", r"^/videos/[^/]+/(sync|metadata)"),
               why="multi-device metadata editing"),
    RouteGroup("videos", (r"^/videos/", r"^/videos$", r"^/streams/[^/]+/videos"),
               why="uploads (presigned PUT/POST), video CRUD and resumable delete"),
    RouteGroup("streams", (r"^/streams", r"^/invites/", r"^/users/"),
               why="streams, members, invites; deleting a stream deletes its videos"),
    RouteGroup("core", (r".",),
               why="catch-all for routes no rule names yet: baseline role only"),
)

_COMPILED = tuple((g, tuple(re.compile(p) for p in g.patterns)) for g in ROUTE_GROUPS)


def group_of(path: str) -> RouteGroup:
    """The group that serves `path` (a Chalice route path such as /videos/{video_id})."""
    for group, patterns in _COMPILED:
        if any(p.search(path) for p in patterns):
            return group
    raise LookupError(path)  # unreachable: the last rule matches every path


def groups_for(routes: dict[str, dict]) -> dict[str, list[tuple[str, str]]]:
    """Group name -> [(path, METHOD)] for the app's routes; groups without routes are left out."""
    out: dict[str, list[tuple[str, str]]] = {}
    for path, methods in sorted(routes.items()):
        for method in sorted(methods):
            out.setdefault(group_of(path).name, []).append((path, method.upper()))
    return out
