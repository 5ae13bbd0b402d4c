"""What each function is given in AWS: package, sizing and grants.

Memory and timeout come from .chalice/config.json (Chalice writes them into
the template); the entries here add what Chalice cannot say: the container
image, ephemeral storage, layers, and the role's grants.

Packaging, from the sizes measured by tests/deploy/test_sizes.py (MiB,
unzipped; Lambda refuses a zip function whose code plus layers reach 250 MiB):

  Chalice deployment package (app + requirements.txt)      ~35
  FFmpeg binary (imageio-ffmpeg)                          ~165
  numpy (+ its OpenBLAS) / Pillow                       ~51 / ~22
  onnxruntime + tokenizers                                 ~70
  all-MiniLM-L6-v2 ONNX graph                              ~87
  faster-whisper runtime (ctranslate2, PyAV) + Whisper    ~330

so the functions that run FFmpeg (dedup, transcode; transcribe also runs
Whisper) cannot be zip functions at all: they run the container image built
by layers/transcode/Dockerfile (10 GB limit). The embedding functions fit as
zip + the `embed` layer, which keeps their cold start small. The rest need
no layer.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from chalicelib.config import MAX_UPLOAD_BYTES
from chalicelib.media import hls
from infra.aws import iam

MiB = 1024 * 1024
LAMBDA_ZIP_LIMIT = 250 * MiB          # code + layers, unzipped (262,144,000 bytes)
EMBED_MODEL_DIR = "/opt/models"       # where the embed layer's models/ lands

# ------------------------------------------------------------------ transcode sizing
# Sized for the largest upload the API accepts: 2 GB, 10 minutes of 1080p.
SIZING_DURATION_S = 600
# Lambda gives CPU in proportion to memory, up to 6 vCPUs at 10,240 MB. The
# decode-once ladder took 38 s of wall time for 60 s of 1080p on 2 cores
# (bench/), so 10 minutes would take ~380 s on 2 vCPUs plus up to 2 GB down
# and ~1.3 GB up; at 6 vCPUs it is ~130-190 s, which leaves the 900 s cap
# (Step Functions' TimeoutSeconds and FFmpeg's own wall-clock limit sit just
# under it) about 4x headroom for slow sources. Memory itself is not the
# constraint: three x264 encoders at 1080p use ~1.5 GB.
TRANSCODE_MEMORY_MB = 10240
TRANSCODE_TIMEOUT_S = 900


# The chunked ladder (stepfunctions/pipeline.asl.json, Ladder branch): chunk Lambdas encode
# CHUNK_SECONDS of every rung each (4 x264 encoders at 1080p: ~2 GB), CHUNK_CONCURRENCY at
# once (a Standard workflow's inline Map runs up to 40 iterations concurrently).
CHUNK_MEMORY_MB = 10240
CHUNK_CONCURRENCY = 40
# A chunk's /tmp: its outputs only, sized far above one chunk's. FFmpeg reads the upload
# through its presigned URL with the seek before -i, so only the chunk's byte ranges travel
# (the audio item streams the whole upload the same way) and nothing of the upload lands in /tmp.
CHUNK_SIZING_S = 60

# Dedup decodes the whole upload (the signature's frames and the speech WAV) with FFmpeg,
# on the critical path before anything else starts: at 1,024 MB (0.58 vCPU) that was 16 s of
# a simulated 39.8 s to playable for 60 s of 1080p (bench/aws_sim.py). At 10,240 MB the
# decoder's threads get 6 vCPUs: ~1.6 s (the invocation ~5 s instead of ~20 s). It bills
# ~2.6x the GB-seconds (about 52 against 20 GB-s for that clip: +$0.0005 per 60 s upload at
# $0.0000166667 per GB-s, ~50 cents per thousand; README "What processing does").
DEDUP_MEMORY_MB = 10240
# The Fallbacks state streams the MP4 fallbacks (S3 in, S3 out) and parses playlists: one whole
# vCPU. Finalize itself only writes the database now (issue 19: the fallbacks left the path to playable).
FALLBACKS_MEMORY_MB = 1769


def transcode_scratch_bytes(duration_s: int = SIZING_DURATION_S) -> int:
    """/tmp the transcode step needs at most: the upload plus every rendition at its peak rate."""
    fps_factor = hls.HIGH_FPS_FACTOR
    peak_bps = sum(int(video * fps_factor * hls.MAXRATE_FACTOR) + audio for _, video, audio in hls.LADDER)
    outputs = peak_bps * duration_s // 8
    return MAX_UPLOAD_BYTES + outputs


def ephemeral_mb(needed_bytes: int, headroom: float = 1.5) -> int:
    """Ephemeral storage (MB, 512..10240) with headroom for thumbnails, temp files and the OS."""
    mb = int(needed_bytes * headroom / MiB) + 1
    return max(512, min(10240, -(-mb // 512) * 512))


# ------------------------------------------------------------------ function table

@dataclass(frozen=True)
class FunctionSpec:
    """How one function of the app is deployed."""
    image: bool = False                 # run the media container image instead of the zip
    layers: tuple[str, ...] = ()        # layer names (layers.LAYERS) for zip functions
    memory: int | None = None           # overrides .chalice/config.json when set
    timeout: int | None = None
    ephemeral_mb: int = 512             # /tmp
    environment: dict[str, str] = field(default_factory=dict)
    grants: tuple[str, ...] = ()        # keys of grant_statements()
    in_vpc: bool = True                 # reaches the database (RDS Proxy) inside the VPC
    why: str = ""


_EMBED_ENV = {"EMBED_MODEL_PATH": f"{EMBED_MODEL_DIR}/all-MiniLM-L6-v2.onnx"}
# Every stage step removes what it wrote if its video was deleted, and tells the video's live
# followers about its progress (chalicelib/live.py).
_STEP = ("delete-video-objects", "manage-connections")
_EMITS = ("start-webhooks",)        # makes a state transition that webhooks report (chalicelib.webhooks)

PIPELINE_FUNCTIONS: dict[str, FunctionSpec] = {
    "on_upload": FunctionSpec(grants=("head-raw", "refuse-raw", "start-pipeline"),
                              why="S3 ObjectCreated on raw-uploads/ -> one execution per object"),
    "pipeline_dedup": FunctionSpec(
        image=True, memory=DEDUP_MEMORY_MB, ephemeral_mb=ephemeral_mb(MAX_UPLOAD_BYTES),
        grants=("read-raw", "write-thumbnails", "write-speech-handover", *_STEP),
        why="streams the upload to /tmp (up to 2 GB), probes, fingerprints with FFmpeg + numpy"),
    "pipeline_mark_duplicate": FunctionSpec(grants=("write-thumbnails", "manage-connections", *_EMITS),
                                            why="marks -1"),
    "pipeline_transcode": FunctionSpec(
        image=True, memory=TRANSCODE_MEMORY_MB, timeout=TRANSCODE_TIMEOUT_S,
        ephemeral_mb=ephemeral_mb(transcode_scratch_bytes()),
        grants=("read-raw", "write-processed", "write-thumbnails", *_STEP),
        why="FFmpeg HLS ladder, sized for a 2 GB, 10-minute 1080p upload (infra/aws/functions.py)"),
    "pipeline_transcode_plan": FunctionSpec(
        environment={"CHUNK_CONCURRENCY": str(CHUNK_CONCURRENCY)}, grants=(),
        why="plans a long clip's chunks from what dedup recorded (database only); sets the Map's concurrency"),
    "pipeline_transcode_chunk": FunctionSpec(
        image=True, memory=CHUNK_MEMORY_MB, timeout=TRANSCODE_TIMEOUT_S,
        ephemeral_mb=ephemeral_mb(transcode_scratch_bytes(CHUNK_SIZING_S) - MAX_UPLOAD_BYTES),
        grants=("read-raw", "read-processed", "write-processed", *_STEP),
        why="one Map item of the chunked ladder: a chunk's final segments, with dedup's AAC (FFmpeg)"),
    "pipeline_transcode_stitch": FunctionSpec(
        image=True, memory=TRANSCODE_MEMORY_MB, timeout=TRANSCODE_TIMEOUT_S,
        ephemeral_mb=ephemeral_mb(2 * (transcode_scratch_bytes() - MAX_UPLOAD_BYTES)),
        grants=("read-processed", "write-processed", "write-thumbnails", *_STEP),
        why="playlists and MPD from the chunks' reports; storyboard and thumbnail from the lowest rung"),
    "pipeline_transcribe": FunctionSpec(
        image=True, ephemeral_mb=ephemeral_mb(MAX_UPLOAD_BYTES),
        grants=("read-raw", "read-processed", "write-transcripts", *_STEP),
        why="Whisper (CTranslate2 + PyAV + the model) is ~330 MiB: image only"),
    "pipeline_embed": FunctionSpec(layers=("embed",), environment=_EMBED_ENV,
                                   grants=("write-embeddings", *_STEP),
                                   why="ONNX embeddings + relations (numpy alignment)"),
    "embed_query": FunctionSpec(layers=("embed",), environment=_EMBED_ENV, in_vpc=False,
                                why="embeds search queries for the API: no database, no bucket"),
    # PUT /videos/{id}/thumbnail invokes it: Pillow is in the media image, not in API functions.
    "thumbnail_custom": FunctionSpec(
        image=True, in_vpc=False, grants=("consume-thumbnail-uploads", "write-thumbnails", "read-thumbnails"),
        why="checks an uploaded custom thumbnail and re-encodes it to a safe JPEG (Pillow): no database"),
    # POST /streams/{id}/videos with source_url invokes it asynchronously; it reaches the
    # internet through the VPC's NAT (chalicelib.outbound refuses private addresses).
    "ingest_url": FunctionSpec(
        grants=("ingest-raw",),
        why="fetches a source URL into raw-uploads/ (a multipart upload, never over an object); "
            "the upload trigger starts the pipeline"),
    "pipeline_finalize": FunctionSpec(grants=(*_STEP, *_EMITS), why="processing_index 0: playable"),
    "pipeline_fallbacks": FunctionSpec(memory=FALLBACKS_MEMORY_MB,
                                       grants=("read-processed", "write-processed", *_STEP),
                                       why="stores the MP4 fallbacks (S3 to S3) after the video is playable"),
    "pipeline_mark_failed": FunctionSpec(grants=(*_STEP, *_EMITS), why="records the failure on the video"),
    # stepfunctions/clips.asl.json: FFmpeg reads the upload through a presigned URL.
    "clips_generate_moments": FunctionSpec(
        image=True, grants=("read-raw", "replace-clips"),
        why="moments from loudness, onsets and transcript words (FFmpeg + numpy): image"),
    "clips_extract_clip": FunctionSpec(
        image=True, ephemeral_mb=2048, grants=("read-raw", "write-clips", "replace-clips"),
        why="frame-accurate clip cut with FFmpeg: image"),
    "clips_finish_extraction": FunctionSpec(grants=_EMITS,
                                            why="records the extraction's outcome; clip.ready/clip.failed"),
    "clips_mark_extraction_failed": FunctionSpec(grants=_EMITS, why="records the failure; clip.failed"),
    # The WebSocket API's routes (app.live_*, chalicelib/live.py; Chalice names their functions
    # websocket_connect/message/disconnect): sign-in, subscriptions, answers on the socket.
    "websocket_connect": FunctionSpec(grants=("jwt",), why="$connect: checks the access token, records the connection"),
    "websocket_message": FunctionSpec(grants=("jwt", "manage-connections"),
                                 why="$default: subscribe/unsubscribe with the REST read rules, answers on the socket"),
    "websocket_disconnect": FunctionSpec(why="$disconnect: forgets the connection (database only)"),
    # stepfunctions/webhooks.asl.json: the NAT of the database's subnets reaches the endpoints.
    "webhook_deliver": FunctionSpec(
        why="one signed POST of a webhook event to a stream's endpoint (database + outbound HTTPS only)"),
}

# Functions the table does not know yet (being added elsewhere) get this: the
# container image (it carries every library, so the handler can run) and no
# grant beyond the baseline, until they are given an entry above.
UNKNOWN_FUNCTION = FunctionSpec(image=True, ephemeral_mb=ephemeral_mb(MAX_UPLOAD_BYTES),
                                why="not in infra/aws/functions.py yet: baseline role only")

# Every API function also gets the baseline of iam.lambda_role (the database
# secret included). tests/deploy/test_grants.py checks these against the AWS
# calls each group's routes can reach.
API_GRANTS: dict[str, tuple[str, ...]] = {
    "system": ("head-bucket", "transcode-status"),
    "web": (),
    "auth": ("jwt",),
    "webhooks": ("head-raw", "refuse-raw", "start-pipeline"),
    "search": ("jwt", "read-thumbnails", "invoke-embed-query"),
    "media": ("jwt", "read-processed", "read-thumbnails", "read-raw"),
    "processing": ("jwt",),
    "admin": ("jwt", "start-pipeline", "read-thumbnails", "list-bucket"),
    "community": ("jwt",),
    "social": ("jwt", "read-thumbnails"),
    "relations": ("jwt", "read-thumbnails"),
    "clips": ("jwt", "read-thumbnails", "read-clips", "start-clips"),
    "ops": ("jwt", "watch-pipeline"),
    "sync": ("jwt", "manage-connections"),
    "hooks": ("jwt", *_EMITS),
    "videos": ("jwt", *_EMITS, "upload-raw", "list-raw-parts", "read-thumbnails", "read-processed",
               "delete-video-objects", "abort-raw-uploads", "stop-pipeline", "stop-clips", "upload-thumbnails",
               "invoke-thumbnail-custom", "invoke-ingest-url", "manage-connections"),
    "streams": ("jwt", *_EMITS, "read-thumbnails", "delete-video-objects", "abort-raw-uploads", "stop-pipeline",
                "stop-clips"),
    "core": ("jwt",),
}


def grant_statements(grant: str, names: iam.Names) -> list[dict]:
    """The IAM statements behind one grant name."""
    pipeline = names.state_machine("pipeline")
    table = {
        "jwt": lambda: [iam.jwt_secret()],
        "head-bucket": lambda: [iam.s3_list_bucket("HeadBucket", "the health check asks for the bucket "
                                                   "(HeadBucket needs s3:ListBucket)")],
        "list-bucket": lambda: [iam.s3_list_bucket("ListWholeBucket", "storage usage sums every object "
                                                   "of the bucket (GET /system/storage)")],
        "head-raw": lambda: [iam.s3_read("raw-uploads/", why="reads the upload's ETag and size "
                                         "(HeadObject needs s3:GetObject)")],
        "refuse-raw": lambda: [{"Sid": iam._sid("RefuseRawUploads", "deletes an upload whose size is not the "
                                                 "declared one, before any step reads it"),
                                "Effect": "Allow", "Action": "s3:DeleteObject",
                                "Resource": iam._objects(("raw-uploads/",))}],
        "read-raw": lambda: [iam.s3_read("raw-uploads/", why="reads the upload: to process it, or to "
                                         "serve it before its HLS ladder exists")],
        "upload-raw": lambda: [iam.s3_write("raw-uploads/", why="presigned PUT/POST are signed with this "
                                            "role, and small clips are written directly"),
                               iam.s3_read("raw-uploads/", why="checks whether the upload arrived")],
        "list-raw-parts": lambda: [{"Sid": iam._sid("ListRawUploadParts", "a resumable upload asks which "
                                                    "parts storage holds (ListParts) before resuming "
                                                    "and completing"),
                                    "Effect": "Allow", "Action": "s3:ListMultipartUploadParts",
                                    "Resource": iam._objects(("raw-uploads/",))}],
        "abort-raw-uploads": lambda: [
            {"Sid": iam._sid("FindOpenUploads", "a deleted video's unfinished multipart uploads are found "
                             "by listing them (s3:prefix is no condition key of this action)"),
             "Effect": "Allow", "Action": "s3:ListBucketMultipartUploads", "Resource": iam._sub(iam.BUCKET_ARN)},
            {"Sid": iam._sid("AbortRawUploads", "aborts them, so no parts stay stored"),
             "Effect": "Allow", "Action": "s3:AbortMultipartUpload", "Resource": iam._objects(("raw-uploads/",))}],
        "read-processed": lambda: [iam.s3_read("processed-videos/", why="playlists and presigned segments")],
        "write-processed": lambda: [iam.s3_write("processed-videos/", why="writes the HLS ladder")],
        "read-thumbnails": lambda: [iam.s3_read("thumbnails/", why="presigned thumbnail URLs")],
        "write-thumbnails": lambda: [iam.s3_write("thumbnails/", why="writes thumbnails and overlays")],
        "upload-thumbnails": lambda: [iam.s3_write("thumbnail-uploads/", why="presigned PUTs of custom "
                                                   "thumbnails are signed with this role")],
        "consume-thumbnail-uploads": lambda: [
            iam.s3_read("thumbnail-uploads/", why="reads a custom thumbnail as uploaded, to check it"),
            *iam.s3_delete("thumbnail-uploads/", why="removes the upload once it is re-encoded or refused")],
        "write-speech-handover": lambda: [{
            "Sid": iam._sid("WriteSpeechHandOver", "leaves the 16 kHz speech WAV of its audio decode "
                            "for the transcribe step, which runs beside the transcode, and a long "
                            "clip's AAC tracks for the chunked ladder"),
            "Effect": "Allow", "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
            "Resource": iam._objects(("processed-videos/*/tmp/",))}],
        "write-transcripts": lambda: [iam.s3_write("transcripts/", why="writes transcripts/{id}.json")],
        "write-embeddings": lambda: [iam.s3_write("embeddings/", why="writes embeddings/{id}.json")],
        "read-clips": lambda: [iam.s3_read("clips/", why="presigned clip URLs")],
        "write-clips": lambda: [iam.s3_write("clips/", why="writes clips/{id}/...")],
        "replace-clips": lambda: iam.s3_delete("clips/", why="a new generation replaces the earlier clips"),
        "start-clips": lambda: [iam.start_execution(names.state_machine("clips"),
                                                    "starts moment generation and clip extraction")],
        "delete-video-objects": iam.s3_delete_video_objects,
        "start-pipeline": lambda: [iam.start_execution(pipeline, "starts one processing execution "
                                                       "per upload (and admin retries)")],
        "start-webhooks": lambda: [iam.start_execution(names.state_machine("webhooks"),
                                                       "starts one delivery execution per webhook delivery "
                                                       "its state transitions (or a replay) made")],
        "stop-pipeline": lambda: iam.stop_executions(pipeline),
        "stop-clips": lambda: iam.stop_executions(names.state_machine("clips")),
        "transcode-status": lambda: [iam.function_status(
            names.function("pipeline_transcode"), "/health reports whether the FFmpeg function is ready "
            "(API functions carry no FFmpeg)")],
        "watch-pipeline": lambda: iam.watch_executions(pipeline),
        "invoke-thumbnail-custom": lambda: [iam.invoke(names.function("thumbnail_custom"),
                                                       "custom thumbnails are checked and re-encoded by the "
                                                       "thumbnail_custom function (Pillow)")],
        "manage-connections": lambda: [{
            "Sid": iam._sid("PostLiveUpdates", "sends live updates to the WebSocket API's connections "
                            "(post_to_connection) and forgets the gone ones"),
            "Effect": "Allow", "Action": "execute-api:ManageConnections",
            "Resource": iam._sub("arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:"
                                 "${WebsocketAPI}/*/*/@connections/*")}],
        "ingest-raw": lambda: [{"Sid": iam._sid("IngestRawUploads", "writes a fetched source to its raw key "
                                                "as a multipart upload, and aborts it when the fetch fails"),
                                "Effect": "Allow", "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
                                "Resource": iam._objects(("raw-uploads/",))}],
        "invoke-ingest-url": lambda: [iam.invoke(names.function("ingest_url"),
                                                 "a video from a source URL is fetched by the ingest_url "
                                                 "function, never by the API")],
        "invoke-embed-query": lambda: [iam.invoke(names.function("embed_query"),
                                                  "the query vector comes from the embed_query function, "
                                                  "so API functions never load a model")],
    }
    return table[grant]()


def spec_for(name: str) -> FunctionSpec:
    return PIPELINE_FUNCTIONS.get(name, UNKNOWN_FUNCTION)


def function_role(name: str, names: iam.Names) -> dict:
    """The execution role (CloudFormation resource) of one pipeline or event function."""
    spec = spec_for(name)
    grants = [s for g in spec.grants for s in grant_statements(g, names)]
    return iam.lambda_role(names.function(name), grants, in_vpc=spec.in_vpc)


def api_role(group: str, names: iam.Names) -> dict:
    """The execution role of one API route group's function."""
    grants = [s for g in API_GRANTS[group] for s in grant_statements(g, names)]
    return iam.lambda_role(names.function(f"api_{group}"), grants)
