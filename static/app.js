// DreamSeed Messenger — the JavaScript of the server-rendered pages: the live thread and
// list, the composer, and the connection state. Without it every page still works as
// plain HTML forms and links; live updates simply stop.
(function () {
  "use strict";

  var RUN_WINDOW_MS = 5 * 60 * 1000; // consecutive messages within 5 minutes share a name
  var BOTTOM_SLACK = 80; // px from the bottom that still counts as "at the bottom"
  var MAX_ROWS = 300; // rows kept in a thread before the oldest are pruned
  var KEEP_ROWS = 200;

  function $(sel, root) { return (root || document).querySelector(sel); }
  function $$(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }

  function csrfToken() {
    var meta = $('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  // Every htmx request carries the session's CSRF token in a header.
  document.addEventListener("htmx:config:request", function (evt) {
    var token = csrfToken();
    if (token && evt.detail && evt.detail.ctx && evt.detail.ctx.request) {
      evt.detail.ctx.request.headers["X-CSRF-Token"] = token;
    }
  });

  // fetchHTML asks the server for a fragment, as htmx would.
  function fetchHTML(url, options) {
    options = options || {};
    var headers = { "HX-Request": "true", "X-CSRF-Token": csrfToken(), "Accept": "text/html" };
    return fetch(url, {
      method: options.method || "GET",
      body: options.body,
      headers: Object.assign(headers, options.headers || {}),
      credentials: "same-origin",
    });
  }

  function parseFragment(html) {
    var tpl = document.createElement("template");
    tpl.innerHTML = html;
    return tpl.content;
  }

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  // ---------------------------------------------------------------- the open thread

  function thread() { return $("#thread"); }
  function scroller() { return $("#thread-scroll"); }
  function messageList() { return $("#messages"); }

  function atBottom() {
    var s = scroller();
    return !s || s.scrollHeight - s.scrollTop - s.clientHeight < BOTTOM_SLACK;
  }

  function scrollToBottom() {
    var s = scroller();
    if (s) s.scrollTop = s.scrollHeight;
    hidePill();
  }

  function rows() { return $$("#messages > li.msg"); }

  function lastSeq() {
    var all = rows(), max = 0;
    for (var i = 0; i < all.length; i++) max = Math.max(max, +all[i].dataset.seq);
    var t = thread();
    return Math.max(max, t ? +t.dataset.lastSeq || 0 : 0);
  }

  // shownThrough answers the seq up to which the thread has every message: the end of the
  // unbroken run of rows from the oldest shown, so that a catch-up starts at the first
  // hole, not after the newest row (a row that arrived after the hole would hide it).
  function shownThrough() {
    var all = rows(), t = thread();
    if (!all.length) return t ? +t.dataset.lastSeq || 0 : 0;
    var k = +all[0].dataset.seq;
    for (var i = 1; i < all.length; i++) {
      var seq = +all[i].dataset.seq;
      if (seq > k + 1) break;
      k = Math.max(k, seq);
    }
    return k;
  }

  function sameRun(a, b) {
    return a.dataset.kind !== "system" && b.dataset.kind !== "system" &&
      a.dataset.sender === b.dataset.sender && a.dataset.day === b.dataset.day &&
      +b.dataset.ts - +a.dataset.ts < RUN_WINDOW_MS;
  }

  function daySeparator(row) {
    var li = document.createElement("li");
    li.className = "day-sep my-3 flex items-center gap-3 text-xs text-slate-500";
    li.setAttribute("role", "separator");
    li.dataset.day = row.dataset.day;
    var line1 = document.createElement("span"), line2 = document.createElement("span"), time = document.createElement("time");
    line1.className = line2.className = "h-px flex-1 bg-slate-200";
    time.setAttribute("datetime", row.dataset.day);
    time.textContent = row.dataset.dayLabel || row.dataset.day;
    li.append(line1, time, line2);
    return li;
  }

  // relayout re-derives what depends on neighbours after rows came or went: one day
  // separator before the first message of each day, and runs of one sender within five
  // minutes (name and avatar on the first, time on the last) — the rules the server uses.
  function relayout() {
    var list = messageList();
    if (!list) return;
    $$(":scope > li.day-sep", list).forEach(function (sep) { sep.remove(); });
    var all = rows(), prev = null;
    for (var i = 0; i < all.length; i++) {
      var row = all[i];
      var newDay = !prev || prev.dataset.day !== row.dataset.day;
      if (newDay) list.insertBefore(daySeparator(row), row);
      var joined = !newDay && sameRun(prev, row);
      row.classList.toggle("run-start", !joined);
      if (prev) prev.classList.toggle("run-end", !joined);
      prev = row;
    }
    if (prev) prev.classList.add("run-end");
    var empty = $("#thread-empty");
    if (empty && all.length) empty.remove();
    var t = thread();
    if (t) t.dataset.lastSeq = String(lastSeq());
  }

  // placeRow puts a message row where its seq says, or replaces the row already shown
  // for that message: a message is never shown twice, whatever order it arrives in.
  function placeRow(row) {
    var list = messageList();
    if (!list || !row || !row.id) return;
    var existing = document.getElementById(row.id);
    if (existing) {
      row.classList.toggle("pending", false);
      existing.replaceWith(row);
      return;
    }
    var seq = +row.dataset.seq, all = rows();
    for (var i = all.length - 1; i >= 0; i--) {
      if (+all[i].dataset.seq < seq) {
        all[i].after(row);
        return;
      }
    }
    var older = $("#older", list);
    if (older) older.after(row); else list.prepend(row);
  }

  function placeRows(fragment) {
    $$("li.msg", fragment).forEach(placeRow);
  }

  // catchUp fetches what the open thread may have missed (after a gap, a reconnect or a
  // resync), from its first hole on, and places it; the server answers at most 200 rows a
  // time. Asked again while one is on its way, it runs once more after it: the answer on
  // its way may have been made before the newest hole.
  var catchingUp = null, catchUpAgain = false;
  function catchUp() {
    var t = thread();
    if (!t) return Promise.resolve();
    if (catchingUp) {
      catchUpAgain = true;
      return catchingUp;
    }
    catchingUp = (function more() {
      var from = shownThrough();
      return fetchHTML("/c/" + t.dataset.conversation + "/messages?after_seq=" + from).then(function (resp) {
        if (!resp.ok) throw new Error("catch up: " + resp.status);
        var hasMore = resp.headers.get("X-Has-More") === "1";
        return resp.text().then(function (html) {
          // Where the reader is now decides, not where they were when this was asked:
          // someone who scrolled up meanwhile stays where they are, with the pill.
          var stick = atBottom(), before = rows().length;
          placeRows(parseFragment(html));
          relayout();
          if (stick) scrollToBottom(); else if (rows().length > before) showPill();
          if (hasMore && shownThrough() > from) return more();
        });
      });
    })().finally(function () {
      catchingUp = null;
      if (catchUpAgain) {
        catchUpAgain = false;
        catchUp();
      }
    });
    return catchingUp;
  }

  function showPill() { var p = $("#new-pill"); if (p) p.hidden = false; }
  function hidePill() { var p = $("#new-pill"); if (p) p.hidden = true; }

  // Older messages load when the top is scrolled into view, without moving the view.
  var loadingOlder = false;
  function loadOlder() {
    var t = thread(), older = $("#older"), s = scroller();
    if (!t || !older || loadingOlder) return;
    loadingOlder = true;
    fetchHTML("/c/" + t.dataset.conversation + "/messages?before_seq=" + older.dataset.beforeSeq)
      .then(function (resp) {
        if (!resp.ok) throw new Error("older: " + resp.status);
        return resp.text();
      })
      .then(function (html) {
        var frag = parseFragment(html);
        var before = s.scrollHeight;
        var newOlder = $("#older", frag);
        older.remove();
        var first = $("#messages > li");
        $$("li.msg", frag).forEach(function (row) {
          if (!document.getElementById(row.id)) messageList().insertBefore(row, first);
        });
        if (newOlder) messageList().prepend(newOlder);
        relayout();
        s.scrollTop += s.scrollHeight - before;
        observeOlder();
      })
      .catch(function () { /* the link stays; scrolling again retries */ })
      .finally(function () { loadingOlder = false; });
  }

  var olderObserver = null;
  function observeOlder() {
    var older = $("#older");
    if (!older || !("IntersectionObserver" in window)) return;
    if (!olderObserver) {
      olderObserver = new IntersectionObserver(function (entries) {
        entries.forEach(function (e) { if (e.isIntersecting) loadOlder(); });
      }, { root: scroller(), rootMargin: "200px 0px 0px 0px" });
    }
    olderObserver.disconnect();
    olderObserver.observe(older);
  }

  // prune keeps a long-open thread light on a phone: at the bottom, rows beyond MAX_ROWS
  // leave the page, and the loader brings them back when scrolled to.
  function prune() {
    var all = rows();
    if (all.length <= MAX_ROWS || !atBottom()) return;
    var drop = all.slice(0, all.length - KEEP_ROWS);
    var keepFirst = all[all.length - KEEP_ROWS];
    drop.forEach(function (r) { r.remove(); });
    var older = $("#older");
    if (!older) {
      older = document.createElement("li");
      older.id = "older";
      older.className = "mb-3 text-center";
      var a = document.createElement("a");
      a.className = "text-sm text-teal-700 hover:underline";
      a.textContent = "…";
      older.append(a);
      messageList().prepend(older);
    }
    older.dataset.beforeSeq = keepFirst.dataset.seq;
    var link = $("a", older);
    if (link) link.href = "/c/" + thread().dataset.conversation + "?before_seq=" + keepFirst.dataset.seq;
    relayout();
    observeOlder();
  }

  // ---------------------------------------------------------------- the list

  function listRows() { return $("#conversation-rows"); }

  function unreadTotalHolder() { return $("[data-unread-total]"); }

  function setTitleCount(total) {
    var holder = unreadTotalHolder();
    if (holder) holder.dataset.unreadTotal = String(Math.max(0, total));
    var base = document.title.replace(/^\(\d+\+?\)\s*/, "");
    document.title = total > 0 ? "(" + (total > 99 ? "99+" : total) + ") " + base : base;
  }

  function bumpBadge(row, by) {
    var badge = $("[data-role=badge]", row);
    if (!badge) return;
    var n = Math.max(0, (+badge.dataset.unread || 0) + by);
    if (n > 0) badge.dataset.unread = String(n); else delete badge.dataset.unread;
    $("[data-role=count]", badge).textContent = n > 99 ? "99+" : String(n);
    badge.classList.toggle("hidden", n === 0);
    var holder = unreadTotalHolder();
    setTitleCount((holder ? +holder.dataset.unreadTotal || 0 : 0) + by);
  }

  // refreshList reloads the first page of the list from the server (the source of truth
  // for order and unread counts), keeping the open conversation highlighted.
  var refreshing = null, refreshAgain = false;
  function refreshList() {
    var ul = listRows(), nav = $("#conversation-list");
    if (!nav) return Promise.resolve();
    if (refreshing) {
      refreshAgain = true;
      return refreshing;
    }
    var t = thread();
    refreshing = fetchHTML("/conversations" + (t ? "?active=" + t.dataset.conversation : ""))
      .then(function (resp) { if (!resp.ok) throw new Error("list: " + resp.status); return resp.text(); })
      .then(function (html) {
        if (!ul) {
          ul = document.createElement("ul");
          ul.id = "conversation-rows";
          ul.className = "divide-y divide-slate-100";
          nav.replaceChildren(ul);
        }
        ul.innerHTML = html;
        if (window.htmx) htmx.process(ul);
        var total = 0;
        $$("[data-role=badge]", ul).forEach(function (b) { total += +b.dataset.unread || 0; });
        setTitleCount(total);
      })
      .catch(function () {})
      .finally(function () {
        refreshing = null;
        // A live update or another refresh came while this one was on its way: its
        // answer may be older than them and has just overwritten them, so ask again.
        if (refreshAgain) {
          refreshAgain = false;
          refreshList();
        }
      });
    return refreshing;
  }

  // touchListRow moves a conversation to the top with a message's preview and time; a
  // conversation not in the list yet makes the list reload.
  function touchListRow(convID, row, mine, seen) {
    var li = document.getElementById("conv-" + convID), ul = listRows();
    if (refreshing) refreshAgain = true;
    if (!li || !ul) { refreshList(); return; }
    var preview = $("[data-role=preview]", li);
    if (preview) {
      var text = row.dataset.preview || "";
      if (li.dataset.kind !== "direct" && row.dataset.kind !== "system") text = row.dataset.senderName + ": " + text;
      preview.textContent = text;
    }
    var time = $("[data-role=time]", li);
    if (time) time.textContent = row.dataset.timeLabel || "";
    if (!mine && !seen) bumpBadge(li, 1);
    if (ul.firstElementChild !== li) ul.prepend(li);
  }

  // ---------------------------------------------------------------- live events

  function onMessageNew(evt) {
    var frag = parseFragment(evt.detail.data || "");
    var tpl = $("template", frag);
    if (!tpl) return;
    var convID = tpl.dataset.conversation, mine = tpl.dataset.mine === "true";
    var row = $("li.msg", tpl.content);
    if (!row) return;
    var t = thread(), open = t && t.dataset.conversation === convID;
    var seen = false;
    if (open) {
      var stick = atBottom() || mine;
      placeRow(row.cloneNode(true));
      relayout();
      var gap = shownThrough() < lastSeq();
      seen = !document.hidden && stick;
      if (stick) scrollToBottom(); else if (!mine) showPill();
      if (gap) catchUp();
      prune();
    }
    touchListRow(convID, row, mine, seen);
  }

  function onConversationUpdated(evt) {
    var tpl = $("template", parseFragment(evt.detail.data || ""));
    refreshList();
    if (!tpl) return;
    var t = thread();
    if (!t || t.dataset.conversation !== tpl.dataset.conversation) return;
    switch (tpl.dataset.reason) {
      case "left": // in another tab of mine
        window.location.assign("/");
        break;
      case "removed":
        closeThread(t);
        break;
      default: // members, roles or the title changed
        refreshHeader(t);
    }
  }

  // closeThread replaces the thread of a conversation I was removed from with a notice:
  // nothing of it stays on screen, and nothing more can be sent.
  function closeThread(t) {
    var box = document.createElement("div");
    box.id = "thread-closed";
    box.setAttribute("role", "alert");
    box.className = "flex flex-1 flex-col items-center justify-center gap-2 p-8 text-center";
    var title = document.createElement("p");
    title.className = "font-semibold text-slate-700";
    title.textContent = t.dataset.removed;
    var sub = document.createElement("p");
    sub.className = "text-sm text-slate-500";
    sub.textContent = t.dataset.removedSub;
    var back = document.createElement("a");
    back.href = "/";
    back.className = "mt-2 text-sm text-teal-700 hover:underline";
    back.textContent = t.dataset.back;
    box.append(title, sub, back);
    t.replaceChildren(box);
    delete t.dataset.conversation;
    document.title = t.dataset.removed;
  }

  // refreshHeader reloads the thread's header (title, members, roles), keeping the member
  // panel open if it was.
  var headerLoading = null;
  function refreshHeader(t) {
    var convID = t.dataset.conversation;
    var panel = $("#members");
    var url = "/c/" + convID + "/header" + (panel && panel.open ? "?members=1" : "");
    var mine = headerLoading = fetchHTML(url).then(function (res) {
      if (!res.ok) throw new Error("header " + res.status);
      return res.text();
    }).then(function (html) {
      if (mine !== headerLoading) return;
      var fresh = $("header", parseFragment(html)), old = $("#thread-header");
      if (fresh && old && thread() === t) old.replaceWith(fresh);
    }).catch(function () { /* the next change or reload sets it right */ });
  }

  function onResync() {
    refreshList();
    catchUp();
  }

  document.addEventListener("message.new", onMessageNew);
  document.addEventListener("conversation.updated", onConversationUpdated);
  document.addEventListener("resync", onResync);

  // ---------------------------------------------------------------- connection state

  // stream is hx-sse's connection of the live stream (it comes with the htmx:sse:*
  // events); streaming says whether it is connected right now.
  var stream = null, streaming = false, everConnected = false, lostShown = false, backTimer = null;

  function statusBox() { return $("#conn-status"); }

  function showStatus(text) {
    var box = statusBox();
    if (!box) return;
    clearTimeout(backTimer);
    $("span", box).textContent = text;
    box.classList.remove("hidden");
    box.classList.add("flex");
  }

  function hideStatus() {
    var box = statusBox();
    if (!box) return;
    box.classList.add("hidden");
    box.classList.remove("flex");
  }

  function connectionLost() {
    if (lostShown || document.hidden) return;
    lostShown = true;
    var box = statusBox();
    if (box) showStatus(box.dataset.lost);
  }

  document.addEventListener("htmx:sse:after:connection", function (evt) {
    stream = (evt.detail && evt.detail.connection) || stream;
    streaming = true;
    // What was published before this connection took over comes from the server: after
    // a reconnect, whatever was missed meanwhile; after the first connection, the
    // messages of the open thread sent between rendering the page and connecting, which
    // no stream carries. (The list's rows of that moment are only set right by the next
    // reconnect; the server rendering the stream position into the page, for the first
    // connection to resume from, would close that gap too.)
    if (everConnected) refreshList();
    everConnected = true;
    catchUp();
    if (lostShown) {
      lostShown = false;
      var box = statusBox();
      if (box) {
        showStatus(box.dataset.back);
        backTimer = setTimeout(hideStatus, 2500);
      }
    }
  });
  document.addEventListener("htmx:sse:before:connection", function (evt) {
    var c = evt.detail && evt.detail.connection;
    if (c) stream = c;
    if (c && c.attempt > 0) {
      streaming = false;
      connectionLost();
    }
  });
  document.addEventListener("htmx:sse:error", function () {
    streaming = false;
    connectionLost();
  });
  document.addEventListener("htmx:sse:close", function () {
    stream = null;
    streaming = false;
  });
  window.addEventListener("offline", connectionLost);

  // Back online: reconnect now, not at the end of the backoff (which grows to a minute).
  // A stream that still looks connected may have died with the network unnoticed, or
  // survived it: it is reconnected too, resuming from its last event id, so the banner
  // ends either way. (delayCanceller and reader are hx-sse 4.0.1's fields of the
  // connection; without them the backoff simply runs its course.)
  window.addEventListener("online", function () {
    if (!stream) return;
    if (typeof stream.delayCanceller === "function") stream.delayCanceller();
    else if (streaming && stream.reader && typeof stream.reader.cancel === "function") stream.reader.cancel();
  });

  // ---------------------------------------------------------------- the stream's end

  // The server ends the live stream for good with stream.closed {"reason"} (hx-sse:close
  // stops reconnecting): "replaced" when this user's newest window took it over, which a
  // button takes back (a reload); "session_replaced" when this browser signed in again
  // (the page's CSRF token is stale: a reload); "signed_out" or "expired" when the
  // session ended, which only a new sign-in mends: the page then keeps nothing of the
  // conversations on screen and makes no more requests. A reconnect refused with 401
  // (signed out while disconnected) ends the same way, instead of retrying for ever.
  function streamEnded(reason) {
    hideStatus();
    var live = $("#live");
    if (live) live.remove(); // hx-sse stops with its element
    var moved = reason === "replaced" || reason === "session_replaced";
    var box = moved ? $("#stream-replaced") : $("#signed-out");
    if (!box) return;
    if (reason === "session_replaced") {
      $("span", box).textContent = box.dataset.sessionText;
      $("button", box).textContent = box.dataset.sessionAction;
    }
    if (!moved) {
      if (reason === "expired" && box.dataset.expired) $("#signed-out-title", box).textContent = box.dataset.expired;
      document.body.replaceChildren(box);
      document.title = $("#signed-out-title", box).textContent;
    }
    box.classList.remove("hidden");
    box.classList.add("flex");
    var action = $("a, button", box);
    if (action) action.focus();
  }

  document.addEventListener("stream.closed", function (evt) {
    var reason = "";
    try { reason = JSON.parse((evt.detail && evt.detail.data) || "{}").reason || ""; } catch (e) { /* none */ }
    streamEnded(reason);
  });
  document.addEventListener("htmx:sse:error", function (evt) {
    if (evt.detail && evt.detail.status === 401) streamEnded("signed_out");
  });
  document.addEventListener("click", function (e) {
    if (e.target.closest && e.target.closest("#stream-replaced [data-action=reconnect]")) window.location.reload();
  });

  // ---------------------------------------------------------------- the composer

  function setupComposer() {
    var form = $("#composer-form");
    if (!form) return;
    var textarea = $("#composer", form), button = $("#composer-send", form);
    var idInput = form.querySelector('input[name="client_msg_id"]');
    var errorBox = $("#composer-error"), errorText = $("#composer-error-text"), retry = $("#composer-retry");
    var draftKey = "draft:" + form.action;
    var pending = null; // {id, body} of a send that failed: a retry reuses its id

    function grow() {
      textarea.style.height = "auto";
      textarea.style.height = Math.min(textarea.scrollHeight + 2, 144) + "px";
    }
    function showError(text, canRetry) {
      errorText.textContent = text;
      retry.classList.toggle("hidden", !canRetry);
      errorBox.classList.remove("hidden");
    }
    function clearError() { errorBox.classList.add("hidden"); }
    function sending(on) {
      button.disabled = on;
      $(".spinner", button).classList.toggle("hidden", !on);
      form.setAttribute("aria-busy", on ? "true" : "false");
    }

    try {
      var saved = sessionStorage.getItem(draftKey);
      if (saved && !textarea.value) textarea.value = saved;
    } catch (e) {}
    grow();

    textarea.addEventListener("input", function () {
      grow();
      if (!pending) clearError();
      try { sessionStorage.setItem(draftKey, textarea.value); } catch (e) {}
    });

    // Enter sends, Shift+Enter is a new line, and Enter that confirms a Korean IME
    // composition only confirms it.
    textarea.addEventListener("keydown", function (e) {
      if (e.key !== "Enter" || e.shiftKey || e.altKey || e.isComposing || e.keyCode === 229) return;
      e.preventDefault();
      form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit", { cancelable: true }));
    });

    function send(body, id) {
      sending(true);
      var data = new URLSearchParams();
      data.set("body", body);
      data.set("client_msg_id", id);
      data.set("csrf_token", csrfToken());
      return fetchHTML(form.action, {
        method: "POST",
        body: data,
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
      }).then(function (resp) {
        if (resp.ok) {
          return resp.text().then(function (html) {
            pending = null;
            clearError();
            if (textarea.value === body) {
              textarea.value = "";
              try { sessionStorage.removeItem(draftKey); } catch (e) {}
              grow();
            }
            idInput.value = uuid();
            placeRows(parseFragment(html));
            relayout();
            scrollToBottom();
          });
        }
        if (resp.status >= 400 && resp.status < 500 && resp.status !== 408 && resp.status !== 429) {
          pending = null; // the server refused this text: retrying would not help
          idInput.value = uuid();
          showError(resp.status === 400 && body.length > 4000 ? form.dataset.msgTooLong : form.dataset.msgFailed, false);
          return;
        }
        if (resp.status === 429) {
          // Too fast: nothing was stored; the text stays, and a retry (same id) may follow.
          pending = { id: id, body: body };
          showError(form.dataset.msgRateLimited, true);
          return;
        }
        throw new Error("send: " + resp.status);
      }).catch(function () {
        pending = { id: id, body: body };
        showError(form.dataset.msgFailed, true);
      }).finally(function () { sending(false); textarea.focus(); });
    }

    form.addEventListener("submit", function (e) {
      e.preventDefault();
      if (button.disabled) return;
      var body = textarea.value;
      if (!body.trim()) { showError(form.dataset.msgEmpty, false); return; }
      if (body.length > 4000) { showError(form.dataset.msgTooLong, false); return; }
      var id = pending && pending.body === body ? pending.id : idInput.value;
      send(body, id);
    });

    retry.addEventListener("click", function () {
      if (pending) send(pending.body, pending.id);
    });
  }

  // ---------------------------------------------------------------- page start

  // awareness.js adjusts badges when a conversation is read in another tab.
  window.DreamSeed = { bumpBadge: bumpBadge };

  function start() {
    var t = thread();
    if (t) {
      var target = location.hash && document.getElementById(location.hash.slice(1));
      if (target && target.classList.contains("msg")) target.scrollIntoView({ block: "center" });
      else scrollToBottom();
      // A reader at the bottom stays there when the thread's box shrinks: a phone turned,
      // its keyboard opened, the composer grew a line.
      var stuck = atBottom();
      scroller().addEventListener("scroll", function () {
        stuck = atBottom();
        if (stuck) hidePill();
      }, { passive: true });
      if ("ResizeObserver" in window) new ResizeObserver(function () { if (stuck) scrollToBottom(); }).observe(scroller());
      var pill = $("#new-pill");
      if (pill) pill.addEventListener("click", scrollToBottom);
      observeOlder();
    }
    setupComposer();
    // Forms that ask first (leave, remove a member), also in parts loaded later.
    document.addEventListener("submit", function (e) {
      var f = e.target;
      if (f.matches && f.matches("form[data-confirm]") && !window.confirm(f.dataset.confirm)) e.preventDefault();
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
