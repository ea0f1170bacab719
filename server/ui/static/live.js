// Trail console: follow new events on the search and patient pages.
//
// The page reads /ui/live (the API's live tail run by the console as the
// signed-in principal, with the page's filters) as NDJSON: one stored event
// a line, an empty line to keep the connection alive, and a last line
// {"end":…,"detail":…} when the console ends it (the session ended). New
// events go on top of the table; the page keeps the newest MAX_ROWS rows.
// A polite live region says how many came. The request is a background
// one: following does not keep the session alive. It stops when the user
// stops following, when the page is left, and when the session ends.
"use strict";
(function () {
  var box = document.getElementById("live");
  if (!box) { return; }
  var MAX_ROWS = 500;
  var section = box.closest("section");
  var button = document.getElementById("follow");
  var statusEl = document.getElementById("live-status");
  var problemEl = document.getElementById("live-problem");
  var after = Number(new URLSearchParams(box.dataset.query).get("after")); // -1: from the first event
  var seen = new Set();
  var ctrl = null, fresh = 0, announce = null, total = 0;
  var ACTIONS = { C: "Create", R: "Read", U: "Update", D: "Delete", E: "Execute" };

  section.querySelectorAll("table.events tbody tr a[href^='/ui/events/']").forEach(function (a) {
    var i = Number(a.getAttribute("href").split("/").pop());
    seen.add(i);
    after = Math.max(after, i);
  });

  // sentence makes an API's detail a sentence: a capital, a full stop.
  function sentence(s) {
    s = String(s || "").trim();
    if (!s) { return s; }
    s = s.charAt(0).toUpperCase() + s.slice(1);
    return /[.!?]$/.test(s) ? s : s + ".";
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }
  function cell(label) {
    var td = el("td");
    td.dataset.label = label;
    return td;
  }
  // when writes an RFC 3339 time as the table does: 2026-12-07 10:15:02 UTC.
  function when(t) {
    var d = new Date(String(t).replace(/(\.\d+)/, ""));
    return isNaN(d) ? String(t) : d.toISOString().slice(0, 19).replace("T", " ") + " UTC";
  }
  // row builds a table row as the page's template does.
  function row(ev) {
    var tr = el("tr", "fresh");
    var td = cell("Time"), a = el("a", "", when(ev.time || ev.recorded));
    a.href = "/ui/events/" + ev.index;
    td.append(a);
    tr.append(td);
    var actor = ev.actor || {};
    td = cell("Actor");
    td.append(document.createTextNode(actor.id || ""));
    if (actor.name) { td.append(el("span", "minor", actor.name)); }
    if (actor.role) { td.append(el("span", "minor", actor.role)); }
    tr.append(td);
    td = cell("Action");
    td.textContent = ACTIONS[ev.action] || ev.action;
    tr.append(td);
    td = cell("Type");
    td.append(el("code", "", ev.type));
    tr.append(td);
    td = cell("Patient");
    if (ev.patient) {
      a = el("a", "", ev.patient);
      a.href = "/ui/patient?patient=" + encodeURIComponent(ev.patient);
      td.append(a);
    } else {
      td.append(el("span", "minor", "—"));
    }
    tr.append(td);
    var outcome = ev.outcome || "success";
    td = cell("Outcome");
    td.append(el("span", "badge " + (outcome === "success" ? "good" : "bad"), outcome));
    tr.append(td);
    td = cell("Stream");
    td.append(el("code", "", ev.stream));
    tr.append(td);
    return tr;
  }

  function add(ev) {
    if (typeof ev.index !== "number" || seen.has(ev.index)) { return; }
    seen.add(ev.index);
    after = Math.max(after, ev.index);
    var empty = document.getElementById("live-empty");
    if (empty) {
      empty.remove();
      document.getElementById("live-table").hidden = false;
    }
    var body = section.querySelector("table.events tbody");
    body.insertBefore(row(ev), body.firstChild);
    while (body.rows.length > MAX_ROWS) {
      var last = body.rows[body.rows.length - 1];
      var link = last.querySelector("a[href^='/ui/events/']");
      if (link) { seen.delete(Number(link.getAttribute("href").split("/").pop())); }
      last.remove();
    }
    fresh++;
    total++;
    box.dataset.count = String(total);
    if (!announce) { announce = setTimeout(say, 1000); }
  }
  // say tells the live region what came, at most once a second.
  function say() {
    announce = null;
    var count = section.querySelector("p.count");
    if (count && total > 0) {
      count.removeAttribute("role"); // the live region announces
      count.textContent = total + " new event" + (total === 1 ? "" : "s") + " since you started following, on top; " +
        section.querySelectorAll("table.events tbody tr").length + " shown, newest first.";
    }
    if (fresh > 0) {
      statusEl.textContent = fresh + " new event" + (fresh === 1 ? "" : "s") + " · following (newest first, the latest " + MAX_ROWS + " kept)";
      fresh = 0;
    }
  }

  function state(s, text) {
    box.dataset.state = s;
    statusEl.textContent = text;
  }
  function problem(kind, title, text, signin) {
    problemEl.textContent = "";
    problemEl.className = "state " + kind;
    problemEl.append(el("h3", "", title), el("p", "", text));
    if (signin) {
      var a = el("a", "button primary", "Sign in again");
      a.href = "/ui/signin?next=" + encodeURIComponent(location.pathname + location.search);
      problemEl.append(a);
    }
    problemEl.hidden = false;
  }

  function stop(s, text) {
    if (ctrl) { ctrl.abort(); ctrl = null; }
    button.setAttribute("aria-pressed", "false");
    button.textContent = "Follow new events";
    state(s, text);
  }

  async function refused(resp) {
    var pr = await resp.json().catch(function () { return {}; });
    var detail = sentence(pr.detail || resp.statusText);
    if (resp.status === 401) {
      problem("error", "Your session has ended", detail, true);
      stop("ended", "Not following: your session has ended.");
      button.disabled = true;
    } else if (resp.status === 403) {
      problem("denied", "Access denied", detail + " Ask your administrator for the missing grant.");
      stop("denied", "Not following: access denied.");
    } else {
      problem("error", "Following could not start", detail + " (" + resp.status + ")");
      stop("error", "Not following.");
    }
  }

  async function follow() {
    var mine = new AbortController();
    ctrl = mine;
    problemEl.hidden = true;
    button.setAttribute("aria-pressed", "true");
    button.textContent = "Stop following";
    state("connecting", "Connecting…");
    var query = new URLSearchParams(box.dataset.query);
    query.set("after", String(after));
    var ended = null;
    try {
      var resp = await fetch("/ui/live?" + query.toString(), { cache: "no-store", credentials: "same-origin",
        headers: { "X-Trail-Background": "1" }, signal: mine.signal });
      if (!resp.ok) { await refused(resp); return; }
      state("following", "Following new events…");
      var reader = resp.body.getReader(), dec = new TextDecoder(), buf = "";
      for (;;) {
        var r = await reader.read();
        if (r.done) { break; }
        buf += dec.decode(r.value, { stream: true });
        var nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          var line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (!line) { continue; }
          var msg = JSON.parse(line);
          if (msg.end) { ended = msg; } else { add(msg); }
        }
      }
    } catch (e) {
      if (mine.signal.aborted) { return; } // stopped by the user or by leaving the page
      problem("error", "The live view stopped", "The server could not be reached (" + (e.message || e) + "). Follow again to retry.");
      stop("error", "Not following.");
      return;
    }
    if (ctrl !== mine) { return; }
    say();
    if (ended && ended.end === "session") {
      problem("error", "Your session has ended", sentence(ended.detail), true);
      stop("ended", "Not following: your session has ended.");
      button.disabled = true;
    } else {
      problem("error", "The live view stopped", (ended ? sentence(ended.detail) : "The server closed the connection.") + " Follow again to retry.");
      stop("error", "Not following.");
    }
  }

  button.addEventListener("click", function () {
    if (ctrl) {
      stop("off", "Stopped following new events.");
    } else {
      follow();
    }
  });
  window.addEventListener("pagehide", function () { if (ctrl) { ctrl.abort(); ctrl = null; } });
})();
