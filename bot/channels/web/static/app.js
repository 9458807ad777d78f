/* The web chat: no framework, no cookies, no third-party request. The conversation lives in this
   tab (sessionStorage) under an anonymous random session id. Replies arrive as a tree of plain data
   (see render.py) and are built with DOM calls: no HTML is ever parsed here. */
(function () {
  "use strict";
  var KEY = "kyr-chat", LANGS = ["en", "pt", "es", "ht"], TAGS = { b: 1, i: 1, u: 1, s: 1, code: 1, pre: 1, blockquote: 1, mark: 1 };
  var $ = function (id) { return document.getElementById(id); };
  var log = $("log"), form = $("ask"), q = $("q"), notice = $("notice"), words = null, busy = false;

  function newId() {
    var b = new Uint8Array(16); crypto.getRandomValues(b);
    return btoa(String.fromCharCode.apply(null, b)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function load() {
    try { var s = JSON.parse(sessionStorage.getItem(KEY)); if (s && s.sid) return s; } catch (e) { /* a fresh start */ }
    return { sid: newId(), chosen: null, items: [] };
  }
  var state = load();
  function save() {
    state.items = state.items.slice(-200);
    try { sessionStorage.setItem(KEY, JSON.stringify(state)); } catch (e) { /* storage full or off: the page still works */ }
  }
  function browserLang() {
    var tags = navigator.languages || [navigator.language || "en"];
    for (var i = 0; i < tags.length; i++) { var p = String(tags[i]).toLowerCase().split("-")[0]; if (LANGS.indexOf(p) >= 0) return p; }
    return "en";
  }
  function uiLang() { return state.chosen || browserLang(); }

  function applyWords() {
    if (!words) return;
    var w = words[uiLang()] || words.en;
    document.documentElement.lang = uiLang();
    document.title = w.title;
    document.querySelectorAll("[data-s]").forEach(function (el) { el.textContent = w[el.getAttribute("data-s")]; });
    $("exit").title = w.exit_hint; $("exit").setAttribute("aria-label", w.exit_hint);
    log.setAttribute("aria-label", w.log); q.placeholder = w.input;
    document.querySelector("nav").setAttribute("aria-label", w.menu);
  }
  function say(key, text) {
    notice.textContent = text || (words && (words[uiLang()] || words.en)[key]) || key;
    notice.hidden = false;
  }

  function build(nodes, parent) {
    (nodes || []).forEach(function (n) {
      if (typeof n === "string") { parent.appendChild(document.createTextNode(n)); return; }
      var el;
      if (n[0] === "a") {
        var href = String((n[1] || {}).href || "");
        if (!/^(https?:|tel:|mailto:)/i.test(href)) { build(n[2], parent); return; }
        el = document.createElement("a"); el.href = href; el.rel = "noopener noreferrer"; el.target = "_blank";
        build(n[2], el);
      } else {
        el = document.createElement(TAGS[n[0]] ? n[0] : "span");
        build(n[1], el);
      }
      parent.appendChild(el);
    });
  }
  function sr(key) {
    var s = document.createElement("span"); s.className = "sr";
    s.textContent = words ? (words[uiLang()] || words.en)[key] + " " : ""; return s;
  }
  function fill(li, item) {
    li.textContent = "";
    li.className = item.who;
    li.appendChild(sr(item.who === "me" ? "you" : "bot"));
    if (item.who === "me") li.appendChild(document.createTextNode(item.text));
    else build(item.text, li);
    if (item.buttons && item.buttons.length) {
      var box = document.createElement("div"); box.className = "choices";
      item.buttons.forEach(function (row) {
        var r = document.createElement("div");
        row.forEach(function (b) {
          var btn = document.createElement("button"); btn.type = "button"; btn.textContent = b.label;
          btn.addEventListener("click", function () { press(b, li); });
          r.appendChild(btn);
        });
        box.appendChild(r);
      });
      li.appendChild(box);
    }
  }
  function add(item) { var li = document.createElement("li"); fill(li, item); log.appendChild(li); return li; }
  function render() { log.textContent = ""; state.items.forEach(add); var m = document.querySelector("main"); m.scrollTop = m.scrollHeight; }
  function indexOf(li) { return Array.prototype.indexOf.call(log.children, li); }
  function scroll(el) { el.scrollIntoView({ block: "nearest" }); }

  function post(payload, shown, from, done) {
    if (busy) return;
    busy = true; notice.hidden = true; $("send").disabled = true;
    payload.session = state.sid; payload.lang = navigator.language || "";
    fetch("/web/api/message", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(payload), credentials: "omit", cache: "no-store", referrerPolicy: "no-referrer" })
      .then(function (r) { return r.json().then(function (d) { return { ok: r.ok, d: d }; }); })
      .then(function (res) {
        if (!res.ok) { say(res.d.error || "offline", res.d.message); return; }
        var data = res.d, first = null;
        if (shown) { state.items.push({ who: "me", text: shown }); add(state.items[state.items.length - 1]); }
        if (data.forgotten) { state.sid = newId(); state.chosen = null; state.items = []; log.textContent = ""; }
        data.replies.forEach(function (r) {
          var item = { who: "bot", text: r.text, buttons: r.buttons }, at = from ? indexOf(from) : -1, li;
          if (r.replace && at >= 0 && !data.forgotten) { state.items[at] = item; fill(from, item); li = from; from = null; }
          else { state.items.push(item); li = add(item); }
          first = first || li;
        });
        if (data.chosen && data.chosen !== state.chosen) { state.chosen = data.chosen; applyWords(); }
        save();
        if (done) done();
        if (first) { scroll(first); if (payload.button) { first.tabIndex = -1; first.focus({ preventScroll: true }); } }
      })
      .catch(function () { say("offline"); })
      .then(function () { busy = false; $("send").disabled = false; });
  }
  function press(b, li) { post({ button: b.data }, b.label, li); }

  function quickExit() {
    try { sessionStorage.clear(); } catch (e) { /* nothing to clear */ }
    state = { sid: newId(), chosen: null, items: [] };
    log.textContent = ""; q.value = "";
    var url = document.body.getAttribute("data-exit") || "https://www.google.com/";
    try { if (window.top !== window.self) { window.top.location.replace(url); return; } } catch (e) { /* cross-origin parent */ }
    window.location.replace(url);
  }

  $("exit").addEventListener("click", quickExit);
  document.addEventListener("keydown", function (e) { if (e.key === "Escape" || e.key === "Esc") { e.preventDefault(); quickExit(); } });
  $("emergency").addEventListener("click", function () { post({ button: "a:emergency-contacts@" + uiLang() }, this.textContent.trim()); });
  $("menu").addEventListener("click", function () { post({ button: "m@" + uiLang() }, this.textContent.trim()); });
  $("language").addEventListener("click", function () { post({ button: "lp@" + uiLang() }, this.textContent.trim()); });
  $("forget").addEventListener("click", function () { post({ text: "/forget" }, this.textContent.trim()); });
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = q.value.trim();
    if (!text) return;
    post({ text: text }, text, null, function () { q.value = ""; q.focus(); });
  });
  q.addEventListener("keydown", function (e) { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); } });

  fetch("/web/strings.json", { credentials: "omit" }).then(function (r) { return r.json(); })
    .then(function (w) { words = w; applyWords(); render(); }).catch(function () { /* the page's own words stay */ });
  render();
  if (!state.items.length) post({ text: "/start" }, null);
})();
