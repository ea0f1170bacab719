// Ed25519 signature verification (RFC 8032, section 5.1.7) in plain
// JavaScript with BigInt, for browsers whose WebCrypto has no Ed25519.
// It only verifies public signatures, so it holds no secret and need not
// run in constant time. Like Go's crypto/ed25519 it is cofactorless and
// compares the encoding of [S]B - [k]A with R's bytes.
"use strict";
(function (global) {
  var P = (1n << 255n) - 19n;
  var L = (1n << 252n) + 27742317777372353535851937790883648493n;

  function mod(a, m) {
    m = m || P;
    var r = a % m;
    return r >= 0n ? r : r + m;
  }
  function pow(b, e) {
    var r = 1n;
    b = mod(b);
    while (e > 0n) {
      if (e & 1n) { r = (r * b) % P; }
      b = (b * b) % P;
      e >>= 1n;
    }
    return r;
  }
  function inv(a) { return pow(a, P - 2n); }

  var D = mod(-121665n * inv(121666n));
  var SQRT_M1 = pow(2n, (P - 1n) / 4n);

  // Points in extended coordinates [X, Y, Z, T], x = X/Z, y = Y/Z, xy = T/Z.
  function add(p, q) {
    var a = mod((p[1] - p[0]) * (q[1] - q[0]));
    var b = mod((p[1] + p[0]) * (q[1] + q[0]));
    var c = mod(2n * p[3] * q[3] * D);
    var d = mod(2n * p[2] * q[2]);
    var e = b - a, f = d - c, g = d + c, h = b + a;
    return [mod(e * f), mod(g * h), mod(f * g), mod(e * h)];
  }
  function mul(s, p) {
    var q = [0n, 1n, 1n, 0n];
    while (s > 0n) {
      if (s & 1n) { q = add(q, p); }
      p = add(p, p);
      s >>= 1n;
    }
    return q;
  }
  function neg(p) { return [mod(-p[0]), p[1], p[2], mod(-p[3])]; }

  function littleEndian(bytes) {
    var n = 0n;
    for (var i = bytes.length - 1; i >= 0; i--) { n = (n << 8n) | BigInt(bytes[i]); }
    return n;
  }
  function encode(p) {
    var zi = inv(p[2]);
    var x = mod(p[0] * zi), y = mod(p[1] * zi);
    var out = new Uint8Array(32);
    for (var i = 0; i < 32; i++) { out[i] = Number((y >> BigInt(8 * i)) & 255n); }
    if (x & 1n) { out[31] |= 0x80; }
    return out;
  }
  function recoverX(y, sign) {
    if (y >= P) { return null; }
    var x2 = mod((y * y - 1n) * inv(D * y * y + 1n));
    if (x2 === 0n) { return sign ? null : 0n; }
    var x = pow(x2, (P + 3n) / 8n);
    if (mod(x * x - x2) !== 0n) { x = mod(x * SQRT_M1); }
    if (mod(x * x - x2) !== 0n) { return null; }
    if (Number(x & 1n) !== sign) { x = P - x; }
    return x;
  }
  function decode(bytes) {
    var b = bytes.slice();
    var sign = b[31] >> 7;
    b[31] &= 0x7f;
    var y = littleEndian(b);
    var x = recoverX(y, sign);
    if (x === null) { return null; }
    return [x, y, 1n, mod(x * y)];
  }
  var B = (function () {
    var y = mod(4n * inv(5n));
    var x = recoverX(y, 0);
    return [x, y, 1n, mod(x * y)];
  })();

  function concat(parts) {
    var n = 0, i;
    for (i = 0; i < parts.length; i++) { n += parts[i].length; }
    var out = new Uint8Array(n), off = 0;
    for (i = 0; i < parts.length; i++) { out.set(parts[i], off); off += parts[i].length; }
    return out;
  }

  // verify resolves to whether sig (64 bytes) is pub's (32 bytes)
  // signature of msg (Uint8Arrays).
  async function verify(pub, msg, sig) {
    if (pub.length !== 32 || sig.length !== 64) { return false; }
    var A = decode(pub);
    if (A === null) { return false; }
    var S = littleEndian(sig.slice(32));
    if (S >= L) { return false; }
    var h = new Uint8Array(await crypto.subtle.digest("SHA-512", concat([sig.slice(0, 32), pub, msg])));
    var k = mod(littleEndian(h), L);
    var R = encode(add(mul(S, B), neg(mul(k, A))));
    for (var i = 0; i < 32; i++) {
      if (R[i] !== sig[i]) { return false; }
    }
    return true;
  }

  global.TrailEd25519 = { verify: verify };
})(window);
