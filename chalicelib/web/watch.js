// /web/watch?video=<id>: hls.js (or native HLS, or the MP4 fallback where MSE is missing), a quality
// menu, captions, storyboard previews on the scrub bar, the transcript (click to seek), similar clips, and
// for the uploader or a stream admin a thumbnail control.
"use strict";
(async () => {
  const { api, el, errorText, param, start, thumbnail, clock } = Clip;
  const main = document.getElementById("main");
  const me = await start(main);
  if (!me) return;
  const $ = (id) => document.getElementById(id);
  const message = $("message"), v = $("video"), quality = $("quality"), captions = $("captions");
  const id = param("video");
  const enc = encodeURIComponent(id || "");
  const info = await api(`/videos/${enc}`);
  if (!info.ok) { $("title").textContent = "Not available"; message.textContent = errorText(info); return; }
  $("title").textContent = info.body.title;
  $("description").textContent = info.body.description || "";
  if (info.body.stream_id) $("stream-link").href = `/web?stream=${encodeURIComponent(info.body.stream_id)}`;
  const poster = el("img");
  thumbnail(poster, `/files/videos/${enc}/thumbnail`).then(() => { if (poster.src) v.poster = poster.src; });
  thumbnailControl().then((shown) => { document.body.dataset.thumbnailControl = String(shown); });

  let urls = await api(`/videos/${enc}/stream`);
  while (urls.status === 202) {
    message.textContent = "Still processing…";
    await new Promise((ok) => setTimeout(ok, 2000));
    urls = await api(`/videos/${enc}/stream`);
  }
  if (!urls.ok) { message.textContent = errorText(urls); return; }
  message.textContent = "";
  const token = new URL(urls.body.hls_url, location.href).searchParams.get("token");
  const withToken = (path) => `${path}?token=${encodeURIComponent(token)}`;
  const player = { mode: null, hls: null, cues: [] };
  window.player = player;

  const mse = !!(window.MediaSource || window.ManagedMediaSource) && window.Hls && Hls.isSupported();
  if (mse) {
    player.mode = "hls";
    const hls = new Hls({ capLevelToPlayerSize: false });
    player.hls = hls;
    hls.on(Hls.Events.MANIFEST_PARSED, () => {
      quality.replaceChildren(el("option", { value: "-1" }, "Auto"),
        ...hls.levels.map((l, i) => el("option", { value: String(i) }, `${l.height}p`)));
      quality.disabled = false;
      document.body.dataset.ready = "true";
    });
    hls.on(Hls.Events.LEVEL_SWITCHED, (_, d) => {
      const level = hls.levels[d.level];
      $("now-playing").textContent = level ? `playing ${level.height}p` : "";
      document.body.dataset.level = level ? `${level.height}p` : "";
    });
    hls.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, () => { captions.disabled = hls.subtitleTracks.length === 0; });
    hls.on(Hls.Events.ERROR, (_, d) => { if (d.fatal) message.textContent = `Playback error: ${d.details}`; });
    hls.subtitleDisplay = false;
    hls.loadSource(urls.body.hls_url);
    hls.attachMedia(v);
    quality.addEventListener("change", () => { hls.currentLevel = Number(quality.value); });
    captions.addEventListener("change", () => {
      hls.subtitleTrack = captions.checked ? 0 : -1;
      hls.subtitleDisplay = captions.checked;
    });
  } else {
    // No MSE: Safari plays HLS itself; anything else gets one rendition as an MP4 (GET /api/videos/{id}/stream/{q}).
    const native = v.canPlayType("application/vnd.apple.mpegurl") !== "";
    player.mode = native ? "native" : "mp4";
    const heights = [...(urls.body.bitrates || [])].sort((a, b) => b - a);
    const mp4 = (h) => withToken(`/api/videos/${enc}/stream/${h}p`);
    if (native) {
      v.src = urls.body.hls_url;
    } else {
      quality.replaceChildren(...heights.map((h) => el("option", { value: String(h) }, `${h}p`)));
      quality.disabled = heights.length === 0;
      if (heights.length) { v.src = mp4(heights[0]); document.body.dataset.level = `${heights[0]}p`; }
      quality.addEventListener("change", () => {
        const at = v.currentTime, playing = !v.paused;
        v.src = mp4(quality.value);
        document.body.dataset.level = `${quality.value}p`;
        v.addEventListener("loadedmetadata", () => { v.currentTime = at; if (playing) v.play(); }, { once: true });
      });
    }
    const vtt = await fetch(withToken(`/videos/${enc}/captions.vtt`));
    if (vtt.ok && !native) {
      v.append(el("track", { kind: "captions", srclang: "en", label: "Captions", src: withToken(`/videos/${enc}/captions.vtt`) }));
      captions.disabled = false;
      captions.addEventListener("change", () => { v.textTracks[0].mode = captions.checked ? "showing" : "hidden"; });
    }
    v.addEventListener("loadedmetadata", () => { document.body.dataset.ready = "true"; }, { once: true });
  }
  document.body.dataset.player = player.mode;

  // The scrub bar: progress, click to seek, storyboard previews on hover.
  const scrub = $("scrub"), preview = $("preview");
  v.addEventListener("timeupdate", () => {
    $("played").style.width = v.duration ? `${(100 * v.currentTime) / v.duration}%` : "0";
    $("time").textContent = `${clock(v.currentTime)} / ${clock(v.duration)}`;
    for (const b of document.querySelectorAll("#transcript button")) {
      b.classList.toggle("active", v.currentTime >= Number(b.dataset.start) && v.currentTime < Number(b.dataset.end));
    }
  });
  const timeAt = (event) => {
    const r = scrub.getBoundingClientRect();
    return Math.min(1, Math.max(0, (event.clientX - r.left) / r.width)) * (v.duration || 0);
  };
  scrub.addEventListener("click", (event) => { v.currentTime = timeAt(event); });
  scrub.addEventListener("mouseleave", () => { preview.style.display = "none"; });
  scrub.addEventListener("mousemove", (event) => {
    const t = timeAt(event);
    const cue = player.cues.find((c) => t >= c.start && t < c.end) || player.cues[player.cues.length - 1];
    if (!cue) return;
    Object.assign(preview.style, {
      display: "block", left: `${event.clientX - scrub.getBoundingClientRect().left}px`,
      width: `${cue.w}px`, height: `${cue.h}px`, backgroundImage: `url(${JSON.stringify(cue.url)})`,
      backgroundPosition: `-${cue.x}px -${cue.y}px`,
    });
    preview.dataset.cue = String(player.cues.indexOf(cue));
    $("preview-time").textContent = clock(t);
  });
  const seconds = (text) => text.split(":").reduce((acc, part) => acc * 60 + Number(part), 0);
  fetch(withToken(`/videos/${enc}/storyboard.vtt`)).then((r) => (r.ok ? r.text() : "")).then((text) => {
    for (const block of text.split(/\r?\n\r?\n/)) {
      const lines = block.split(/\r?\n/);
      const at = lines.findIndex((l) => l.includes("-->"));
      if (at < 0 || !lines[at + 1]) continue;
      const [from, to] = lines[at].split("-->").map((s) => seconds(s.trim().split(/\s/)[0]));
      const [url, frag] = lines[at + 1].trim().split("#xywh=");
      const [x, y, w, h] = (frag || "0,0,0,0").split(",").map(Number);
      player.cues.push({ start: from, end: to, url, x, y, w, h });
    }
    document.body.dataset.storyboard = String(player.cues.length);
  });

  // The transcript: each segment seeks the player to where it is said.
  const transcript = await api(`/videos/${enc}/transcript`);
  const segments = transcript.ok ? transcript.body.segments : [];
  $("transcript").replaceChildren(...(segments.length ? segments.map((s) => el("button", {
    type: "button", dataset: { start: s.start, end: s.end },
    onclick: () => { v.currentTime = s.start; v.play(); },
  }, el("time", {}, clock(s.start)), s.text)) : [el("p", { class: "muted" }, "Nobody speaks in this clip.")]));

  const similar = await api(`/videos/${enc}/similar`);
  const others = similar.ok ? similar.body.similar_videos : [];
  $("similar").replaceChildren(...(others.length ? others.map((o) => {
    const img = el("img", { alt: "" });
    thumbnail(img, o.thumbnail_url);
    return el("a", { href: `/web/watch?video=${encodeURIComponent(o.id)}`, dataset: { video: o.id } }, img,
      el("span", {}, o.title, el("br"), el("span", { class: "muted" }, `${Math.round(o.similarity * 100)}% alike`)));
  }) : [el("p", { class: "muted" }, "No similar clips yet.")]));
  document.body.dataset.loaded = "true";

  // The thumbnail control, for whoever may change it (a stream admin, or the uploader while a creator; the
  // API enforces the same): an image goes POST /videos/{id}/thumbnail -> presigned PUT with upload_headers
  // -> PUT /videos/{id}/thumbnail; "Use a frame" is DELETE. Resolves to whether it was shown.
  async function thumbnailControl() {
    const stream = await api(`/streams/${encodeURIComponent(info.body.stream_id)}`);
    const role = stream.ok ? stream.body.user_role : null;
    if (!(role === "admin" || (role === "creator" && info.body.uploaded_by === me.id))) return false;
    const path = `/videos/${enc}/thumbnail`;
    const img = el("img", { id: "thumb-current", alt: "The clip's thumbnail" });
    const file = el("input", { type: "file", id: "thumb-file", accept: "image/jpeg,image/png,image/webp" });
    const status = el("span", { class: "muted", id: "thumb-status", role: "status" });
    const show = async (text) => {
      await thumbnail(img, `/files/videos/${enc}/thumbnail`, true);
      if (img.src) v.poster = img.src;
      status.textContent = text;
      document.body.dataset.thumbnail = text;
    };
    const failed = (text) => { status.textContent = text; document.body.dataset.thumbnail = "failed"; };
    file.addEventListener("change", async () => {
      const f = file.files[0];
      if (!f) return;
      status.textContent = "Uploading…";
      const asked = await api(path, { method: "POST", json: { content_type: f.type, size_bytes: f.size } });
      if (!asked.ok) return failed(errorText(asked));
      const put = await fetch(asked.body.upload_url, { method: "PUT", headers: asked.body.upload_headers, body: f });
      if (!put.ok) return failed(`storage answered ${put.status}`);
      const set = await api(path, { method: "PUT", json: { upload_id: asked.body.upload_id } });
      if (!set.ok) return failed(errorText(set));
      file.value = "";
      await show(`your image (${set.body.width} x ${set.body.height})`);
    });
    const frame = el("button", { type: "button", class: "secondary", id: "thumb-frame", onclick: async () => {
      const r = await api(path, { method: "DELETE" });
      if (!r.ok) return failed(errorText(r));
      await show("a frame of the clip");
    } }, "Use a frame");
    $("description").after(el("section", { class: "thumb-edit", id: "thumb-edit" }, img,
      el("div", {}, el("h2", {}, "Thumbnail"), status,
        el("label", {}, "Your own image (JPEG, PNG or WebP, at most 5 MB) ", file), frame)));
    await thumbnail(img, `/files/videos/${enc}/thumbnail`);
    return true;
  }
})();
