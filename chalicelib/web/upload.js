// /web/upload: presigned PUT with progress, then the processing stages (GET /videos/{id}/processing).
"use strict";
(async () => {
  const { api, el, errorText, param, start } = Clip;
  const main = document.getElementById("main");
  if (!(await start(main))) return;
  const message = document.getElementById("message");
  const select = document.getElementById("stream");
  const streams = await api("/streams?limit=100");
  if (!streams.ok) { message.textContent = errorText(streams); return; }
  const mine = (streams.body.streams || []).filter((s) => !s.role || s.role !== "viewer");
  select.replaceChildren(...mine.map((s) => el("option", { value: s.id, selected: s.id === param("stream") }, s.name)));
  document.body.dataset.loaded = "true";
  const TYPES = { mp4: "video/mp4", mov: "video/quicktime", avi: "video/x-msvideo" };
  const ORDER = ["upload", "dedup", "transcode", "transcribe", "embed", "complete"];

  function mark(stage, state) {
    const li = document.querySelector(`#stages li[data-stage="${stage}"]`);
    if (li) li.dataset.state = state;
  }

  function put(url, headers, file, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("PUT", url);
      for (const [k, v] of Object.entries(headers)) xhr.setRequestHeader(k, v);
      xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
      xhr.onload = () => (xhr.status >= 200 && xhr.status < 300 ? resolve() : reject(new Error(`storage answered ${xhr.status}`)));
      xhr.onerror = () => reject(new Error("the upload failed (network)"));
      xhr.send(file);
    });
  }

  async function follow(videoId) {
    const status = document.getElementById("processing-status");
    for (;;) {
      const r = await api(`/videos/${encodeURIComponent(videoId)}/processing`);
      if (!r.ok) { message.textContent = errorText(r); return; }
      const p = r.body;
      for (const h of p.history || []) mark(h.stage, h.status === "succeeded" ? "done" : h.status === "failed" ? "failed" : "running");
      status.textContent = `status: ${p.status}${p.stage ? ", stage: " + p.stage : ""}`;
      document.body.dataset.processing = p.status;
      if (p.status === "complete") {
        mark("complete", "done");
        document.getElementById("done").replaceChildren(el("a", { id: "watch-link", href: `/web/watch?video=${encodeURIComponent(videoId)}` }, "Watch it"));
        return;
      }
      if (p.status === "failed" || p.processing_index === -1) {
        mark("complete", "failed");
        message.textContent = p.processing_index === -1 ? "This clip is a duplicate of an earlier one."
          : `Processing failed: ${p.failure_reason || "unknown reason"}`;
        return;
      }
      await new Promise((ok) => setTimeout(ok, 1000));
    }
  }

  document.getElementById("upload-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    message.textContent = "";
    const file = document.getElementById("file").files[0];
    if (!file) return;
    const ext = (file.name.split(".").pop() || "").toLowerCase();
    const body = { filename: file.name, size_bytes: file.size, content_type: file.type || TYPES[ext] || "application/octet-stream" };
    const title = document.getElementById("video-title").value.trim();
    if (title) body.title = title;
    const created = await api(`/streams/${encodeURIComponent(select.value)}/videos`, { method: "POST", json: body });
    if (!created.ok) { message.textContent = errorText(created); return; }
    document.getElementById("start-upload").disabled = true;
    document.getElementById("progress-card").hidden = false;
    document.body.dataset.video = created.body.id;
    mark("upload", "running");
    const bar = document.getElementById("upload-progress"), percent = document.getElementById("upload-percent");
    try {
      await put(created.body.upload_url, { ...created.body.upload_headers, "Content-Type": body.content_type }, file, (f) => {
        bar.value = Math.round(f * 100); percent.textContent = `${Math.round(f * 100)}%`;
      });
    } catch (e) { mark("upload", "failed"); message.textContent = e.message; return; }
    bar.value = 100; percent.textContent = "100%";
    mark("upload", "done");
    document.body.dataset.uploaded = "true";
    await follow(created.body.id);
  });
})();
