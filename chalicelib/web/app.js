// Shared by the pages: the app token, API calls, safe DOM building, sign-in.
"use strict";
const Clip = (() => {
  const KEY = "clipstream.app_token";
  const token = () => localStorage.getItem(KEY);
  const setToken = (value) => value ? localStorage.setItem(KEY, value) : localStorage.removeItem(KEY);
  const param = (name) => new URLSearchParams(location.search).get(name);

  // el("a", {href: "/x", class: "y"}, "text", child) — text always as text, never as HTML.
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(node.dataset, v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  async function api(path, { method = "GET", json, headers = {} } = {}) {
    const h = { ...headers };
    if (token()) h.Authorization = "Bearer " + token();
    let body;
    if (json !== undefined) { h["Content-Type"] = "application/json"; body = JSON.stringify(json); }
    const resp = await fetch(path, { method, headers: h, body });
    const text = await resp.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = text; }
    if (resp.status === 401 && token()) { setToken(null); }
    return { status: resp.status, ok: resp.ok, body: data };
  }

  const errorText = (r) => {
    const b = r.body || {};
    return `${r.status} ${b.error || ""}${b.details ? ": " + b.details.join("; ") : ""}`;
  };

  // Thumbnails need the bearer token: fetched, then shown from a blob URL. `fresh` revalidates a cached
  // redirect (after the thumbnail was changed).
  async function thumbnail(img, url, fresh = false) {
    try {
      const resp = await fetch(url, { headers: { Authorization: "Bearer " + token() }, cache: fresh ? "no-cache" : "default" });
      if (resp.ok) img.src = URL.createObjectURL(await resp.blob());
    } catch (e) { /* no thumbnail: the grey box stays */ }
  }

  const clock = (s) => {
    s = Math.max(0, Math.floor(s || 0));
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  };

  // The header: links, who is signed in, sign-out. Resolves to the user, or null after showing sign-in.
  async function start(main) {
    const who = document.getElementById("who");
    const fromUrl = new URLSearchParams(location.hash.slice(1)).get("token");
    if (fromUrl) { setToken(fromUrl); history.replaceState(null, "", location.pathname + location.search); }
    if (token()) {
      const me = await api("/auth/user");
      if (me.ok) {
        who.textContent = me.body.email;
        who.after(el("button", { class: "secondary", id: "sign-out",
          onclick: () => { setToken(null); location.reload(); } }, "Sign out"));
        return me.body;
      }
    }
    main.replaceChildren(signInForm());
    return null;
  }

  // Sign in with a Google ID token (POST /auth/verify; `make token` mints one locally) or an app token.
  function signInForm() {
    const message = el("p", { class: "message", id: "sign-in-message", role: "alert" });
    const input = el("textarea", { id: "sign-in-token", placeholder: "eyJ... (a Google ID token, or an app token)" });
    const form = el("form", { class: "card", id: "sign-in" },
      el("h1", {}, "Sign in"),
      el("p", { class: "muted" }, "Paste a Google ID token (on the local stack: ", el("code", {}, "make token"),
        ") or an app token from POST /auth/verify."),
      input, el("p", {}, el("button", { type: "submit" }, "Sign in")), message);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const value = input.value.trim();
      message.textContent = "";
      const verified = await api("/auth/verify", { method: "POST", json: { id_token: value } });
      if (verified.ok) { setToken(verified.body.app_token); location.reload(); return; }
      setToken(value);                      // not a Google token: perhaps an app token
      const me = await api("/auth/user");
      if (me.ok) { location.reload(); return; }
      setToken(null);
      message.textContent = "Not signed in: " + errorText(verified);
    });
    return form;
  }

  return { api, el, errorText, param, start, thumbnail, clock, token };
})();
