"""Who may call each route: declared once, here.

Every route of app.py has one entry: its access rule and the rate-limit group
it counts against. The OpenAPI document (security, 401/403 responses) and the
rate limiter read this table; the functions behind the routes enforce the rule
(chalicelib.access for stream roles, chalicelib.auth.users for platform
admins), and tests/api/test_route_access.py calls every route as every kind of
caller and compares the answers with this table. A route missing here fails
that test and the OpenAPI document. `python -m chalicelib.api.routes` prints
the table the README shows.

infra/aws/routes.py is deployment (which Lambda function serves a path), not
authorization.
"""
from __future__ import annotations

from dataclasses import dataclass

# Access rules, from the widest to the narrowest. Stream roles are the caller's
# role in the stream the path names (through a video, share, report ...);
# platform admins do not get into streams they are not members of.
ANYONE = "anyone"                # no sign-in
PLAYBACK = "playback"            # a playback token in the query, or a stream member's bearer token
WEBHOOK = "webhook"              # the storage webhook's shared secret as the bearer; no user
USER = "user"                    # any signed-in user (data of their own, or scoped to their streams)
MEMBER = "member"                # stream viewer, creator or admin
CREATOR = "creator"              # stream creator or admin
STREAM_ADMIN = "stream admin"    # stream admin
OWNER = "owner"                  # who made the thing: a video's uploader
OWNER_OR_ADMIN = "owner or stream admin"  # a video's uploader / a share link's creator, or a stream admin
MODERATOR = "moderator"          # stream admin or platform admin
PLATFORM_ADMIN = "platform admin"

RULES: dict[str, str] = {
    ANYONE: "anyone, no sign-in",
    PLAYBACK: "a playback token (query) or a stream member",
    WEBHOOK: "the webhook secret (no user)",
    USER: "any signed-in user",
    MEMBER: "stream members (viewer, creator, admin)",
    CREATOR: "stream creators and admins",
    STREAM_ADMIN: "stream admins",
    OWNER: "the video's uploader",
    OWNER_OR_ADMIN: "the uploader (a share link: its creator) or a stream admin",
    MODERATOR: "stream admins and platform admins",
    PLATFORM_ADMIN: "platform admins",
}

# Which kinds of caller a rule lets in (the enumeration test's expectations; the
# "owner" is the stream creator who uploaded the video and made the share link).
CALLERS = ("anonymous", "stranger", "viewer", "creator", "stream_admin", "platform_admin")
ALLOWED: dict[str, frozenset[str]] = {
    ANYONE: frozenset(CALLERS),
    PLAYBACK: frozenset({"viewer", "creator", "stream_admin"}),
    WEBHOOK: frozenset(),
    USER: frozenset(CALLERS) - {"anonymous"},
    MEMBER: frozenset({"viewer", "creator", "stream_admin"}),
    CREATOR: frozenset({"creator", "stream_admin"}),
    STREAM_ADMIN: frozenset({"stream_admin"}),
    OWNER: frozenset({"creator"}),
    OWNER_OR_ADMIN: frozenset({"creator", "stream_admin"}),
    MODERATOR: frozenset({"stream_admin", "platform_admin"}),
    PLATFORM_ADMIN: frozenset({"platform_admin"}),
}
# Routes a client calls without a bearer token (OpenAPI `security: []`).
NO_BEARER = frozenset({ANYONE, PLAYBACK})

# Rate-limit groups (limits in chalicelib.config.DEFAULT_RATE_LIMITS); None: never limited.
READ, WRITE = "read", "write"


@dataclass(frozen=True)
class Route:
    rule: str
    limit: str | None   # rate-limit group
    note: str = ""      # what the rule does not say (README column)


def _route(method: str, rule: str, limit: str | None = "", note: str = "") -> Route:
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}")
    if limit == "":
        limit = READ if method == "GET" else WRITE
    return Route(rule, limit, note)


_DECLARED: list[tuple[str, str, str, str | None, str]] = [
    # method, path, rule, rate-limit group ("" = read for GET, else write), note
    ("GET", "/", ANYONE, None, "health check"),
    ("GET", "/health", ANYONE, None, "health check"),
    ("GET", "/openapi.json", ANYONE, "", ""),
    ("POST", "/webhooks/minio/upload-complete", WEBHOOK, None, "MinIO's upload event"),
    # sign-in
    ("POST", "/auth/verify", ANYONE, "auth", "a Google ID token"),
    ("POST", "/auth/refresh", ANYONE, "auth", "a refresh token"),
    ("POST", "/auth/logout", ANYONE, "auth", "a refresh token"),
    ("GET", "/auth/user", USER, "", ""),
    # streams, members, invites
    ("GET", "/streams", USER, "", "the caller's streams"),
    ("POST", "/streams", USER, "", "the caller becomes its admin"),
    ("GET", "/streams/{stream_id}", MEMBER, "", ""),
    ("PUT", "/streams/{stream_id}", STREAM_ADMIN, "", ""),
    ("DELETE", "/streams/{stream_id}", STREAM_ADMIN, "", ""),
    ("GET", "/streams/{stream_id}/members", MEMBER, "", ""),
    ("PUT", "/streams/{stream_id}/members/{user_id}", STREAM_ADMIN, "", ""),
    ("DELETE", "/streams/{stream_id}/members/{user_id}", STREAM_ADMIN, "", "members may remove themselves"),
    ("GET", "/streams/{stream_id}/glossary", MEMBER, "", "game vocabulary for transcription"),
    ("PUT", "/streams/{stream_id}/glossary", STREAM_ADMIN, "", ""),
    ("GET", "/streams/{stream_id}/invites", STREAM_ADMIN, "", ""),
    ("POST", "/streams/{stream_id}/invites", STREAM_ADMIN, "", ""),
    ("GET", "/streams/{stream_id}/invites/{code}", STREAM_ADMIN, "", ""),
    ("PUT", "/streams/{stream_id}/invites/{code}", STREAM_ADMIN, "", ""),
    ("DELETE", "/streams/{stream_id}/invites/{code}", STREAM_ADMIN, "", ""),
    ("GET", "/invites/{code}", ANYONE, "", "the code is the secret"),
    ("POST", "/invites/{code}/join", USER, "", "with a working code; not banned users"),
    # videos and processing
    ("POST", "/streams/{stream_id}/videos", CREATOR, "upload", ""),
    ("GET", "/streams/{stream_id}/videos", MEMBER, "", ""),
    ("GET", "/videos", USER, "", "the catalog: videos of the caller's streams only"),
    ("POST", "/videos/{video_id}/upload-url", OWNER, "upload", ""),
    ("GET", "/videos/{video_id}/multipart", OWNER, "", "parts received, fresh part URLs"),
    ("POST", "/videos/{video_id}/multipart/complete", OWNER, "upload", ""),
    ("DELETE", "/videos/{video_id}/multipart", OWNER, "", ""),
    ("GET", "/videos/{video_id}", MEMBER, "", "hidden videos: stream admins only"),
    ("PUT", "/videos/{video_id}", OWNER_OR_ADMIN, "", ""),
    ("DELETE", "/videos/{video_id}", OWNER_OR_ADMIN, "", ""),
    ("GET", "/videos/{video_id}/processing", MEMBER, "", ""),
    ("GET", "/videos/{video_id}/stream", MEMBER, "", ""),
    ("GET", "/api/videos/{video_id}/hls/master.m3u8", PLAYBACK, "playback", ""),
    ("GET", "/api/videos/{video_id}/hls/{quality}/playlist.m3u8", PLAYBACK, "playback", ""),
    ("GET", "/api/videos/{video_id}/stream/{quality}", PLAYBACK, "playback", ""),
    ("GET", "/api/videos/{video_id}/dash/manifest.mpd", PLAYBACK, "playback", ""),
    ("GET", "/api/videos/{video_id}/captions.m3u8", PLAYBACK, "playback", ""),
    ("GET", "/api/videos/{video_id}/captions/{segment}", PLAYBACK, "playback", ""),
    ("GET", "/videos/{video_id}/captions.vtt", PLAYBACK, "playback", ""),
    ("GET", "/videos/{video_id}/storyboard.vtt", PLAYBACK, "playback", ""),
    ("GET", "/files/videos/{video_id}/thumbnail", MEMBER, "", ""),
    ("GET", "/files/videos/{video_id}/stream", MEMBER, "", ""),
    ("POST", "/videos/{video_id}/thumbnail", OWNER_OR_ADMIN, "upload", "the uploader while a creator"),
    ("PUT", "/videos/{video_id}/thumbnail", OWNER_OR_ADMIN, "", "the uploader while a creator"),
    ("DELETE", "/videos/{video_id}/thumbnail", OWNER_OR_ADMIN, "", "the uploader while a creator"),
    ("GET", "/videos/{video_id}/duplicates", MEMBER, "", "names the original only to its members"),
    ("GET", "/videos/{video_id}/similar", MEMBER, "", ""),
    ("GET", "/videos/{video_id}/trimmed", MEMBER, "", ""),
    ("GET", "/videos/{video_id}/timeline", MEMBER, "", ""),
    ("GET", "/videos/{video_id}/pov", MEMBER, "", ""),
    ("GET", "/videos/{video_id}/transcript", MEMBER, "", ""),
    ("GET", "/videos/{video_id}/embeddings", MEMBER, "", ""),
    ("GET", "/search", USER, "search", "the caller's streams only"),
    ("GET", "/search/suggestions", USER, "search", "the caller's streams only"),
    # social
    ("POST", "/videos/{video_id}/like", MEMBER, "", ""),
    ("GET", "/videos/{video_id}/likes", MEMBER, "", ""),
    ("POST", "/videos/{video_id}/share", MEMBER, "", ""),
    ("GET", "/videos/{video_id}/shares", MEMBER, "", "stream admins see every link, others their own"),
    ("DELETE", "/videos/{video_id}/shares/{share_id}", OWNER_OR_ADMIN, "", "the link's creator"),
    ("GET", "/share/{code}", ANYONE, "", "the code is the secret"),
    # moments, clips and sync
    ("POST", "/videos/{video_id}/generate-moments", OWNER_OR_ADMIN, "", ""),
    ("GET", "/videos/{video_id}/moments", MEMBER, "", ""),
    ("POST", "/videos/{video_id}/moments/{moment_id}/refine", OWNER_OR_ADMIN, "", ""),
    ("GET", "/videos/{video_id}/clip-extraction-status", MEMBER, "", ""),
    ("GET", "/clips/{moment_id}/stream", MEMBER, "", ""),
    ("POST", "/sync", OWNER_OR_ADMIN, "", "of the video in the body; without edits: members"),
    ("GET", "/sync", MEMBER, "", "of the video named by the video_id query"),
    # analytics, moderation
    ("POST", "/videos/{video_id}/views", MEMBER, "views", ""),
    ("GET", "/videos/{video_id}/analytics", OWNER_OR_ADMIN, "", ""),
    ("GET", "/streams/{stream_id}/analytics", CREATOR, "", ""),
    ("GET", "/users/me/analytics", USER, "", "the caller's own"),
    ("POST", "/videos/{video_id}/report", MEMBER, "report", ""),
    ("GET", "/streams/{stream_id}/reports", MODERATOR, "", "without reporter identity"),
    ("POST", "/admin/reports/{report_id}/resolve", MODERATOR, "", "not a stream admin's own video"),
    ("POST", "/admin/reports/{report_id}/dismiss", MODERATOR, "", "not a stream admin's own video"),
    ("POST", "/admin/videos/{video_id}/hide", MODERATOR, "", ""),
    ("POST", "/admin/videos/{video_id}/unhide", MODERATOR, "", "a platform hide: platform admins"),
    ("GET", "/streams/{stream_id}/bans", MODERATOR, "", ""),
    ("POST", "/streams/{stream_id}/bans", MODERATOR, "", ""),
    ("DELETE", "/streams/{stream_id}/bans/{user_id}", MODERATOR, "", ""),
    ("GET", "/streams/{stream_id}/audit", MODERATOR, "", ""),
    # signed webhooks
    ("POST", "/streams/{stream_id}/webhooks", MODERATOR, "", "the secret is shown in this answer only"),
    ("GET", "/streams/{stream_id}/webhooks", MODERATOR, "", "no secrets"),
    ("DELETE", "/streams/{stream_id}/webhooks/{webhook_id}", MODERATOR, "", ""),
    ("GET", "/streams/{stream_id}/webhooks/{webhook_id}/deliveries", MODERATOR, "", "with their attempts"),
    ("POST", "/streams/{stream_id}/webhooks/{webhook_id}/deliveries/{delivery_id}/replay", MODERATOR, "",
     "the same event id, a new delivery"),
    # platform admins
    ("GET", "/admin/reports", PLATFORM_ADMIN, "", ""),
    ("GET", "/admin/audit", PLATFORM_ADMIN, "", ""),
    ("GET", "/processing/queue", PLATFORM_ADMIN, "", ""),
    ("GET", "/processing/stats", PLATFORM_ADMIN, "", ""),
    ("POST", "/admin/processing/retry", PLATFORM_ADMIN, "", ""),
    ("GET", "/admin/duplicates", PLATFORM_ADMIN, "", ""),
    ("GET", "/system/storage", PLATFORM_ADMIN, "", ""),
    ("GET", "/metrics", PLATFORM_ADMIN, "", ""),
    ("GET", "/console", ANYONE, "", "the page holds no data"),
    ("GET", "/web", ANYONE, None, "a page: its data needs a member's token"),
    ("GET", "/web/upload", ANYONE, None, "a page: uploading needs a creator's token"),
    ("GET", "/web/watch", ANYONE, None, "a page: its data needs a member's token"),
    ("GET", "/web/assets/{name}", ANYONE, None, "the pages' scripts and styles"),
    ("GET", "/docs", ANYONE, None, "renders /openapi.json"),
    ("GET", "/console/api/executions", PLATFORM_ADMIN, "", ""),
    ("GET", "/console/api/graph", PLATFORM_ADMIN, "", ""),
]

ROUTES: dict[tuple[str, str], Route] = {
    (method, path): _route(method, rule, limit, note) for method, path, rule, limit, note in _DECLARED}
if len(ROUTES) != len(_DECLARED):
    raise ValueError("a route is declared twice")


def of(method: str, path: str) -> Route:
    """The declared route; KeyError names an undeclared one."""
    try:
        return ROUTES[(method, path)]
    except KeyError:
        raise KeyError(f"{method} {path} has no access rule in chalicelib/api/routes.py") from None


def undeclared(app_routes: dict[str, dict]) -> tuple[list[str], list[str]]:
    """(routes of the app without a declaration, declarations without a route)."""
    served = {(m, p) for p, methods in app_routes.items() for m in methods}
    return (sorted(f"{m} {p}" for m, p in served - set(ROUTES)),
            sorted(f"{m} {p}" for m, p in set(ROUTES) - served))


def markdown() -> str:
    """The README table: every route, who may call it, its rate-limit group."""
    lines = ["| Route | Who may call it | Rate limit | Note |", "| --- | --- | --- | --- |"]
    for method, path, *_ in _DECLARED:
        route = ROUTES[(method, path)]
        lines.append(f"| `{method} {path}` | {RULES[route.rule]} | {route.limit or 'none'} | {route.note} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
