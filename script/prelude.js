// Latchkey hook runtime: the web APIs a hook may use, built on the Go
// helpers in __lk (which this prelude hides once it has run).
(function (lk) {
  "use strict";
  const g = globalThis;

  // The classes are made on first use: most hooks use none, and a fresh
  // runtime per run should not pay for them.
  const make = {};
  const made = {};
  const $ = (name) => made[name] || (made[name] = make[name]());
  make.TextEncoder = () => class TextEncoder {
    get encoding() { return "utf-8"; }
    encode(s) { return new Uint8Array(lk.utf8encode(s === undefined ? "" : String(s))); }
  }
  make.TextDecoder = () => class TextDecoder {
    get encoding() { return "utf-8"; }
    decode(b) { return b === undefined ? "" : lk.utf8decode(b); }
  }

  function formEncode(s) {
    return encodeURIComponent(s).replace(/%20/g, "+").replace(/[!'()~]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
  }
  function formDecode(s) {
    try { return decodeURIComponent(s.replace(/\+/g, " ")); } catch (e) { return s; }
  }

  make.URLSearchParams = () => class URLSearchParams {
    constructor(init) {
      this._list = [];
      this._url = null;
      if (init === undefined || init === null) return;
      if (typeof init === "string") {
        this._parse(init);
      } else if (init instanceof URLSearchParams) {
        this._list = init._list.map((p) => [p[0], p[1]]);
      } else if (Array.isArray(init)) {
        for (const p of init) this._list.push([String(p[0]), String(p[1])]);
      } else if (typeof init === "object") {
        for (const k of Object.keys(init)) this._list.push([k, String(init[k])]);
      }
    }
    _parse(s) {
      this._list = [];
      if (s.startsWith("?")) s = s.slice(1);
      for (const part of s.split("&")) {
        if (part === "") continue;
        const i = part.indexOf("=");
        const k = i < 0 ? part : part.slice(0, i);
        const v = i < 0 ? "" : part.slice(i + 1);
        this._list.push([formDecode(k), formDecode(v)]);
      }
    }
    _update() { if (this._url) { const s = this.toString(); this._url._search = s === "" ? "" : "?" + s; } }
    append(k, v) { this._list.push([String(k), String(v)]); this._update(); }
    delete(k) { k = String(k); this._list = this._list.filter((p) => p[0] !== k); this._update(); }
    get(k) { k = String(k); const p = this._list.find((p) => p[0] === k); return p ? p[1] : null; }
    getAll(k) { k = String(k); return this._list.filter((p) => p[0] === k).map((p) => p[1]); }
    has(k) { k = String(k); return this._list.some((p) => p[0] === k); }
    set(k, v) {
      k = String(k); v = String(v);
      const i = this._list.findIndex((p) => p[0] === k);
      if (i < 0) { this._list.push([k, v]); } else {
        this._list[i][1] = v;
        this._list = this._list.filter((p, j) => j <= i || p[0] !== k);
      }
      this._update();
    }
    sort() { this._list.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)); this._update(); }
    forEach(fn, thisArg) { for (const p of this._list) fn.call(thisArg, p[1], p[0], this); }
    keys() { return this._list.map((p) => p[0])[Symbol.iterator](); }
    values() { return this._list.map((p) => p[1])[Symbol.iterator](); }
    entries() { return this._list.map((p) => [p[0], p[1]])[Symbol.iterator](); }
    [Symbol.iterator]() { return this.entries(); }
    get size() { return this._list.length; }
    toString() { return this._list.map((p) => formEncode(p[0]) + "=" + formEncode(p[1])).join("&"); }
  }

  make.URL = () => class URL {
    constructor(url, base) {
      const u = lk.parseURL(String(url), base === undefined ? "" : String(base));
      this._protocol = u.protocol; this._username = u.username; this._password = u.password;
      this._hostname = u.hostname; this._port = u.port; this._pathname = u.pathname;
      this._search = u.search; this._hash = u.hash; this._opaque = u.opaque;
      this._params = new ($("URLSearchParams"))(this._search);
      this._params._url = this;
    }
    static canParse(url, base) { try { new URL(url, base); return true; } catch (e) { return false; } }
    get protocol() { return this._protocol; }
    set protocol(v) { v = String(v); this._protocol = v.endsWith(":") ? v : v + ":"; }
    get username() { return this._username; }
    set username(v) { this._username = String(v); }
    get password() { return this._password; }
    set password(v) { this._password = String(v); }
    get hostname() { return this._hostname; }
    set hostname(v) { this._hostname = String(v); }
    get port() { return this._port; }
    set port(v) { this._port = String(v); }
    get host() { return this._hostname + (this._port ? ":" + this._port : ""); }
    set host(v) { v = String(v); const i = v.lastIndexOf(":"); if (i > 0 && v.indexOf("]", i) < 0) { this._hostname = v.slice(0, i); this._port = v.slice(i + 1); } else { this._hostname = v; this._port = ""; } }
    get origin() { return this._protocol === "http:" || this._protocol === "https:" ? this._protocol + "//" + this.host : "null"; }
    get pathname() { return this._pathname; }
    set pathname(v) { v = String(v); this._pathname = v.startsWith("/") ? v : "/" + v; }
    get search() { return this._search === "?" ? "" : this._search; }
    set search(v) { v = String(v); this._search = v === "" || v === "?" ? "" : v.startsWith("?") ? v : "?" + v; this._params._parse(this._search); }
    get searchParams() { return this._params; }
    get hash() { return this._hash === "#" ? "" : this._hash; }
    set hash(v) { v = String(v); this._hash = v === "" ? "" : v.startsWith("#") ? v : "#" + v; }
    get href() {
      if (this._opaque) return this._protocol + this._opaque + this.search + this.hash;
      const auth = this._username ? this._username + (this._password ? ":" + this._password : "") + "@" : "";
      return this._protocol + "//" + auth + this.host + this._pathname + this.search + this.hash;
    }
    set href(v) { const u = new URL(v); Object.assign(this, u); this._params = u._params; this._params._url = this; }
    toString() { return this.href; }
    toJSON() { return this.href; }
  }

  const timers = {
    setTimeout(fn, ms, ...args) { return lk.timer(fn, ms, args, false); },
    setInterval(fn, ms, ...args) { return lk.timer(fn, ms, args, true); },
    clearTimeout(id) { lk.clearTimer(id); },
    clearInterval(id) { lk.clearTimer(id); },
  };

  make.Headers = () => class Headers {
    constructor(init) {
      this._map = {};
      if (init instanceof Headers) { for (const k of Object.keys(init._map)) this._map[k] = init._map[k]; }
      else if (Array.isArray(init)) { for (const p of init) this.append(p[0], p[1]); }
      else if (init && typeof init === "object") { for (const k of Object.keys(init)) this.append(k, init[k]); }
    }
    append(k, v) { k = String(k).toLowerCase(); v = String(v); this._map[k] = k in this._map ? this._map[k] + ", " + v : v; }
    set(k, v) { this._map[String(k).toLowerCase()] = String(v); }
    get(k) { k = String(k).toLowerCase(); return k in this._map ? this._map[k] : null; }
    has(k) { return String(k).toLowerCase() in this._map; }
    delete(k) { delete this._map[String(k).toLowerCase()]; }
    forEach(fn, thisArg) { for (const k of Object.keys(this._map).sort()) fn.call(thisArg, this._map[k], k, this); }
    keys() { return Object.keys(this._map).sort()[Symbol.iterator](); }
    values() { return Object.keys(this._map).sort().map((k) => this._map[k])[Symbol.iterator](); }
    entries() { return Object.keys(this._map).sort().map((k) => [k, this._map[k]])[Symbol.iterator](); }
    [Symbol.iterator]() { return this.entries(); }
  }

  make.Response = () => class Response {
    constructor(r) {
      this.status = r.status;
      this.statusText = r.statusText;
      this.ok = r.status >= 200 && r.status <= 299;
      this.url = r.url;
      this.redirected = false;
      this.headers = new ($("Headers"))(r.headers);
      this._body = r.body; // an ArrayBuffer
      this.bodyUsed = false;
    }
    _take() {
      if (this.bodyUsed) return Promise.reject(new TypeError("Body has already been consumed."));
      this.bodyUsed = true;
      return Promise.resolve(this._body);
    }
    arrayBuffer() { return this._take(); }
    text() { return this._take().then((b) => lk.utf8decode(b)); }
    json() { return this.text().then((t) => JSON.parse(t)); }
  }

  function fetch(input, init) {
    try {
      init = init || {};
      const url = input instanceof $("URL") ? input.href : typeof input === "object" && input && input.url ? String(input.url) : String(input);
      const method = String(init.method || "GET").toUpperCase();
      const headers = new ($("Headers"))(init.headers);
      let body = init.body;
      if (body instanceof $("URLSearchParams")) {
        if (!headers.has("content-type")) headers.set("content-type", "application/x-www-form-urlencoded;charset=UTF-8");
        body = body.toString();
      }
      if (body !== undefined && body !== null && typeof body === "string" && !headers.has("content-type")) {
        headers.set("content-type", "text/plain;charset=UTF-8");
      }
      return lk.fetch(url, method, headers._map, body === undefined ? null : body).then((r) => new ($("Response"))(r));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  const crypto = {
    randomUUID() { return lk.randomUUID(); },
    getRandomValues(a) { lk.randomFill(a); return a; },
  };

  const defs = { fetch, crypto, console: lk.console };
  Object.assign(defs, timers);
  for (const k of Object.keys(defs)) {
    Object.defineProperty(g, k, { value: defs[k], writable: true, configurable: true, enumerable: false });
  }
  for (const k of Object.keys(make)) {
    const fix = (v) => Object.defineProperty(g, k, { value: v, writable: true, configurable: true, enumerable: false });
    Object.defineProperty(g, k, { get() { const v = $(k); fix(v); return v; }, set: fix, configurable: true, enumerable: false });
  }
})(__lk);
delete globalThis.__lk;
