// ABC Bank, token mode: a single-page app in plain JavaScript.
//
// The access token lives in the variable below and nowhere else: not in
// localStorage, sessionStorage or a cookie, so it is gone on reload. The
// refresh token is an HttpOnly cookie that Sesame sets on its own
// /v1/token path; this script never sees it, and asks Sesame to use it
// (refresh_token_in=cookie) to get a new access token, silently, on load
// and before the current one expires.
"use strict";
(function () {
  const sesame = document.body.dataset.sesame;
  let access = null; // the access token: memory only
  let claims = null;
  let timer = null;

  const $ = (id) => document.getElementById(id);

  function log(line) {
    const el = $("log");
    el.textContent = new Date().toISOString().slice(11, 19) + " " + line + "\n" + el.textContent.split("\n").slice(0, 12).join("\n");
  }

  function decode(jwt) {
    const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = decodeURIComponent(Array.from(atob(part), (c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0")).join(""));
    return JSON.parse(json);
  }

  function show(signedIn) {
    $("signin").hidden = signedIn;
    $("app").hidden = !signedIn;
    $("doccookie").textContent = JSON.stringify(document.cookie);
    if (!signedIn) {
      $("status").textContent = "Not signed in.";
      $("claims").textContent = "(none)";
      $("atlen").textContent = "none";
      $("record").replaceChildren(fact("Family", "(not signed in)"));
    }
  }

  function fact(k, v) {
    const f = document.createDocumentFragment();
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = v;
    f.append(dt, dd);
    return f;
  }

  // grant asks Sesame's token endpoint; the browser attaches the refresh
  // cookie itself (credentials: "include"), and stores the new one.
  async function grant(params, what) {
    params.set("refresh_token_in", "cookie");
    const res = await fetch(sesame + "/v1/token", {
      method: "POST", credentials: "include", body: params,
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
    });
    log("POST /v1/token (" + what + ") → " + res.status + "; the browser sent and stored the refresh cookie itself");
    if (!res.ok) return false;
    const body = await res.json();
    if ("refresh_token" in body) throw new Error("a refresh token in the body: expected it in the cookie");
    setAccess(body.access_token, body.expires_in);
    return true;
  }

  function setAccess(token, expiresIn) {
    access = token;
    claims = decode(token);
    $("claims").textContent = JSON.stringify(claims, null, 1);
    $("atlen").textContent = token.length + " characters, expiring in " + expiresIn + " s";
    clearTimeout(timer);
    timer = setTimeout(refresh, Math.max(5, expiresIn - 15) * 1000);
  }

  async function refresh() {
    const ok = await grant(new URLSearchParams({ grant_type: "refresh_token" }), "refresh from the cookie");
    if (!ok) {
      access = claims = null;
      clearTimeout(timer);
      show(false);
      $("status").textContent = "Signed out: Sesame refused the refresh (the sign-in has ended).";
    }
    return ok;
  }

  // api calls the bank with the access token; on a 401 it refreshes once.
  async function api(method, path, body, retried) {
    const opts = { method, headers: { Authorization: "Bearer " + access } };
    if (body) {
      opts.body = JSON.stringify(body);
      opts.headers["Content-Type"] = "application/json";
    }
    const res = await fetch(path, opts);
    log(method + " " + path + " with Authorization: Bearer → " + res.status);
    if (res.status === 401 && !retried && (await refresh())) return api(method, path, body, true);
    return res;
  }

  function render(data) {
    $("who").textContent = data.email || claims.email;
    const rows = data.accounts.map((a) => {
      const tr = document.createElement("tr");
      const name = document.createElement("td");
      name.textContent = a.name;
      const bal = document.createElement("td");
      bal.className = "num";
      bal.dataset.account = a.name;
      bal.textContent = "$" + (a.cents / 100).toFixed(2);
      tr.append(name, bal);
      return tr;
    });
    $("accounts").replaceChildren(...rows);
    $("transfers").replaceChildren(...data.transfers.map((t) => {
      const li = document.createElement("li");
      li.textContent = t.time.slice(11, 19) + " UTC: $" + (t.cents / 100).toFixed(2) + " from " + t.from + " to " + t.to + " (by " + t.via + ")";
      return li;
    }));
    const c = data.carried;
    $("carried").textContent = (c.authorization ? "Authorization: Bearer <access token>" : "no Authorization") +
      (c.cookie ? "; also a Sesame session cookie, which the bank's API ignores" : "; no cookie");
  }

  async function record() {
    const res = await fetch(sesame + "/v1/sessions", { headers: { Authorization: "Bearer " + access } });
    log("GET " + sesame + "/v1/sessions with Authorization: Bearer → " + res.status);
    if (!res.ok) return;
    const mine = (await res.json()).sessions.find((s) => s.id === claims.sid);
    if (!mine) return;
    $("record").replaceChildren(
      fact("Family", mine.id + " (the token's sid)"), fact("Kind", mine.kind),
      fact("Signed in", mine.created_at), fact("Last refresh", mine.last_seen_at),
      fact("Ends", mine.expires_at), fact("From", mine.ip), fact("Device", mine.user_agent));
  }

  async function load() {
    const res = await api("GET", "/api/accounts");
    if (!res.ok) return;
    render(await res.json());
    show(true);
    $("status").textContent = "Signed in with tokens.";
    record();
  }

  $("login").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("loginerror").hidden = true;
    const ok = await grant(new URLSearchParams({ grant_type: "password", username: $("email").value, password: $("password").value }), "password");
    $("password").value = "";
    if (!ok) {
      $("loginerror").textContent = "That email and password do not match an account, or there were too many attempts.";
      $("loginerror").hidden = false;
      return;
    }
    load();
  });

  $("transfer").addEventListener("submit", async (e) => {
    e.preventDefault();
    const res = await api("POST", "/api/transfer", { from: $("from").value, to: $("to").value, amount: $("amount").value });
    const body = await res.json();
    const msg = $("transfermsg");
    msg.hidden = false;
    if (res.ok) {
      msg.className = "msg notice";
      msg.textContent = "Transfer done.";
      render(Object.assign({ email: claims.email }, body));
    } else {
      msg.className = "msg error";
      msg.textContent = "Transfer refused: " + (body.error_description || res.status) + ".";
    }
  });

  $("logout").addEventListener("click", async () => {
    const res = await fetch(sesame + "/v1/token/revoke", {
      method: "POST", credentials: "include", body: new URLSearchParams(),
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
    });
    log("POST /v1/token/revoke (the cookie's family) → " + res.status);
    access = claims = null;
    clearTimeout(timer);
    show(false);
    $("status").textContent = "Signed out: Sesame ended the family and cleared the cookie.";
  });

  // A reload restores the sign-in from the refresh cookie, silently.
  refresh().then((ok) => (ok ? load() : show(false)));
})();
