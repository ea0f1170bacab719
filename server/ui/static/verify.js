// Trail console: verify an event in the browser.
//
// 1. The leaf hash is SHA-256(0x00 || the stored bytes shown on the page).
// 2. The latest checkpoint (/v1/checkpoint, a signed note in the
//    golang.org/x/mod/sumdb/note format) must carry a valid Ed25519
//    signature by the verifier key pinned in this browser: pinned on first
//    use (the key the server offered then) or pasted by the user. A key the
//    server offers later never replaces the pinned one.
// 3. The RFC 6962 inclusion proof of the event at the checkpoint's size
//    (fetched through the console, so the read is recorded) must lead from
//    the leaf hash to the checkpoint's root hash.
// The checks themselves (the signed note, the inclusion proof and the RFC
// 6962 consistency proof between two checkpoints) are window.TrailVerify,
// which the System page uses too (system.js).
"use strict";
(function () {
  var PIN = "trail.verifierKey";
  var FORCE_JS = "trail.ed25519"; // "js": use the JavaScript Ed25519 even where WebCrypto has it
  var enc = new TextEncoder();

  function hex(b) {
    var s = "";
    for (var i = 0; i < b.length; i++) { s += (b[i] < 16 ? "0" : "") + b[i].toString(16); }
    return s;
  }
  function fromHex(s) {
    if (!/^([0-9a-f]{2})*$/.test(s)) { throw new Error("not lower-case hex: " + s.slice(0, 20)); }
    var out = new Uint8Array(s.length / 2);
    for (var i = 0; i < out.length; i++) { out[i] = parseInt(s.substr(2 * i, 2), 16); }
    return out;
  }
  function fromBase64(s) {
    var bin = atob(s);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out;
  }
  function concat(parts) {
    var n = 0, i;
    for (i = 0; i < parts.length; i++) { n += parts[i].length; }
    var out = new Uint8Array(n), off = 0;
    for (i = 0; i < parts.length; i++) { out.set(parts[i], off); off += parts[i].length; }
    return out;
  }
  function equal(a, b) {
    if (a.length !== b.length) { return false; }
    for (var i = 0; i < a.length; i++) { if (a[i] !== b[i]) { return false; } }
    return true;
  }
  async function sha256(b) { return new Uint8Array(await crypto.subtle.digest("SHA-256", b)); }

  // A verifier key: name+hash+base64, the key being 0x01 (Ed25519) and 32
  // bytes, the hash the first 4 bytes of SHA-256(name "\n" key).
  async function parseVerifierKey(text) {
    var v = text.trim();
    var i = v.indexOf("+"), j = v.indexOf("+", i + 1);
    if (i <= 0 || j < 0) { throw new Error("a verifier key reads name+hash+base64"); }
    var name = v.slice(0, i), hash = v.slice(i + 1, j), key;
    if (!/^[0-9a-f]{8}$/.test(hash)) { throw new Error("the key hash must be 8 hex digits"); }
    try { key = fromBase64(v.slice(j + 1)); } catch (e) { throw new Error("the key is not base64"); }
    if (key.length !== 33 || key[0] !== 1) { throw new Error("not an Ed25519 key (algorithm byte 0x01 and 32 bytes)"); }
    var h = await sha256(concat([enc.encode(name + "\n"), key]));
    if (hex(h.slice(0, 4)) !== hash) { throw new Error("the key hash does not match the key: the key is damaged"); }
    return { text: v, name: name, hash: hash, pub: key.slice(1) };
  }

  // A signed note: its text (ending in a newline), a blank line, then
  // signature lines "— name base64(hash[4] || signature[64])".
  function parseNote(bytes) {
    var text = new TextDecoder().decode(bytes);
    var split = text.lastIndexOf("\n\n");
    if (split < 0) { throw new Error("the checkpoint is not a signed note (no blank line before signatures)"); }
    var sigs = [];
    text.slice(split + 2).split("\n").forEach(function (line) {
      var m = /^\u2014 (\S+) (\S+)$/.exec(line);
      if (!m) { return; }
      try {
        var b = fromBase64(m[2]);
        if (b.length === 68) { sigs.push({ name: m[1], hash: hex(b.slice(0, 4)), sig: b.slice(4) }); }
      } catch (e) { /* not a signature we can read */ }
    });
    return { text: enc.encode(text.slice(0, split + 1)), body: text.slice(0, split + 1), sigs: sigs };
  }

  // A checkpoint's body: origin, tree size, base64 root hash.
  function parseCheckpoint(body) {
    var lines = body.split("\n");
    if (lines.length < 4 || !/^[0-9]+$/.test(lines[1])) { throw new Error("the checkpoint's body is not origin, size and root"); }
    var root = fromBase64(lines[2]);
    if (root.length !== 32) { throw new Error("the checkpoint's root hash is not 32 bytes"); }
    return { origin: lines[0], size: Number(lines[1]), root: root };
  }

  async function ed25519(pub, msg, sig) {
    if (localStorage.getItem(FORCE_JS) !== "js") {
      try {
        var k = await crypto.subtle.importKey("raw", pub, { name: "Ed25519" }, false, ["verify"]);
        return { ok: await crypto.subtle.verify({ name: "Ed25519" }, k, sig, msg), how: "WebCrypto" };
      } catch (e) { /* no Ed25519 in this browser's WebCrypto */ }
    }
    return { ok: await window.TrailEd25519.verify(pub, msg, sig), how: "JavaScript" };
  }

  // The root an RFC 6962 inclusion proof leads to (RFC 9162, 2.1.3.2).
  async function rootFromProof(index, size, leaf, hashes) {
    if (index >= size) { throw new Error("index " + index + " is not below the tree size " + size); }
    var fn = index, sn = size - 1, r = leaf;
    for (var i = 0; i < hashes.length; i++) {
      var p = fromHex(hashes[i]);
      if (sn === 0) { throw new Error("the proof is longer than the tree allows"); }
      if (fn % 2 === 1 || fn === sn) {
        r = await sha256(concat([new Uint8Array([1]), p, r]));
        if (fn % 2 === 0) {
          while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
        }
      } else {
        r = await sha256(concat([new Uint8Array([1]), r, p]));
      }
      fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
    }
    if (sn !== 0) { throw new Error("the proof is shorter than the tree needs"); }
    return r;
  }

  // Whether an RFC 6962 consistency proof shows that the tree of size2
  // with root2 extends the tree of size1 with root1 (RFC 9162, 2.1.4.2).
  // It throws, saying why, when it does not.
  async function verifyConsistency(size1, size2, root1, root2, hashes) {
    var proof = hashes.map(fromHex);
    if (size1 > size2) { throw new Error("the log shrank: it had " + size1 + " events and now has " + size2); }
    if (size1 === size2) {
      if (proof.length !== 0) { throw new Error("a proof between two trees of the same size must be empty"); }
      if (!equal(root1, root2)) { throw new Error("the log has another root hash at the same size " + size1 + ": it was rewritten"); }
      return true;
    }
    if (size1 === 0) {
      if (proof.length !== 0) { throw new Error("a proof from the empty tree must be empty"); }
      return true;
    }
    if (proof.length === 0) { throw new Error("the consistency proof is empty"); }
    var fn = size1 - 1, sn = size2 - 1;
    while (fn % 2 === 1) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
    var start = 0, fr, sr;
    if (fn === 0) {
      fr = root1; sr = root1; // size1 is a power of two: its root is the proof's first node
    } else {
      fr = proof[0]; sr = proof[0]; start = 1;
    }
    for (var i = start; i < proof.length; i++) {
      var c = proof[i];
      if (sn === 0) { throw new Error("the consistency proof is longer than the trees allow"); }
      if (fn % 2 === 1 || fn === sn) {
        fr = await sha256(concat([new Uint8Array([1]), c, fr]));
        sr = await sha256(concat([new Uint8Array([1]), c, sr]));
        while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
      } else {
        sr = await sha256(concat([new Uint8Array([1]), sr, c]));
      }
      fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
    }
    if (sn !== 0) { throw new Error("the consistency proof is shorter than the trees need"); }
    if (!equal(fr, root1) || !equal(sr, root2)) {
      throw new Error("the log does not extend the checkpoint of " + size1 + " events this browser saw (the consistency proof does not connect its root hash to the latest one): it was rewritten, or the proof is false");
    }
    return true;
  }

  // checkSigned checks that a parsed signed note carries a valid signature
  // by key (a parsed verifier key) and says how it was checked.
  async function checkSigned(note, key) {
    var sig = note.sigs.find(function (s) { return s.name === key.name && s.hash === key.hash; });
    if (!sig) {
      throw new Error("the checkpoint carries no signature by the pinned key " + key.name + "+" + key.hash +
        " (it is signed by " + (note.sigs.map(function (s) { return s.name + "+" + s.hash; }).join(", ") || "nobody") + ")");
    }
    var sv = await ed25519(key.pub, note.text, sig.sig);
    if (!sv.ok) { throw new Error("the checkpoint's signature by " + key.name + " does not verify"); }
    return sv.how;
  }

  function pinned() {
    try { return JSON.parse(localStorage.getItem(PIN) || "null"); } catch (e) { return null; }
  }
  function pin(key, how) {
    localStorage.setItem(PIN, JSON.stringify({ key: key, how: how, when: new Date().toISOString() }));
  }

  window.TrailVerify = {
    parseVerifierKey: parseVerifierKey, parseNote: parseNote, parseCheckpoint: parseCheckpoint, checkSigned: checkSigned,
    rootFromProof: rootFromProof, verifyConsistency: verifyConsistency, pinned: pinned, pin: pin,
    hex: hex, fromHex: fromHex, equal: equal
  };

  // The event page.
  var section = document.getElementById("verify");
  if (!section) { return; }
  var statusEl = document.getElementById("verify-status");
  var stepsEl = document.getElementById("verify-steps");
  function showPin() {
    var p = pinned();
    document.getElementById("pinned-key").textContent = p ? p.key : "none";
    document.getElementById("pinned-when").textContent = p ? "(" + p.how + ", " + p.when.slice(0, 10) + ")" : "";
  }

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
  }
  function fail(why) {
    step(why.charAt(0).toUpperCase() + why.slice(1) + ".", false);
    verdict("fail", "Verification failed: " + why + ".");
  }

  var running = false;
  async function run() {
    if (running) { return; }
    running = true;
    stepsEl.textContent = "";
    verdict("pending", "Verifying in your browser…");
    try {
      await check();
    } catch (e) {
      fail(e.message || String(e));
    } finally {
      running = false;
      showPin();
    }
  }

  async function check() {
    var index = Number(section.dataset.index);
    var stored = enc.encode(document.getElementById("stored").textContent);
    var leaf = await sha256(concat([new Uint8Array([0]), stored]));
    step("Leaf hash of the stored bytes: " + hex(leaf));

    var p = pinned();
    if (!p) {
      pin(section.dataset.servedKey, "pinned on first use");
      p = pinned();
      step("No verifier key was pinned in this browser: pinned the server's key now. Compare it with the operator's checkpoint.vkey.");
    }
    var key = await parseVerifierKey(p.key);
    if (p.key !== section.dataset.servedKey) {
      step("This server now offers another verifier key than the one pinned; the pinned key is used.", false);
    }

    var cp, note, tries = 0;
    for (;;) {
      var resp = await fetch("/v1/checkpoint", { cache: "no-store", credentials: "same-origin" });
      if (!resp.ok) { throw new Error("the checkpoint could not be fetched (" + resp.status + ")"); }
      note = parseNote(new Uint8Array(await resp.arrayBuffer()));
      cp = parseCheckpoint(note.body);
      if (index < cp.size || ++tries > 10) { break; }
      step("The latest checkpoint covers " + cp.size + " events, not yet this one: waiting for the next.");
      await new Promise(function (ok) { setTimeout(ok, 1000); });
    }
    var how = await checkSigned(note, key);
    step("Checkpoint of " + cp.size + " events signed by the pinned key " + key.name + " (Ed25519, checked with " + how + ").");

    if (index >= cp.size) { throw new Error("no signed checkpoint covers event " + index + " yet; try again in a moment"); }
    var pr = await fetch("/ui/events/" + index + "/proof?size=" + cp.size,
      { cache: "no-store", credentials: "same-origin", headers: { "X-Trail-Background": "1" } });
    var proof = await pr.json();
    if (!pr.ok) { throw new Error("the inclusion proof was refused: " + (proof.detail || pr.status)); }
    if (proof.index !== index || proof.size !== cp.size) { throw new Error("the server answered a proof for another event or tree size"); }
    if (proof.leaf_hash !== hex(leaf)) {
      throw new Error("the stored bytes shown do not hash to the log's leaf at index " + index +
        " (computed " + hex(leaf).slice(0, 16) + "…, the log holds " + String(proof.leaf_hash).slice(0, 16) + "…)");
    }
    var root = await rootFromProof(index, cp.size, leaf, proof.hashes);
    if (!equal(root, cp.root)) { throw new Error("the inclusion proof does not lead to the checkpoint's root hash"); }
    step("Inclusion proof (" + proof.hashes.length + " hashes) leads to the checkpoint's root " + hex(cp.root).slice(0, 16) + "…");
    verdict("pass", "Verified: event " + index + " is unaltered and in the log signed by " + key.name + ".");
  }

  document.getElementById("verify-again").addEventListener("click", run);
  document.getElementById("pin-key").addEventListener("click", async function () {
    var field = document.getElementById("paste-key");
    var err = document.getElementById("paste-error");
    try {
      var k = await parseVerifierKey(field.value);
      pin(k.text, "pasted");
      field.removeAttribute("aria-invalid");
      err.textContent = "";
      field.value = "";
      run();
    } catch (e) {
      field.setAttribute("aria-invalid", "true");
      err.textContent = "That key cannot be pinned: " + e.message + ".";
    }
  });
  document.getElementById("forget-key").addEventListener("click", function () {
    localStorage.removeItem(PIN);
    showPin();
    verdict("pending", "The pinned key is forgotten. Verify again to pin the key this server offers, or paste one.");
  });
  window.TrailVerify.run = run;
  showPin();
  run();
})();
