// Trail console: the System page. Every 10 s it asks the server for its
// state (a background request, which does not extend the session), and
// checks in this browser that the latest checkpoint is signed by the
// pinned verifier key and that the log still contains the last checkpoint
// this browser saw (an RFC 6962 consistency proof, verify.js). The
// remembered checkpoint moves forward only after both checks pass: a
// failure stays on screen, loud, at every refresh, and is never replaced
// by the server's word.
"use strict";
(function () {
  var section = document.getElementById("consistency");
  if (!section || !window.TrailVerify) { return; }
  var V = window.TrailVerify;
  var SEEN = "trail.lastCheckpoint";
  var EVERY = 10000;
  var BG = { cache: "no-store", credentials: "same-origin", headers: { "X-Trail-Background": "1" } };
  var $ = function (id) { return document.getElementById(id); };
  var timer = null, stopped = false, lastOK = null, failed = false;

  function ago(seconds) {
    seconds = Math.max(0, Math.round(seconds));
    if (seconds < 60) { return seconds + " s"; }
    if (seconds < 3600) { return Math.floor(seconds / 60) + " min"; }
    return Math.floor(seconds / 3600) + " h " + Math.floor(seconds % 3600 / 60) + " min";
  }
  function bytes(n) {
    var u = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"], i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return i === 0 ? n + " bytes" : n.toFixed(1) + " " + u[i];
  }
  // sentence makes an API's detail a sentence: a capital, a full stop.
  function sentence(s) {
    s = String(s || "").trim();
    if (!s) { return s; }
    s = s.charAt(0).toUpperCase() + s.slice(1);
    return /[.!?]$/.test(s) ? s : s + ".";
  }
  function events(n) { return n + (n === 1 ? " event" : " events"); }
  function clock(d) { return d.toISOString().slice(11, 19) + " UTC"; }
  function day(iso) { return iso.slice(0, 10) + " " + iso.slice(11, 16) + " UTC"; }
  function set(id, text) { var el = $(id); if (el) { el.textContent = text; } }

  function show(st) {
    var cp = st.checkpoint;
    set("cp-size", String(cp.size));
    set("cp-unit", cp.size === 1 ? "event" : "events");
    set("cp-age", cp.signed_at ? ago((Date.parse(st.now) - Date.parse(cp.signed_at)) / 1000) + " ago" : "signed before this server started");
    set("log-size", String(st.log_size));
    set("cp-origin", cp.origin);
    set("cp-root", cp.root);
    set("cp-note", cp.signed);
    set("served-key", st.verifier_key);
    var ready = $("ready");
    ready.className = "verdict " + (st.ready ? "pass" : "fail");
    ready.textContent = st.ready ? "Ready: the server acknowledges new events." :
      "Not ready: " + st.not_ready + ". New events are refused until the operator fixes this; nothing stored is lost.";
    if (st.ingest) {
      set("ingest", st.ingest.over_seconds < 1 ? "Measuring… (the rate shows at the next refresh)" :
        st.ingest.per_second.toFixed(1) + " events/s over the last " + ago(st.ingest.over_seconds));
    }
    if (st.store && st.store.replication) {
      set("replication", st.store.replication);
    }
    if (st.disk) {
      set("disk", st.disk.error ? "Unknown: " + st.disk.error :
        bytes(st.disk.free) + " free of " + bytes(st.disk.total) + " (" + Math.round(100 * st.disk.free / Math.max(st.disk.total, 1)) + "% free)");
    }
  }

  function problem(title, text, signin) {
    var box = $("sys-problem");
    box.textContent = "";
    var h = document.createElement("h2");
    h.textContent = title;
    var p = document.createElement("p");
    p.textContent = text;
    box.append(h, p);
    if (signin) {
      var a = document.createElement("a");
      a.href = "/ui/signin?next=" + encodeURIComponent("/ui/system");
      a.className = "button primary";
      a.textContent = "Sign in again";
      box.append(a);
    }
    box.hidden = false;
    document.body.dataset.sysState = signin ? "ended" : "error";
  }
  function stale(why) {
    set("sys-updated", (lastOK ? "Last updated " + clock(lastOK) : "Not updated") + " · " + why);
  }
  function updated(now) {
    lastOK = now;
    $("sys-problem").hidden = true;
    set("sys-updated", "Updated " + clock(now) + " · refreshes every 10 s");
    document.body.dataset.sysState = "ok";
  }

  // The consistency check.
  var stepsEl = $("cons-steps"), statusEl = $("cons-status");
  function step(text, ok) {
    var li = document.createElement("li");
    li.textContent = text;
    li.className = ok === false ? "bad" : "ok";
    stepsEl.appendChild(li);
  }
  function verdict(result, text) {
    statusEl.textContent = text;
    statusEl.className = "verdict " + result;
    section.dataset.result = result;
    statusEl.setAttribute("role", result === "fail" ? "alert" : "status");
  }
  function remembered() {
    try { return JSON.parse(localStorage.getItem(SEEN) || "null"); } catch (e) { return null; }
  }
  function showRemembered() {
    var r = remembered(), p = V.pinned();
    set("remembered", r ? events(r.size) + ", root " + r.root.slice(0, 16) + "…, seen " + day(r.when) +
      (r.first && r.first !== r.when ? " (checked back to " + day(r.first) + ")" : "") : "none yet");
    set("pinned-key", p ? p.key : "none");
    set("pinned-when", p ? "(" + p.how + ", " + p.when.slice(0, 10) + ")" : "");
  }

  // transient is a check that could not be made now (not a failure).
  function transient(why) {
    var e = new Error(why);
    e.transient = true;
    return e;
  }

  async function check(st) {
    stepsEl.textContent = "";
    var p = V.pinned();
    if (!p) {
      V.pin(section.dataset.servedKey, "pinned on first use");
      p = V.pinned();
      step("No verifier key was pinned in this browser: pinned the server's key now. Compare it with the operator's checkpoint.vkey.");
    }
    var key = await V.parseVerifierKey(p.key);
    if (p.key !== st.verifier_key) {
      step("This server now offers another verifier key than the one pinned; the pinned key is used.", false);
    }
    var note = V.parseNote(new TextEncoder().encode(st.checkpoint.signed));
    var cp = V.parseCheckpoint(note.body);
    var how = await V.checkSigned(note, key);
    step("Checkpoint of " + events(cp.size) + " signed by the pinned key " + key.name + " (Ed25519, checked with " + how + ").");
    var now = new Date().toISOString();
    var mine = { origin: cp.origin, size: cp.size, root: V.hex(cp.root), when: now };
    var r = remembered();
    if (!r) {
      mine.first = now;
      localStorage.setItem(SEEN, JSON.stringify(mine));
      verdict("pass", "This browser now remembers the checkpoint of " + events(cp.size) + ". Later visits check that the log still contains it.");
      return;
    }
    if (r.origin !== cp.origin) {
      throw new Error("the checkpoint is of another log (" + cp.origin + ") than the one this browser saw on " + day(r.when) + " (" + r.origin + ")");
    }
    if (r.size > cp.size) {
      throw new Error("the log shrank: on " + day(r.when) + " this browser saw a checkpoint of " + r.size + " events, the latest has " + cp.size);
    }
    var resp, proof;
    try {
      resp = await fetch("/ui/system/consistency?from=" + r.size + "&to=" + cp.size, BG);
      proof = await resp.json();
    } catch (e) {
      throw transient("the consistency proof could not be fetched (" + (e.message || e) + ")");
    }
    if (resp.status === 401 || resp.status === 429 || resp.status >= 500) {
      throw transient("the consistency proof could not be fetched: " + (proof.detail || resp.status));
    }
    if (!resp.ok) { throw new Error("the consistency proof was refused: " + (proof.detail || resp.status)); }
    if (proof.from !== r.size || proof.to !== cp.size) { throw new Error("the server answered a proof between other sizes"); }
    await V.verifyConsistency(r.size, cp.size, V.fromHex(r.root), cp.root, proof.hashes);
    step("Consistency proof (" + proof.hashes.length + " hashes) from the checkpoint of " + events(r.size) + " seen on " + day(r.when) + " to the latest, of " + events(cp.size) + ".");
    mine.first = r.first || r.when;
    localStorage.setItem(SEEN, JSON.stringify(mine));
    verdict("pass", "Consistent: this log still contains everything it showed this browser on " + day(r.when) + ".");
  }

  async function refresh() {
    if (stopped) { return; }
    var resp, st;
    try {
      resp = await fetch("/ui/system/status", BG);
    } catch (e) {
      problem("The server cannot be reached", "The last refresh failed (" + (e.message || e) + ")" +
        (lastOK ? "; the figures below are from " + clock(lastOK) : "") + ". Trying again every 10 s.");
      stale("the server cannot be reached");
      return;
    }
    if (resp.status === 401) {
      var pr = await resp.json().catch(function () { return {}; });
      problem("Your session has ended", sentence(pr.detail || "Sign in again.") + " The figures below are no longer refreshed.", true);
      stale("not refreshed: your session has ended");
      stopped = true;
      clearInterval(timer);
      return;
    }
    if (!resp.ok) {
      var pe = await resp.json().catch(function () { return {}; });
      problem("The server's state could not be read", sentence((pe.detail || "The server answered") + " (" + resp.status + ")") + " Trying again every 10 s.");
      stale("the last refresh failed");
      return;
    }
    st = await resp.json();
    show(st);
    updated(new Date());
    if (failed) { return; } // a failure stays until the page is loaded again
    try {
      await check(st);
    } catch (e) {
      var why = e.message || String(e);
      if (e.transient) {
        verdict("pending", "Not checked this time: " + why + ". Trying again at the next refresh.");
        return;
      }
      failed = true;
      step(why.charAt(0).toUpperCase() + why.slice(1) + ".", false);
      verdict("fail", "FAILED: " + why + ". Do not rely on this log until the operator explains it; this browser keeps what it saw.");
    } finally {
      showRemembered();
    }
  }

  window.TrailSystem = { refresh: refresh };
  showRemembered();
  refresh();
  timer = setInterval(refresh, EVERY);
  window.addEventListener("pagehide", function () { stopped = true; clearInterval(timer); });
})();
