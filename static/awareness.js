// DreamSeed Messenger — live awareness: read markers (✓ / ✓✓ / "3명이 읽음" and the count
// of members who have not read, worded here only), marking the thread read when it is
// actually seen, typing indicators, and presence dots. It listens to the same live events
// as app.js, after it.
(function () {
  "use strict";

  var TYPING_SEND_EVERY = 1000; // at most one typing signal a second
  var TYPING_SHOWN_FOR = 3000; // an indicator lapses 3 s after the last signal

  function $(sel, root) { return (root || document).querySelector(sel); }
  function $$(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }
  function thread() { return $("#thread"); }
  function template(evt) {
    var tpl = document.createElement("template");
    tpl.innerHTML = (evt.detail && evt.detail.data) || "";
    return $("template", tpl.content);
  }
  function csrfToken() {
    var meta = $('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }
  function post(url, fields) {
    var body = new URLSearchParams(fields);
    body.set("csrf_token", csrfToken());
    return fetch(url, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "HX-Request": "true", "X-CSRF-Token": csrfToken() },
    });
  }

  // ---------------------------------------------------------------- read markers

  function marks() {
    var t = thread();
    if (!t) return {};
    try { return JSON.parse(t.dataset.marks || "{}") || {}; } catch (e) { return {}; }
  }

  function badge(n) { return n > 99 ? "99+" : String(n); }

  // renderReadMarkers words the read markers of every row from the members' watermarks
  // (the thread's data-marks, which the server read and each receipt raises): in a direct
  // conversation ✓ (sent) or ✓✓ (read) on my messages; in a group "N명이 읽음" on mine and,
  // on every message, how many members have not read it yet. Only here: the server leaves
  // these markers empty (views.ReadLabel).
  function renderReadMarkers() {
    var t = thread();
    if (!t) return;
    // A zone's announcements: the page has only my own watermark, and the counts are the
    // server's (views.ReadLabel), as rendered.
    if (t.dataset.kind === "announcement") return;
    var m = marks(), me = t.dataset.me, direct = t.dataset.kind === "direct";
    var subs = Object.keys(m), label = t.dataset.readLabel || "%d";
    $$("#messages > li.msg").forEach(function (row) {
      var readEl = $(".msg-read", row), unreadEl = $(".msg-unread", row);
      if (!readEl || !unreadEl) return;
      var seq = +row.dataset.seq, sender = row.dataset.sender, read = 0, unread = 0;
      if (row.dataset.kind === "system") return;
      for (var i = 0; i < subs.length; i++) {
        if (subs[i] === sender) continue;
        if (m[subs[i]] >= seq) read++; else unread++;
      }
      var mine = sender === me, readText = "", unreadText = "";
      if (direct) {
        if (mine) readText = read > 0 ? "✓✓" : "✓";
      } else {
        if (unread > 0) unreadText = badge(unread);
        if (mine && read > 0) readText = label.replace("%d", read);
      }
      if (readEl.textContent !== readText) readEl.textContent = readText;
      var srEl = $(".msg-sr-read", row);
      if (srEl) {
        var said = "";
        if (direct) {
          if (mine) said = ", " + (read > 0 ? t.dataset.srRead : t.dataset.srSent);
        } else {
          if (mine && read > 0) said += ", " + (t.dataset.srReadCount || "%d").replace("%d", read);
          if (unread > 0) said += ", " + (t.dataset.srUnread || "%d").replace("%d", unread);
        }
        if (srEl.textContent !== said) srEl.textContent = said;
      }
      if (unreadEl.textContent !== unreadText) unreadEl.textContent = unreadText;
    });
  }

  var renderQueued = false;
  function queueRender() {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(function () { renderQueued = false; renderReadMarkers(); markSeen(); });
  }

  function raiseMark(sub, seq) {
    var one = {};
    one[sub] = seq;
    raiseMarks(one);
  }

  // raiseMarks raises the watermarks of got (portal id -> seq) that are higher than the
  // thread's: they never go down, whatever order receipts come in.
  function raiseMarks(got) {
    var t = thread();
    if (!t) return;
    var m = marks(), raised = false;
    Object.keys(got).forEach(function (sub) {
      var seq = +got[sub];
      if (!(sub in m) || m[sub] < seq) { m[sub] = seq; raised = true; }
    });
    if (raised) {
      t.dataset.marks = JSON.stringify(m);
      queueRender();
    }
  }

  // ---------------------------------------------------------------- marking read

  var lastMarked = 0, markTimer = null;

  // seenSeq is the newest message actually in view: the tab visible, the window focused.
  function seenSeq() {
    var t = thread(), s = $("#thread-scroll");
    if (!t || !s || document.hidden || !document.hasFocus()) return 0;
    var bottom = s.getBoundingClientRect().bottom, rows = $$("#messages > li.msg");
    for (var i = rows.length - 1; i >= 0; i--) {
      var r = rows[i].getBoundingClientRect();
      if (r.bottom <= bottom + 2 && r.bottom > 0) return +rows[i].dataset.seq;
    }
    return 0;
  }

  function listStale() { document.dispatchEvent(new CustomEvent("list-stale")); }

  // markRead tells the server the newest message in view; once it has, my unread counts
  // changed and the list asks for itself again. It answers whether it marked anything.
  function markRead() {
    var t = thread(), seq = seenSeq();
    if (!t || seq <= lastMarked || seq <= (marks()[t.dataset.me] || 0)) return Promise.resolve(false);
    lastMarked = seq;
    return post("/c/" + t.dataset.conversation + "/read", { seq: String(seq) })
      .then(function (resp) {
        if (!resp.ok) throw new Error("read: " + resp.status);
        listStale();
        return true;
      })
      .catch(function () { lastMarked = 0; return false; });
  }

  function markSeen() {
    clearTimeout(markTimer);
    markTimer = setTimeout(markRead, 250);
  }

  // app.js marks a message seen as it arrives at once: the list is asked for after it.
  window.DreamSeed = window.DreamSeed || {};
  window.DreamSeed.markSeenNow = function () {
    clearTimeout(markTimer);
    return markRead();
  };

  // A receipt of mine from another tab changes my unread counts: the list asks the server
  // for itself again (this tab's own marks do so when the server has them).
  document.addEventListener("message.read_receipt", function (evt) {
    var tpl = template(evt);
    if (!tpl) return;
    var t = thread(), seq = +tpl.dataset.seq, here = t && t.dataset.conversation === tpl.dataset.conversation;
    if (here) raiseMark(tpl.dataset.reader, seq);
    if (tpl.dataset.mine === "true" && !(here && seq <= lastMarked)) listStale();
  });

  // A group's watermarks that rose within the server's coalescing interval, in one event
  // (data-marks: portal id -> watermark). My own rises came to me at once as
  // message.read_receipt, which keeps the list; these only raise the markers.
  document.addEventListener("message.read_receipts", function (evt) {
    var tpl = template(evt), t = thread();
    if (!tpl || !t || t.dataset.conversation !== tpl.dataset.conversation) return;
    var got;
    try { got = JSON.parse(tpl.dataset.marks || "{}") || {}; } catch (e) { return; }
    raiseMarks(got);
  });

  // ---------------------------------------------------------------- typing

  var typers = {}; // conversation id -> { sub: {name, timer} }
  var lastTypingSaid = "";

  // fill puts the names (%s) and the number (%d) into a translated template in one pass:
  // a replacement function's answer is taken as it is, so a name holding $&, $` or $' (the
  // patterns of a replacement string) or %s shows as written.
  function fill(template, names, n) {
    var i = 0;
    return template.replace(/%[sd]/g, function (p) { return p === "%d" ? String(n) : names[i++]; });
  }

  function typingText(names) {
    var el = $("#typing");
    if (!el || !names.length) return "";
    if (names.length === 1) return fill(el.dataset.one, names);
    if (names.length === 2) return fill(el.dataset.two, names);
    return fill(el.dataset.many, names, names.length - 1);
  }

  function showTyping(convID) {
    var names = Object.keys(typers[convID] || {}).map(function (s) { return typers[convID][s].name; });
    var text = typingText(names);
    var t = thread();
    if (t && t.dataset.conversation === convID) {
      $("#typing").textContent = text;
      // Said once when someone starts typing (or who types changes), not on each signal.
      if (text && text !== lastTypingSaid && window.DreamSeed && window.DreamSeed.announce) window.DreamSeed.announce(text);
      lastTypingSaid = text;
    }
    var li = document.getElementById("conv-" + convID), preview = li && $("[data-role=preview]", li);
    if (!preview) return;
    if (text) {
      if (!preview.classList.contains("typing")) preview.dataset.saved = preview.innerHTML;
      preview.classList.add("typing", "text-teal-700");
      preview.textContent = text;
    } else if (preview.classList.contains("typing")) {
      preview.classList.remove("typing", "text-teal-700");
      preview.innerHTML = preview.dataset.saved || "";
    }
  }

  function stopTyping(convID, sub) {
    var conv = typers[convID];
    if (!conv || !conv[sub]) return;
    clearTimeout(conv[sub].timer);
    delete conv[sub];
    showTyping(convID);
  }

  document.addEventListener("message.typing", function (evt) {
    var tpl = template(evt);
    if (!tpl) return;
    var convID = tpl.dataset.conversation, sub = tpl.dataset.user;
    if (tpl.dataset.typing !== "true") { stopTyping(convID, sub); return; }
    var conv = typers[convID] = typers[convID] || {};
    if (conv[sub]) clearTimeout(conv[sub].timer);
    conv[sub] = { name: tpl.dataset.name, timer: setTimeout(function () { stopTyping(convID, sub); }, TYPING_SHOWN_FOR) };
    showTyping(convID);
  });

  // A message from someone ends their typing at once.
  document.addEventListener("message.new", function (evt) {
    var tpl = template(evt);
    if (!tpl) return;
    var row = $("li.msg", tpl.content), convID = tpl.dataset.conversation;
    if (row) stopTyping(convID, row.dataset.sender);
    if (row && tpl.dataset.mine === "true") raiseMark(row.dataset.sender, +tpl.dataset.seq);
    queueRender();
  });

  // The list the server sent again has its previews back: whoever still types shows there.
  document.addEventListener("htmx:after:swap", function (evt) {
    if (evt.target && evt.target.id === "conversation-list") Object.keys(typers).forEach(showTyping);
  });

  function setupTypingSignal() {
    var t = thread(), textarea = $("#composer"), form = $("#composer-form");
    if (!t || !textarea || !form) return;
    var url = "/c/" + t.dataset.conversation + "/typing", lastSent = 0, announced = false;
    textarea.addEventListener("input", function () {
      var now = Date.now();
      if (textarea.value.trim()) {
        if (now - lastSent >= TYPING_SEND_EVERY) {
          lastSent = now;
          announced = true;
          post(url, { typing: "1" }).catch(function () {});
        }
      } else if (announced) {
        announced = false;
        lastSent = 0;
        post(url, { typing: "0" }).catch(function () {});
      }
    });
    form.addEventListener("submit", function () { announced = false; lastSent = 0; });
  }

  // ---------------------------------------------------------------- presence

  document.addEventListener("presence", function (evt) {
    var tpl = template(evt);
    if (!tpl) return;
    var sub = tpl.dataset.user, online = tpl.dataset.online === "true";
    $$('[data-presence="' + CSS.escape(sub) + '"]').forEach(function (dot) {
      dot.classList.toggle("online", online);
      dot.classList.toggle("bg-emerald-500", online);
      dot.classList.toggle("bg-slate-300", !online);
    });
    $$('[data-last-seen="' + CSS.escape(sub) + '"]').forEach(function (el) {
      el.textContent = tpl.dataset.label ? "· " + tpl.dataset.label : "";
    });
  });

  // ---------------------------------------------------------------- start

  function start() {
    var list = $("#messages");
    if (list && "MutationObserver" in window) {
      new MutationObserver(queueRender).observe(list, { childList: true });
    }
    var s = $("#thread-scroll");
    if (s) s.addEventListener("scroll", markSeen, { passive: true });
    window.addEventListener("focus", markSeen);
    document.addEventListener("visibilitychange", markSeen);
    setupTypingSignal();
    // The markers of the rows the page came with, before it is first painted.
    renderReadMarkers();
    queueRender();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
