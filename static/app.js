// DreamSeed Messenger — the JavaScript of the server-rendered pages: the live thread and
// list, the composer, and the connection state. Without it every page still works as
// plain HTML forms and links; live updates simply stop.
(function () {
  "use strict";

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

  // ---------------------------------------------------------------- the announcer

  // #announcer is the page's one polite live region, visually hidden: new messages of
  // the open thread from others ("김선영: 안녕하세요"), the typing indicator and the
  // connection banner are said there once. Messages that come within a moment of each
  // other are gathered: more than ANNOUNCE_EACH become one "새 메시지 12개".
  var ANNOUNCE_EACH = 3, ANNOUNCE_GATHER_MS = 400;
  var heard = [], heardTimer = null, heardIDs = {};

  // announce says text: each announcement is a line added to the region (a screen reader
  // reads what was added, so one said just before is not cut off or repeated), which
  // leaves it again after a while.
  function announce(text) {
    var box = $("#announcer");
    if (!box || !text) return;
    var line = document.createElement("p");
    line.textContent = text;
    box.appendChild(line);
    while (box.children.length > 5) box.removeChild(box.firstElementChild);
    setTimeout(function () { if (line.parentNode) line.remove(); }, 15000);
  }

  // spoken answers what is said of a message row: "sender: body", a short text for a
  // file, the notice of a system message.
  function spoken(row) {
    var box = $("#announcer"), name = $(".msg-name", row), text = "";
    if (row.dataset.kind === "system") return ($("div", row) || row).textContent.trim();
    if (row.dataset.kind === "file") text = box ? box.dataset.file : "";
    else {
      var bubble = $(".bubble-them, .bubble-me", row);
      text = bubble ? bubble.textContent.trim() : "";
    }
    if (text.length > 300) text = text.slice(0, 300) + "…";
    return name ? name.textContent.trim() + ": " + text : text;
  }

  // heardRows queues rows that just came into the open thread to be announced; rows of
  // mine are never said, nor a row said before.
  function heardRows(list) {
    var me = thread() && thread().dataset.me;
    list.forEach(function (row) {
      if (!row || !row.id || heardIDs[row.id] || row.dataset.sender === me) return;
      heardIDs[row.id] = true;
      heard.push(row);
    });
    if (!heard.length || heardTimer) return;
    heardTimer = setTimeout(function () {
      var rowsHeard = heard, box = $("#announcer");
      heard = [];
      heardTimer = null;
      if (rowsHeard.length > ANNOUNCE_EACH) {
        announce(box ? box.dataset.many.replace("%d", rowsHeard.length) : "");
      } else {
        announce(rowsHeard.map(spoken).join("\n"));
      }
    }, ANNOUNCE_GATHER_MS);
  }

  window.DreamSeed = window.DreamSeed || {};
  window.DreamSeed.announce = announce;

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

  // The day separators are the server's: every answer with rows (a page, a live row, a
  // catch-up) has one before the first row of each of its days. They are kept by day and
  // put before the first row of their day wherever rows came or went; no label is
  // worded here.
  var separators = {};
  function keepSeparators(root) {
    $$("li.day-sep", root).forEach(function (sep) {
      if (!separators[sep.dataset.day]) separators[sep.dataset.day] = sep;
    });
  }

  // relayout re-derives what depends on neighbours after rows came or went: the day
  // separator before the first message of each day, and the runs (name and avatar on the
  // first row, time on the last). Whether a message continues the run of the one before it
  // is the server's (messenger.JoinsRun, the row's data-joins); here it is only applied: a
  // row starts a run unless it joins and the row before it is the message just before it
  // (a hole or a pruned row starts one), and ends one unless the next row joins it.
  function relayout() {
    var list = messageList();
    if (!list) return;
    keepSeparators(list);
    $$(":scope > li.day-sep", list).forEach(function (sep) { sep.remove(); });
    var all = rows(), prev = null;
    for (var i = 0; i < all.length; i++) {
      var row = all[i];
      if ((!prev || prev.dataset.day !== row.dataset.day) && separators[row.dataset.day]) {
        list.insertBefore(separators[row.dataset.day], row);
      }
      var joined = !!prev && row.dataset.joins === "1" && +prev.dataset.seq === +row.dataset.seq - 1;
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
    keepSeparators(fragment);
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
          var frag = parseFragment(html);
          var fresh = $$("li.msg", frag).filter(function (row) { return !document.getElementById(row.id); });
          placeRows(frag);
          heardRows(fresh.map(function (row) { return document.getElementById(row.id); }));
          relayout();
          sweepUploads();
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
    }).catch(function () {
      // Offline or refused: the stream's reconnect (or the next gap) catches up again.
    });
    return catchingUp;
  }

  function showPill() { var p = $("#new-pill"); if (p) p.hidden = false; }
  function hidePill() { var p = $("#new-pill"); if (p) p.hidden = true; }

  // Older messages load when the top is scrolled into view, without moving the view. The
  // keyboard's focus on the link (Tab scrolls it into view, which loads) moves to the next
  // one, or to the thread once none is left, rather than falling to the page.
  var loadingOlder = false;
  function loadOlder() {
    var t = thread(), older = $("#older"), s = scroller();
    if (!t || !older || loadingOlder) return Promise.resolve();
    loadingOlder = true;
    return fetchHTML("/c/" + t.dataset.conversation + "/messages?before_seq=" + older.dataset.beforeSeq)
      .then(function (resp) {
        if (!resp.ok) throw new Error("older: " + resp.status);
        return resp.text();
      })
      .then(function (html) {
        var frag = parseFragment(html);
        keepSeparators(frag);
        var before = s.scrollHeight;
        var newOlder = $("#older", frag);
        var focused = older.contains(document.activeElement);
        older.remove();
        var first = $("#messages > li");
        $$("li.msg", frag).forEach(function (row) {
          if (!document.getElementById(row.id)) messageList().insertBefore(row, first);
        });
        if (newOlder) messageList().prepend(newOlder);
        relayout();
        s.scrollTop += s.scrollHeight - before;
        if (focused) {
          var link = $("#older a");
          if (link) link.focus(); else s.focus();
        }
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
    var older = $("#older"), tpl = $("#older-template");
    if (!older && tpl) {
      // The loader the server renders above a page with older messages (views.OlderLoader).
      older = tpl.content.firstElementChild.cloneNode(true);
      messageList().prepend(older);
    }
    if (older) {
      older.dataset.beforeSeq = keepFirst.dataset.seq;
      var link = $("a", older);
      if (link) link.href = "/c/" + thread().dataset.conversation + "?before_seq=" + keepFirst.dataset.seq;
    }
    relayout();
    observeOlder();
  }

  // ---------------------------------------------------------------- the list

  // The list is the server's: its nav fetches GET /fragments/list with htmx on the events
  // that change it (views.ListStaleTrigger), and on "list-stale", fired here when a new
  // message arrives or the stream reconnects (and by awareness.js when a read of mine
  // lands). Order, previews, times and unread counts are never worked out here.
  function listRows() { return $("#conversation-rows"); }

  function listStale() { document.dispatchEvent(new CustomEvent("list-stale")); }

  // The page title counts my unread messages as the list the server sent does (push.js
  // reads the same total from the page's data-unread-total).
  function setTitleCount(total) {
    var holder = $("[data-unread-total]");
    if (holder) holder.dataset.unreadTotal = String(Math.max(0, total));
    var base = document.title.replace(/^\(\d+\+?\)\s*/, "");
    document.title = total > 0 ? "(" + (total > 99 ? "99+" : total) + ") " + base : base;
  }

  document.addEventListener("htmx:after:swap", function (evt) {
    if (!evt.target || evt.target.id !== "conversation-list") return;
    var ul = listRows();
    setTitleCount(ul ? +ul.dataset.unreadTotal || 0 : 0);
  });

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
      keepSeparators(tpl.content);
      var placed = row.cloneNode(true), existed = !!document.getElementById(row.id);
      placeRow(placed);
      relayout();
      if (!mine && !existed) heardRows([placed]);
      if (mine && row.dataset.clientMsgId) settled(row.dataset.clientMsgId);
      var gap = shownThrough() < lastSeq();
      seen = !document.hidden && stick;
      if (stick) scrollToBottom(); else if (!mine) showPill();
      if (gap) catchUp();
      prune();
    }
    // Someone else's message read as it arrives is marked read first, so that the list
    // the server answers next does not count it (marking it makes the list stale).
    var aware = window.DreamSeed;
    if (seen && !mine && aware && aware.markSeenNow) aware.markSeenNow().then(function (marked) { if (!marked) listStale(); });
    else listStale();
  }

  // The list refreshes itself on conversation.updated; the open thread follows here.
  function onConversationUpdated(evt) {
    var tpl = $("template", parseFragment(evt.detail.data || ""));
    var t = thread();
    if (!tpl || !t || t.dataset.conversation !== tpl.dataset.conversation) return;
    switch (tpl.dataset.reason) {
      case "left": // in another tab of mine
        window.location.assign("/");
        break;
      case "removed":
        closeThread(t);
        break;
      default: // members, roles or the title changed: the header fetches itself again
        document.dispatchEvent(new CustomEvent("header-stale"));
    }
  }

  // The header comes back with its member panel open if it is.
  document.addEventListener("htmx:config:request", function (evt) {
    var ctx = evt.detail && evt.detail.ctx, panel = $("#members");
    if (ctx && ctx.sourceElement && ctx.sourceElement.id === "thread-header" && panel && panel.open && ctx.request.body) {
      ctx.request.body.set("members", "1");
    }
  });

  // closeThread replaces the thread of a conversation I was removed from with the notice
  // the server rendered for it (views.ThreadClosed).
  function closeThread(t) {
    var tpl = $("#thread-closed-template", t), box = tpl && tpl.content.firstElementChild;
    if (!box) return;
    box = box.cloneNode(true);
    t.replaceChildren(box);
    delete t.dataset.conversation;
    document.title = $("p", box).textContent;
  }

  document.addEventListener("message.new", onMessageNew);
  document.addEventListener("conversation.updated", onConversationUpdated);
  document.addEventListener("resync", function () { catchUp(); });

  // ---------------------------------------------------------------- connection state

  // stream is hx-sse's connection of the live stream (it comes with the htmx:sse:*
  // events); streaming says whether it is connected right now.
  var stream = null, streaming = false, everConnected = false, lostShown = false, backTimer = null;
  // movingOn: the server ended the stream for its shutdown and asked for a reconnect.
  var movingOn = false;

  function statusBox() { return $("#conn-status"); }

  function showStatus(text) {
    var box = statusBox();
    if (!box) return;
    clearTimeout(backTimer);
    $("span", box).textContent = text;
    announce(text);
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
    movingOn = false;
    // What was published before this connection took over comes from the server: after
    // a reconnect, whatever was missed meanwhile; after the first connection, the
    // messages of the open thread sent between rendering the page and connecting, which
    // no stream carries. (The list's rows of that moment are only set right by the next
    // reconnect; the server rendering the stream position into the page, for the first
    // connection to resume from, would close that gap too.)
    if (everConnected) listStale();
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
      if (movingOn && c.attempt === 1) return; // the server asked for this reconnect
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

  // A tab hidden for long (#live's data-hidden-close-ms, the server's
  // MESSENGER_STREAM_HIDDEN_CLOSE, 5 minutes) closes its live stream: a tab forgotten in
  // the background neither keeps its user online nor holds a connection. Shown again, the
  // stream opens where it left off (last_event_id: the server sends what came meanwhile)
  // and the page catches up as after any reconnect. hx-sse's own pause (which closes at
  // once on every hide) is off on #live, so a short look elsewhere costs nothing.
  // (hx-sse stops with its element, and a new element is a new connection: hence the
  // element is taken out and a fresh one put back.)
  var hiddenTimer = null, parkedLive = null;

  function parkStream() {
    hiddenTimer = null;
    var live = $("#live");
    if (!document.hidden || !live) return;
    var conn = (live._htmx && live._htmx.sse) || stream;
    var id = (conn && conn.lastEventId) || live.dataset.lastEventId || "";
    parkedLive = { parent: live.parentNode, next: live.nextSibling, html: live.outerHTML, lastEventId: id };
    live.remove();
    // Removed from the page, hx-sse ends the connection at its next step; this ends it now.
    if (conn) {
      if (conn.reader && typeof conn.reader.cancel === "function") conn.reader.cancel();
      if (conn.abortController && typeof conn.abortController.abort === "function") conn.abortController.abort();
      if (typeof conn.delayCanceller === "function") conn.delayCanceller();
    }
  }

  function unparkStream() {
    var p = parkedLive;
    parkedLive = null;
    if (!p || $("#live") || !p.parent.isConnected) return;
    var holder = document.createElement("div");
    holder.innerHTML = p.html;
    var live = holder.firstElementChild;
    var url = (live.getAttribute("hx-sse:connect") || "/events").split("?")[0];
    if (p.lastEventId) {
      url += "?last_event_id=" + encodeURIComponent(p.lastEventId);
      live.dataset.lastEventId = p.lastEventId;
    }
    live.setAttribute("hx-sse:connect", url);
    live.removeAttribute("data-htmx-powered");
    p.parent.insertBefore(live, p.next && p.next.parentNode === p.parent ? p.next : null);
    if (window.htmx) htmx.process(live);
  }

  document.addEventListener("visibilitychange", function () {
    clearTimeout(hiddenTimer);
    hiddenTimer = null;
    if (!document.hidden) {
      unparkStream();
      return;
    }
    var live = $("#live");
    var after = live ? +live.dataset.hiddenCloseMs || 0 : 0;
    if (after > 0) hiddenTimer = setTimeout(parkStream, after);
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

  // "shutdown" is the one reason that reconnects: the server process is stopping, and the
  // event's retry field says when to come back (to another process, or this one's
  // successor), resuming from the event's id. hx-sse closes on stream.closed only while
  // #live names it in hx-sse:close, read just after this listener: it is taken off for
  // this one event, and the reconnect that follows shows no "connection lost".
  document.addEventListener("stream.closed", function (evt) {
    var reason = "";
    try { reason = JSON.parse((evt.detail && evt.detail.data) || "{}").reason || ""; } catch (e) { /* none */ }
    if (reason === "shutdown") {
      var live = evt.target;
      if (live && live.getAttribute && live.hasAttribute("hx-sse:close")) {
        var close = live.getAttribute("hx-sse:close");
        live.removeAttribute("hx-sse:close");
        setTimeout(function () { live.setAttribute("hx-sse:close", close); }, 0);
      }
      movingOn = true;
      return;
    }
    streamEnded(reason);
  });
  document.addEventListener("htmx:sse:error", function (evt) {
    if (evt.detail && evt.detail.status === 401) streamEnded("signed_out");
  });
  document.addEventListener("click", function (e) {
    if (e.target.closest && e.target.closest("#stream-replaced [data-action=reconnect]")) window.location.reload();
  });

  // ---------------------------------------------------------------- files

  // The words of the attach flow, in the page's language (the composer's data-upload-text).
  var TEXT = {};
  function tt(key) {
    var s = TEXT[key] || "", args = Array.prototype.slice.call(arguments, 1);
    return s.replace(/%[sd]/g, function () { return args.length ? String(args.shift()) : ""; });
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }

  function humanSize(n) {
    var sep = document.documentElement.lang === "en" ? " " : "", units = ["B", "KB", "MB", "GB"], v = n, u = 0;
    while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
    if (u === 0) return n + sep + "B";
    return (v < 10 ? String(Math.round(v * 10) / 10) : String(Math.round(v))) + sep + units[u];
  }

  // accepted reads the composer's data-accept (the server's list, as the file chooser's
  // accept attribute has it: ".pdf" names an extension, "image/png" a type) into a test of a
  // chosen file. It is only an early word to the user: the server decides by content.
  function accepted(list) {
    var exts = [], types = [];
    (list || "").split(",").forEach(function (a) {
      a = a.trim().toLowerCase();
      if (a.charAt(0) === ".") exts.push(a); else if (a) types.push(a);
    });
    return function (f) {
      var name = f.name.toLowerCase();
      return types.indexOf(f.type) >= 0 || exts.some(function (x) { return name.slice(-x.length) === x; });
    };
  }
  var HEIC = /\.(heic|heif)$|^image\/hei[cf]/i;
  var DOC_LOOK = [
    [/\.pdf$/i, "PDF", "bg-rose-600"], [/\.docx?$/i, "DOC", "bg-blue-600"], [/\.xlsx?$/i, "XLS", "bg-emerald-700"],
    [/\.pptx?$/i, "PPT", "bg-orange-700"], [/\.hwpx?$/i, "HWP", "bg-sky-700"], [/\.txt$/i, "TXT", "bg-slate-500"],
  ];

  function isImageFile(f) { return /^image\/(png|jpeg|webp|gif)$/.test(f.type); }

  function docIcon(name) {
    var look = ["FILE", "bg-slate-500"];
    for (var i = 0; i < DOC_LOOK.length; i++) if (DOC_LOOK[i][0].test(name)) { look = DOC_LOOK[i].slice(1); break; }
    var icon = el("span", "relative inline-flex h-11 w-9 shrink-0 items-end justify-center rounded-md pb-1 text-[9px] font-bold tracking-wide text-white shadow-sm " + look[1], look[0]);
    icon.setAttribute("aria-hidden", "true");
    return icon;
  }

  // previews keeps the local pictures of my uploads (object URLs by client_msg_id), so a
  // pending bubble the server renders again still shows them.
  var previews = {};

  function applyPreviews(li) {
    var urls = previews[li.dataset.clientMsgId];
    if (!urls) return;
    $$(".upload-file", li).forEach(function (row) {
      var url = urls[+row.dataset.index], thumb = $(".upload-thumb", row);
      if (!url || !thumb || $("img", thumb)) return;
      var img = el("img", "h-full w-full object-cover");
      img.src = url;
      img.alt = "";
      thumb.replaceChildren(img);
    });
  }

  function dropPreviews(clientMsgID) {
    (previews[clientMsgID] || []).forEach(function (u) { if (u) URL.revokeObjectURL(u); });
    delete previews[clientMsgID];
  }

  function uploadBubbles() { return $$("#uploads > li.upload"); }

  function bubbleFor(clientMsgID) {
    var all = uploadBubbles();
    for (var i = 0; i < all.length; i++) if (all[i].dataset.clientMsgId === clientMsgID) return all[i];
    return null;
  }

  function rowFor(clientMsgID) {
    var all = rows();
    for (var i = 0; i < all.length; i++) if (all[i].dataset.clientMsgId === clientMsgID) return all[i];
    return null;
  }

  // settled: the upload is a message now (its row is shown): its bubble goes.
  function settled(clientMsgID) {
    var b = bubbleFor(clientMsgID);
    if (b) b.remove();
    dropPreviews(clientMsgID);
  }

  // An upload's states only move on: scanning, then clean, infected or failed, then
  // dismissed. Their events can come the other way round (the process that took the upload
  // tells "scanning", whichever process ran its job tells the result), so a state behind
  // the one this page knows is dropped. endedUploads remembers the uploads that ended here
  // (their bubble may be gone): by client_msg_id, which names one upload for good.
  var uploadRank = { scanning: 0, clean: 1, infected: 1, failed: 1 };
  var endedUploads = {};

  function uploadBehind(id, state, dismissed) {
    var rank = dismissed ? 2 : (uploadRank[state] || 0);
    var known = endedUploads[id] || 0;
    var shown = bubbleFor(id);
    if (shown && shown.dataset.sending !== "true") known = Math.max(known, uploadRank[shown.dataset.state] || 0);
    if (rank < known) return true;
    if (rank > 0) endedUploads[id] = rank;
    return false;
  }

  // putBubble shows the server's rendering of one of my uploads in place of whatever
  // bubble of it is shown (my own sending one, or an older state).
  function putBubble(li) {
    var list = $("#uploads");
    if (!list || !li) return;
    var id = li.dataset.clientMsgId;
    if (uploadBehind(id, li.dataset.state, false)) return;
    if (li.dataset.state === "clean" || rowFor(id)) {
      settled(id);
      if (!rowFor(id)) catchUp();
      return;
    }
    applyPreviews(li);
    var empty = $("#thread-empty");
    if (empty) empty.remove();
    var old = document.getElementById(li.id) || bubbleFor(id);
    if (old && old.dataset.sending === "true") old.dataset.replaced = "true";
    if (old) old.replaceWith(li); else list.append(li);
  }

  // sweepUploads removes the bubbles of uploads whose message is shown now.
  function sweepUploads() {
    uploadBubbles().forEach(function (b) { if (rowFor(b.dataset.clientMsgId)) settled(b.dataset.clientMsgId); });
  }

  function onUploadUpdated(evt) {
    var tpl = $("template", parseFragment(evt.detail.data || ""));
    var t = thread();
    if (!tpl || !t || t.dataset.conversation !== tpl.dataset.conversation) return;
    if (tpl.hasAttribute("data-dismissed")) {
      uploadBehind(tpl.dataset.clientMsgId, tpl.dataset.state, true);
      settled(tpl.dataset.clientMsgId);
      return;
    }
    var stick = atBottom();
    putBubble($("li.upload", tpl.content));
    if (stick) scrollToBottom();
  }

  // A message changed in place (a file deleted): its row is the server's new rendering;
  // the list refreshes itself on message.updated.
  function onMessageUpdated(evt) {
    var tpl = $("template", parseFragment(evt.detail.data || ""));
    if (!tpl) return;
    var row = $("li.msg", tpl.content), t = thread();
    if (row && t && t.dataset.conversation === tpl.dataset.conversation && document.getElementById(row.id)) {
      placeRow(row.cloneNode(true));
      relayout();
    }
  }

  document.addEventListener("upload.updated", onUploadUpdated);
  document.addEventListener("message.updated", onMessageUpdated);

  // ------------------------------------------------ attaching and sending files

  function setupAttach(form, ui) {
    var attach = $("#composer-attach"), input = $("#composer-files"), tray = $("#composer-tray");
    if (!attach || !input || !tray || !window.XMLHttpRequest || !window.Blob) return null;
    try { TEXT = JSON.parse(form.dataset.uploadText || "{}"); } catch (e) { TEXT = {}; }
    var maxBytes = +form.dataset.maxBytes, maxFiles = +form.dataset.maxFiles, allowed = accepted(form.dataset.accept);
    var chosen = []; // {file, url}
    var chosenID = null; // the client_msg_id of files brought back by a cancel

    // With JavaScript, the attach button and the tray replace the plain file field.
    var plain = $("#composer-nojs-files");
    if (plain) plain.hidden = true;
    attach.hidden = false;
    attach.addEventListener("click", function () { input.click(); });
    input.addEventListener("change", function () {
      add(input.files);
      input.value = "";
    });

    function problem(f) {
      if (HEIC.test(f.name) || HEIC.test(f.type)) return tt("attach.heic", f.name);
      if (!allowed(f)) return tt("attach.type", f.name);
      if (f.size > maxBytes) return tt("attach.too_large", f.name, TEXT.max);
      if (f.size === 0) return tt("attach.empty", f.name);
      return "";
    }

    function add(files) {
      var problems = [];
      chosenID = null; // other files: another upload
      Array.prototype.forEach.call(files || [], function (f) {
        var p = problem(f);
        if (p) { problems.push(p); return; }
        if (chosen.length >= maxFiles) {
          if (problems.indexOf(tt("attach.too_many", maxFiles)) < 0) problems.push(tt("attach.too_many", maxFiles));
          return;
        }
        chosen.push({ file: f, url: isImageFile(f) ? URL.createObjectURL(f) : null });
      });
      if (problems.length) ui.showError(problems.join(" "), false); else ui.clearError();
      render();
      ui.textarea.focus();
    }

    function remove(i) {
      var c = chosen.splice(i, 1)[0];
      if (c && c.url) URL.revokeObjectURL(c.url);
      chosenID = null;
      render();
      ui.textarea.focus();
    }

    function render() {
      tray.replaceChildren();
      chosen.forEach(function (c, i) {
        var li = el("li", "relative shrink-0");
        if (c.url) {
          var img = el("img", "h-16 w-16 rounded-xl border border-slate-200 object-cover");
          img.src = c.url;
          img.alt = c.file.name;
          li.append(img);
        } else {
          var card = el("div", "flex h-16 w-44 items-center gap-2 rounded-xl border border-slate-200 bg-slate-50 px-2.5");
          var words = el("div", "min-w-0 flex-1");
          var name = el("p", "truncate text-xs font-medium text-slate-800", c.file.name);
          name.dir = "auto";
          name.title = c.file.name;
          words.append(name, el("p", "text-[11px] text-slate-500", humanSize(c.file.size)));
          card.append(docIcon(c.file.name), words);
          li.append(card);
        }
        var x = el("button", "absolute -right-1.5 -top-1.5 inline-flex h-6 w-6 items-center justify-center rounded-full bg-slate-800 text-sm leading-none text-white shadow ring-2 ring-white hover:bg-rose-600", "×");
        x.type = "button";
        x.setAttribute("aria-label", tt("attach.remove", c.file.name));
        x.addEventListener("click", function () { remove(i); });
        li.append(x);
        tray.append(li);
      });
      tray.hidden = chosen.length === 0;
      ui.textarea.required = chosen.length === 0;
    }

    // A thread takes dropped files: the drop zone shows while files are over it.
    var t = thread(), zone = $("#drop-zone"), depth = 0;
    function hasFiles(e) {
      var types = e.dataTransfer && e.dataTransfer.types;
      return !!types && Array.prototype.indexOf.call(types, "Files") >= 0;
    }
    function showZone(on) { if (zone) zone.hidden = !on; }
    if (t) {
      t.addEventListener("dragenter", function (e) { if (!hasFiles(e)) return; e.preventDefault(); depth++; showZone(true); });
      t.addEventListener("dragover", function (e) { if (!hasFiles(e)) return; e.preventDefault(); e.dataTransfer.dropEffect = "copy"; });
      t.addEventListener("dragleave", function (e) { if (!hasFiles(e)) return; depth = Math.max(0, depth - 1); if (!depth) showZone(false); });
      t.addEventListener("drop", function (e) {
        if (!hasFiles(e)) return;
        e.preventDefault();
        depth = 0;
        showZone(false);
        add(e.dataTransfer.files);
      });
    }
    // A file dropped beside the thread must not make the browser leave the page for it.
    window.addEventListener("dragover", function (e) { if (hasFiles(e)) e.preventDefault(); });
    window.addEventListener("drop", function (e) { if (hasFiles(e)) { e.preventDefault(); depth = 0; showZone(false); } });

    // A picture pasted into the composer is attached (a screenshot, a copied photo).
    // Cells copied from a spreadsheet come as text and as a picture of them: the text wins.
    ui.textarea.addEventListener("paste", function (e) {
      var files = e.clipboardData && e.clipboardData.files;
      if (!files || !files.length || e.clipboardData.getData("text/plain")) return;
      e.preventDefault();
      add(files);
    });

    // send posts the chosen files with the text as their caption, as one upload.
    function send() {
      var caption = ui.textarea.value;
      if (ui.tooLong(caption)) { ui.showError(tt("composer.too_long"), false); return; }
      var files = chosen.map(function (c) { return c.file; });
      var id = chosenID || ui.idInput.value;
      previews[id] = chosen.map(function (c) { return c.url; });
      chosen = [];
      chosenID = null;
      render();
      ui.idInput.value = uuid(); // the next message gets its own id; this upload keeps id
      ui.sent(caption);
      startUpload({ id: id, files: files, caption: caption });
    }

    // bringBack returns a cancelled upload's files to the tray, with its id: sent again,
    // it is the same upload should the server have received it after all.
    function bringBack(job) {
      var urls = previews[job.id] || [];
      delete previews[job.id];
      chosen = job.files.map(function (f, i) { return { file: f, url: urls[i] || null }; });
      chosenID = job.id;
      if (!ui.textarea.value) ui.textarea.value = job.caption;
      render();
    }

    function startUpload(job) {
      job.bubble = sendingBubble(job);
      $("#uploads").append(job.bubble);
      var empty = $("#thread-empty");
      if (empty) empty.remove();
      scrollToBottom();
      transmit(job);
    }

    function sendingBubble(job) {
      var li = el("li", "upload mine mt-2 flex justify-end");
      li.dataset.clientMsgId = job.id;
      li.dataset.sending = "true";
      var card = el("div", "w-[16rem] max-w-[85%] rounded-2xl rounded-tr-md border border-slate-200 bg-white p-2.5 text-sm shadow-sm");
      var list = el("ul", "flex flex-col gap-1.5");
      job.bars = [];
      job.files.forEach(function (f, i) {
        var row = el("li", "upload-file flex items-center gap-2.5");
        row.dataset.index = String(i);
        var thumb = el("span", "upload-thumb relative inline-flex h-11 w-11 shrink-0 items-center justify-center overflow-hidden rounded-lg bg-slate-100");
        var url = (previews[job.id] || [])[i];
        if (url) {
          var img = el("img", "h-full w-full object-cover");
          img.src = url;
          img.alt = "";
          thumb.append(img);
        } else {
          thumb.append(docIcon(f.name));
        }
        var words = el("span", "min-w-0 flex-1");
        var name = el("span", "line-clamp-2 [overflow-wrap:anywhere] text-[13px] font-medium leading-snug text-slate-800", f.name);
        name.dir = "auto";
        name.title = f.name;
        var track = el("span", "mt-1 block h-1.5 overflow-hidden rounded-full bg-slate-100");
        var bar = el("span", "upload-bar block h-full w-0 rounded-full bg-teal-500 transition-[width] duration-150");
        track.setAttribute("role", "progressbar");
        track.setAttribute("aria-label", f.name);
        track.setAttribute("aria-valuemin", "0");
        track.setAttribute("aria-valuemax", "100");
        track.setAttribute("aria-valuenow", "0");
        track.append(bar);
        words.append(name, track, el("span", "upload-size block text-[11px] text-slate-500", humanSize(f.size)));
        row.append(thumb, words);
        list.append(row);
        job.bars.push({ track: track, bar: bar });
      });
      card.append(list);
      if (job.caption) {
        var cap = el("p", "mt-2 whitespace-pre-wrap break-words border-t border-slate-100 pt-2 text-[13px] text-slate-700 [overflow-wrap:anywhere]", job.caption);
        cap.dir = "auto";
        card.append(cap);
      }
      job.status = el("div", "upload-status mt-2 flex items-center gap-2 text-xs");
      job.status.setAttribute("role", "status");
      card.append(job.status);
      li.append(card);
      return li;
    }

    function setProgress(job, i, p) {
      var b = job.bars[i];
      if (!b) return;
      var pct = Math.round(p * 100);
      b.bar.style.width = pct + "%";
      b.track.setAttribute("aria-valuenow", String(pct));
    }

    function button(text, cls, onClick) {
      var b = el("button", "rounded-full px-3 py-1 text-xs font-semibold " + cls, text);
      b.type = "button";
      b.addEventListener("click", onClick);
      return b;
    }

    function showSending(job) {
      job.bubble.dataset.sending = "true";
      job.bubble.firstChild.className = job.bubble.firstChild.className.replace("border-rose-200 bg-rose-50", "border-slate-200 bg-white");
      job.status.replaceChildren(
        el("span", "flex-1 text-slate-600", tt("upload.sending")),
        button(tt("upload.cancel"), "bg-slate-100 text-slate-700 hover:bg-slate-200", function () {
          job.cancelled = true;
          if (job.xhr) job.xhr.abort();
          job.bubble.remove();
          bringBack(job);
        }));
    }

    function showFailed(job, text, canRetry) {
      job.bubble.dataset.sending = "false";
      job.bubble.firstChild.className = job.bubble.firstChild.className.replace("border-slate-200 bg-white", "border-rose-200 bg-rose-50");
      var parts = [el("span", "flex-1 font-medium text-rose-700", text)];
      if (canRetry) {
        parts.push(button(tt("upload.retry"), "bg-rose-600 text-white hover:bg-rose-700", function () { transmit(job); }));
      }
      parts.push(button(tt("upload.dismiss"), "bg-white text-rose-700 ring-1 ring-rose-200 hover:bg-rose-100", function () {
        job.bubble.remove();
        dropPreviews(job.id);
      }));
      job.status.replaceChildren.apply(job.status, parts);
    }

    function refusal(xhr) {
      var code = "";
      try { code = JSON.parse(xhr.responseText).error.code; } catch (e) { /* not JSON */ }
      switch (code || { 413: "too_large", 415: "unsupported", 429: "rate_limited", 404: "not_found" }[xhr.status]) {
        case "too_large": return tt("upload.too_large");
        case "unsupported": return tt("upload.unsupported");
        case "rate_limited": return tt("composer.rate_limited");
        case "invalid": return tt("upload.invalid");
        case "not_found": case "forbidden": return tt("upload.forbidden");
      }
      return tt("upload.failed");
    }

    // transmit posts the upload with XMLHttpRequest, whose upload progress is real. The
    // body is built here, so each file's place in it is known and its own bar follows the
    // bytes sent; the browser streams the files from disk.
    function transmit(job) {
      var boundary = "----DreamSeedUpload" + uuid().replace(/-/g, "");
      var enc = new TextEncoder(), parts = [], offset = 0, ranges = [];
      function text(s) { var b = enc.encode(s); parts.push(b); offset += b.length; }
      function field(name, value) {
        text("--" + boundary + '\r\nContent-Disposition: form-data; name="' + name + '"\r\n\r\n' + value + "\r\n");
      }
      field("client_msg_id", job.id);
      field("caption", job.caption);
      job.files.forEach(function (f) {
        var quoted = f.name.replace(/"/g, "%22").replace(/\r/g, "%0D").replace(/\n/g, "%0A");
        text("--" + boundary + '\r\nContent-Disposition: form-data; name="file"; filename="' + quoted +
          '"\r\nContent-Type: application/octet-stream\r\n\r\n');
        ranges.push([offset, f.size]);
        parts.push(f);
        offset += f.size;
        text("\r\n");
      });
      text("--" + boundary + "--\r\n");

      job.cancelled = false;
      job.files.forEach(function (f, i) { setProgress(job, i, 0); });
      showSending(job);
      var xhr = job.xhr = new XMLHttpRequest();
      xhr.open("POST", form.dataset.uploadUrl);
      xhr.setRequestHeader("Content-Type", "multipart/form-data; boundary=" + boundary);
      xhr.setRequestHeader("HX-Request", "true");
      xhr.setRequestHeader("X-CSRF-Token", csrfToken());
      xhr.setRequestHeader("Accept", "text/html, application/json");
      xhr.upload.addEventListener("progress", function (e) {
        ranges.forEach(function (r, i) {
          setProgress(job, i, r[1] ? Math.max(0, Math.min(1, (e.loaded - r[0]) / r[1])) : (e.loaded >= r[0] ? 1 : 0));
        });
      });
      xhr.addEventListener("load", function () {
        if (job.cancelled) return;
        if (xhr.status === 200 || xhr.status === 202) {
          var li = $("li.upload", parseFragment(xhr.responseText));
          var stick = atBottom();
          if (job.bubble.isConnected && job.bubble.dataset.replaced !== "true") job.bubble.replaceWith(li || el("li"));
          else job.bubble.remove();
          if (li) putBubble(li);
          if (stick) scrollToBottom();
          return;
        }
        var retryable = xhr.status === 408 || xhr.status === 429 || xhr.status >= 500;
        showFailed(job, refusal(xhr), retryable);
      });
      xhr.addEventListener("error", function () {
        if (!job.cancelled) showFailed(job, tt("upload.failed"), true);
      });
      xhr.addEventListener("timeout", function () { showFailed(job, tt("upload.failed"), true); });
      xhr.send(new Blob(parts));
    }

    return {
      hasFiles: function () { return chosen.length > 0; },
      send: send,
    };
  }

  // ------------------------------------------------ the picture viewer

  function setupViewer() {
    var v = $("#viewer");
    if (!v) return;
    var img = $("#viewer-img", v), name = $("#viewer-name", v), count = $("#viewer-count", v);
    var download = $("#viewer-download", v), prev = $("[data-viewer-prev]", v), next = $("[data-viewer-next]", v);
    var list = [], index = 0, opener = null, pushed = false;

    function show() {
      var a = list[index];
      if (!a) return;
      img.removeAttribute("src");
      if (+a.dataset.width) img.width = +a.dataset.width; else img.removeAttribute("width");
      if (+a.dataset.height) img.height = +a.dataset.height; else img.removeAttribute("height");
      img.src = a.dataset.large;
      img.alt = a.dataset.name || "";
      name.textContent = a.dataset.name || "";
      count.textContent = list.length > 1 ? v.dataset.counter.replace("%d", index + 1).replace("%d", list.length) : "";
      download.href = a.dataset.download;
      download.setAttribute("download", a.dataset.name || "");
      prev.disabled = index === 0;
      next.disabled = index === list.length - 1;
      prev.classList.toggle("opacity-30", prev.disabled);
      next.classList.toggle("opacity-30", next.disabled);
    }

    function open(a) {
      list = $$("#messages a[data-viewer]");
      index = Math.max(0, list.indexOf(a));
      opener = a;
      show();
      v.hidden = false;
      document.documentElement.classList.add("overflow-hidden");
      // The browser's back button closes the viewer instead of leaving the thread.
      try { history.pushState({ viewer: true }, ""); pushed = true; } catch (e) { pushed = false; }
      $("[data-viewer-close]", v).focus();
    }

    function close(fromHistory) {
      if (v.hidden) return;
      v.hidden = true;
      img.removeAttribute("src");
      document.documentElement.classList.remove("overflow-hidden");
      if (pushed && !fromHistory) history.back();
      pushed = false;
      if (opener && opener.isConnected) opener.focus();
    }

    function step(d) {
      var i = index + d;
      if (i < 0 || i >= list.length) return;
      index = i;
      show();
    }

    document.addEventListener("click", function (e) {
      var a = e.target.closest && e.target.closest("a[data-viewer]");
      if (!a || e.ctrlKey || e.metaKey || e.shiftKey || e.button) return;
      e.preventDefault();
      open(a);
    });
    $("[data-viewer-close]", v).addEventListener("click", function () { close(false); });
    prev.addEventListener("click", function () { step(-1); });
    next.addEventListener("click", function () { step(1); });
    window.addEventListener("popstate", function () { if (!v.hidden) close(true); });
    // Focus stays in the dialog (a click on the picture would otherwise leave it).
    document.addEventListener("focusin", function (e) {
      if (!v.hidden && !v.contains(e.target)) $("[data-viewer-close]", v).focus();
    });
    document.addEventListener("keydown", function (e) {
      if (v.hidden) return;
      if (e.key === "Escape") { e.preventDefault(); close(false); }
      else if (e.key === "ArrowLeft") { e.preventDefault(); step(-1); }
      else if (e.key === "ArrowRight") { e.preventDefault(); step(1); }
      else if (e.key === "Tab") {
        // Focus stays inside the dialog.
        var f = $$("button:not([disabled]), a[href]", v).filter(function (x) { return x.offsetParent !== null; });
        if (!f.length) return;
        var first = f[0], last = f[f.length - 1];
        if (e.shiftKey && document.activeElement === first) { e.preventDefault(); last.focus(); }
        else if (!e.shiftKey && document.activeElement === last) { e.preventDefault(); first.focus(); }
      }
    });
    // Swipe between pictures on a phone; a tap on the dark around the picture closes.
    var stage = $("#viewer-stage", v), x0 = null, y0 = null;
    stage.addEventListener("touchstart", function (e) {
      if (e.touches.length === 1) { x0 = e.touches[0].clientX; y0 = e.touches[0].clientY; }
    }, { passive: true });
    stage.addEventListener("touchend", function (e) {
      if (x0 === null) return;
      var dx = e.changedTouches[0].clientX - x0, dy = e.changedTouches[0].clientY - y0;
      x0 = null;
      if (Math.abs(dx) > 50 && Math.abs(dx) > Math.abs(dy)) step(dx < 0 ? 1 : -1);
    });
    stage.addEventListener("click", function (e) { if (e.target === stage) close(false); });
  }

  // ------------------------------------------------ deleting, dismissing

  function setupFileForms() {
    document.addEventListener("submit", function (e) {
      var f = e.target;
      if (e.defaultPrevented || !f.matches) return;
      if (f.matches("form[data-file-delete]")) {
        e.preventDefault();
        fetchHTML(f.action, { method: "POST", body: new URLSearchParams(new FormData(f)) })
          .then(function (resp) {
            if (!resp.ok) throw new Error("delete: " + resp.status);
            return resp.text();
          })
          .then(function (html) {
            var row = $("li.msg", parseFragment(html));
            if (row && document.getElementById(row.id)) { placeRow(row); relayout(); }
            listStale();
          })
          .catch(function () { window.alert(TEXT["file.delete.failed"] || "Error"); });
      } else if (f.matches("form[data-upload-dismiss]")) {
        e.preventDefault();
        var li = f.closest("li.upload");
        fetchHTML(f.action, { method: "POST", body: new URLSearchParams(new FormData(f)) })
          .then(function (resp) {
            if (!resp.ok && resp.status !== 404) throw new Error("dismiss: " + resp.status);
            if (li) { endedUploads[li.dataset.clientMsgId] = 2; dropPreviews(li.dataset.clientMsgId); li.remove(); }
          })
          .catch(function () { /* it stays; the next try or a reload */ });
      }
    });
  }

  // ---------------------------------------------------------------- the composer

  function setupComposer() {
    var form = $("#composer-form");
    if (!form) return;
    var textarea = $("#composer", form), button = $("#composer-send", form);
    var idInput = form.querySelector('input[name="client_msg_id"]');
    var errorBox = $("#composer-error"), errorText = $("#composer-error-text"), retry = $("#composer-retry");
    var draftKey = "draft:" + form.action;
    var pending = null; // {id, body} of a send that failed: a retry reuses its id
    var maxChars = +form.dataset.maxChars;

    // tooLong counts a message as the server does (messenger.CleanBody): code points, not
    // UTF-16 units (an emoji is one character, not two), after line ends became LF and the
    // spaces around the text went.
    function tooLong(text) {
      var t = text.replace(/\r\n?|[\u2028\u2029]/g, "\n").trim();
      return t.length - (t.match(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g) || []).length > maxChars;
    }

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
          showError(resp.status === 400 && tooLong(body) ? form.dataset.msgTooLong : form.dataset.msgFailed, false);
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

    var attach = null;
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      if (attach && attach.hasFiles()) { attach.send(); return; }
      if (button.disabled) return;
      var body = textarea.value;
      if (!body.trim()) { showError(form.dataset.msgEmpty, false); return; }
      if (tooLong(body)) { showError(form.dataset.msgTooLong, false); return; }
      var id = pending && pending.body === body ? pending.id : idInput.value;
      send(body, id);
    });

    retry.addEventListener("click", function () {
      if (pending) send(pending.body, pending.id);
    });

    attach = setupAttach(form, {
      textarea: textarea, idInput: idInput, showError: showError, clearError: clearError, tooLong: tooLong,
      sent: function (caption) {
        pending = null;
        clearError();
        if (textarea.value === caption) {
          textarea.value = "";
          try { sessionStorage.removeItem(draftKey); } catch (e) {}
          grow();
        }
        textarea.focus();
      },
    });
  }

  // ---------------------------------------------------------------- the keyboard

  // setupKeyboard: the skip link puts the focus in the composer; Escape closes the open
  // menu or panel (a <details>: the member panel, a message menu, the account and mute
  // menus) and gives the focus back to its summary; "Earlier messages" loads them in
  // place and keeps the focus there.
  function setupKeyboard() {
    // The Enter that followed the skip link may still arrive in the composer as a new
    // line (its keypress after the focus moved): that one is dropped.
    var skippedAt = 0, composer = $("#composer");
    if (composer) composer.addEventListener("beforeinput", function (e) {
      if ((e.inputType === "insertLineBreak" || e.inputType === "insertParagraph") && Date.now() - skippedAt < 500) e.preventDefault();
      skippedAt = 0;
    });
    document.addEventListener("click", function (e) {
      var skip = e.target.closest && e.target.closest("#skip-composer");
      if (skip) {
        var c = $("#composer");
        if (c) { e.preventDefault(); c.focus(); }
        return;
      }
      var more = e.target.closest && e.target.closest("#older a");
      if (more && !e.ctrlKey && !e.metaKey && !e.shiftKey && !e.button) {
        e.preventDefault();
        loadOlder(); // the focus follows (loadOlder)
      }
    });
    document.addEventListener("keydown", function (e) {
      // Enter on the skip link: its keydown is taken, so that the key does not go on to
      // type a new line in the composer it focused.
      if (e.key === "Enter" && e.target && e.target.id === "skip-composer") {
        var c = $("#composer");
        if (c) { e.preventDefault(); skippedAt = Date.now(); c.focus(); }
        return;
      }
      if (e.key !== "Escape" || e.defaultPrevented) return;
      var v = $("#viewer");
      if (v && !v.hidden) return;
      var active = document.activeElement, open = active && active.closest ? active.closest("details[open]") : null;
      if (!open) {
        var all = $$("details[open]");
        open = all.length ? all[all.length - 1] : null;
      }
      if (!open) return;
      e.preventDefault();
      open.open = false;
      var summary = $(":scope > summary", open);
      if (summary) summary.focus();
    });
  }

  // ---------------------------------------------------------------- page start

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
    setupViewer();
    setupKeyboard();
    // Forms that ask first (leave, remove a member), also in parts loaded later.
    document.addEventListener("submit", function (e) {
      var f = e.target;
      if (f.matches && f.matches("form[data-confirm]") && !window.confirm(f.dataset.confirm)) e.preventDefault();
    });
    setupFileForms();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
