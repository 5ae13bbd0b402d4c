// /web: the caller's streams and the clips of one (?stream=<id>).
"use strict";
(async () => {
  const { api, el, errorText, param, start, thumbnail, clock } = Clip;
  const main = document.getElementById("main");
  if (!(await start(main))) return;
  const message = document.getElementById("message");
  const streams = await api("/streams?limit=100");
  if (!streams.ok) { message.textContent = errorText(streams); return; }
  const list = streams.body.streams || [];
  const current = param("stream") || (list[0] && list[0].id);
  const bar = document.getElementById("streams");
  bar.replaceChildren(...list.map((s) => el("a", { href: `/web?stream=${encodeURIComponent(s.id)}`,
    class: s.id === current ? "current" : null, dataset: { stream: s.id } }, s.name)));
  if (!list.length) bar.textContent = "You are in no stream yet: create one, or join one with an invite.";
  document.getElementById("new-stream").addEventListener("submit", async (event) => {
    event.preventDefault();
    const made = await api("/streams", { method: "POST", json: { name: document.getElementById("stream-name").value } });
    if (made.ok) location.href = `/web?stream=${encodeURIComponent(made.body.id)}`;
    else message.textContent = errorText(made);
  });
  if (!current) { document.body.dataset.loaded = "true"; return; }
  const stream = list.find((s) => s.id === current);
  document.getElementById("title").textContent = stream ? stream.name : "Clips";
  document.getElementById("upload-link").href = `/web/upload?stream=${encodeURIComponent(current)}`;
  const videos = await api(`/streams/${encodeURIComponent(current)}/videos?limit=100`);
  if (!videos.ok) { message.textContent = errorText(videos); return; }
  const grid = document.getElementById("clips");
  grid.replaceChildren(...videos.body.videos.map((v) => {
    const img = el("img", { alt: "" });
    thumbnail(img, v.thumbnail_url);
    const state = v.processing_index === -1 ? "duplicate" : v.status;
    return el("a", { class: "clip", href: `/web/watch?video=${encodeURIComponent(v.id)}`, dataset: { video: v.id } },
      img, el("div", { class: "meta" }, el("div", {}, v.title),
        el("span", { class: `badge ${state}` }, state), " ",
        el("span", { class: "muted" }, v.duration ? clock(v.duration) : "")));
  }));
  if (!videos.body.videos.length) grid.textContent = "No clips yet.";
  document.body.dataset.loaded = "true";
})();
