// push.js: the Web Push opt-in and the service worker's read news.
//
// Settings (#push-devices): "알림 켜기". Not framed, it subscribes in place with the
// session. Inside the portal's iframe the browser refuses permission and push, and a
// service worker registered there is partitioned, so the click opens a small top-level
// window, /push/enable, and hands it a one-time ticket in the URL fragment; that window
// (#push-enable-page) subscribes with the ticket, tells its opener with postMessage (both
// sides check the origin) and closes.
(() => {
  "use strict";

  const framed = window.top !== window;
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";
  const supported = () => "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
  const isIOS = () => /iPhone|iPad|iPod/.test(navigator.userAgent) || (navigator.platform === "MacIntel" && navigator.maxTouchPoints > 1);
  const standalone = () => matchMedia("(display-mode: standalone)").matches || navigator.standalone === true;
  const MESSAGE = "dreamseed-push";

  function say(root, word) {
    const el = root.querySelector("#push-state");
    if (el) el.textContent = word ? root.dataset["word" + word] || "" : "";
    // Once on, the button has nothing left to do here.
    const button = root.querySelector("#push-enable");
    if (button && word === "Enabled") button.hidden = true;
  }

  function fail(word) {
    const e = new Error(word);
    e.word = word;
    return e;
  }

  function keyBytes(s) {
    const raw = atob(s.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (s.length % 4)) % 4));
    return Uint8Array.from(raw, (c) => c.charCodeAt(0));
  }

  async function publicKey(root) {
    if (root.dataset.publicKey) return root.dataset.publicKey;
    const r = await fetch("/api/v1/push/key", { credentials: "same-origin" });
    if (!r.ok) throw fail("Unsupported");
    return (await r.json()).public_key;
  }

  // subscribe asks for permission (first, while the tap still counts), registers /sw.js,
  // subscribes with the messenger's key and posts the subscription: with the session's
  // CSRF token, or the ticket.
  async function subscribe(root, ticket) {
    if (!supported()) throw fail("Unsupported");
    const permission = await Notification.requestPermission();
    if (permission !== "granted") throw fail("Denied");
    const reg = await navigator.serviceWorker.register("/sw.js", { scope: "/", updateViaCache: "none" });
    const ready = await navigator.serviceWorker.ready;
    const key = keyBytes(await publicKey(root));
    let sub = await ready.pushManager.getSubscription();
    const old = sub && sub.options && sub.options.applicationServerKey;
    if (old && new Uint8Array(old).join() !== key.join()) {
      await sub.unsubscribe();
      sub = null;
    }
    if (!sub) sub = await (reg.pushManager || ready.pushManager).subscribe({ userVisibleOnly: true, applicationServerKey: key });
    const body = sub.toJSON();
    const headers = { "Content-Type": "application/json" };
    if (ticket) body.ticket = ticket;
    else headers["X-CSRF-Token"] = csrf();
    const r = await fetch("/api/v1/push/subscriptions", { method: "POST", headers, body: JSON.stringify(body), credentials: "same-origin" });
    if (r.status === 401) throw fail(ticket ? "Expired" : "Failed");
    if (!r.ok) throw fail("Failed");
    return { id: (await r.json()).id, endpoint: body.endpoint };
  }

  // The settings section.
  function initSettings(root) {
    const button = root.querySelector("#push-enable");
    const ios = root.querySelector("#push-ios");
    if (isIOS() && (framed || !standalone() || !supported())) {
      ios.hidden = false;
      return;
    }
    if (!framed && !supported()) {
      say(root, "Unsupported");
      return;
    }
    button.hidden = false;
    if (!framed) markThisDevice(root);
    button.addEventListener("click", () => (framed ? viaWindow(root, button) : inPlace(root, button)));
  }

  async function markThisDevice(root) {
    const reg = await navigator.serviceWorker.getRegistration("/");
    const sub = reg && (await reg.pushManager.getSubscription());
    if (!sub || Notification.permission !== "granted") return;
    for (const li of root.querySelectorAll("[data-endpoint]")) {
      if (li.dataset.endpoint === sub.endpoint) {
        li.querySelector(".device-this").hidden = false;
        say(root, "Enabled");
      }
    }
  }

  async function inPlace(root, button) {
    button.disabled = true;
    say(root, "Working");
    try {
      await subscribe(root, "");
      await refresh("Enabled");
    } catch (e) {
      button.disabled = false;
      say(root, e.word || "Failed");
    }
  }

  // viaWindow opens the small window inside the click (a pop-up blocker lets it through),
  // then gives it the ticket in its fragment, which never reaches a server or a log.
  function viaWindow(root, button) {
    // The window has no session: it speaks the language this page speaks.
    const page = "/push/enable?lang=" + encodeURIComponent(document.documentElement.lang);
    const w = window.open(page, "dreamseed-push", "popup,width=440,height=640");
    if (!w) {
      say(root, "Blocked");
      return;
    }
    button.disabled = true;
    say(root, "Working");
    const done = (word) => {
      removeEventListener("message", onMessage);
      button.disabled = false;
      say(root, word);
    };
    const onMessage = (e) => {
      if (e.origin !== location.origin || e.source !== w || !e.data || e.data.type !== MESSAGE) return;
      removeEventListener("message", onMessage);
      if (e.data.ok) refresh("Enabled");
      else done(e.data.word || "Failed");
    };
    addEventListener("message", onMessage);
    fetch("/push/tickets", { method: "POST", headers: { "X-CSRF-Token": csrf() }, credentials: "same-origin" })
      .then((r) => (r.ok ? r.json() : Promise.reject(r)))
      .then(({ ticket }) => w.location.replace(page + "#ticket=" + encodeURIComponent(ticket)))
      .catch(() => {
        w.close();
        done("Failed");
      });
  }

  // refresh fetches the section again (the new device in the list) and says word.
  async function refresh(word) {
    const old = document.getElementById("push-devices");
    const r = await fetch("/push/devices", { headers: { "HX-Request": "true" }, credentials: "same-origin" });
    if (r.ok) {
      const t = document.createElement("template");
      t.innerHTML = await r.text();
      const fresh = t.content.getElementById("push-devices");
      if (fresh) {
        old.replaceWith(fresh);
        initSettings(fresh);
        say(fresh, word);
        return;
      }
    }
    say(old, word);
  }

  // The small top-level window.
  function initEnablePage(root) {
    let ticket = "";
    const take = () => {
      const m = /(?:^#|&)ticket=([A-Za-z0-9_-]{20,100})/.exec(location.hash);
      if (!m) return;
      ticket = m[1];
      history.replaceState(null, "", location.pathname);
    };
    take();
    addEventListener("hashchange", take);
    const button = root.querySelector("#push-enable");
    if (isIOS() && (!standalone() || !supported())) {
      root.querySelector("#push-ios").hidden = false;
      root.querySelector("#push-intro").hidden = true;
      button.hidden = true;
      return;
    }
    const tell = (msg) => {
      if (window.opener && !window.opener.closed) window.opener.postMessage(Object.assign({ type: MESSAGE }, msg), location.origin);
    };
    button.addEventListener("click", async () => {
      if (!ticket && !csrf()) {
        say(root, "NoTicket");
        return;
      }
      button.disabled = true;
      say(root, "Working");
      try {
        const { id } = await subscribe(root, ticket);
        ticket = "";
        say(root, "Enabled");
        button.hidden = true;
        tell({ ok: true, id });
        if (window.opener) setTimeout(() => window.close(), 800);
      } catch (e) {
        button.disabled = false;
        say(root, e.word || "Failed");
        if (e.word === "Expired") ticket = "";
        tell({ ok: false, word: e.word || "Failed" });
      }
    });
  }

  // The portal's hand-over: a portal that subscribed in its own installed app (with the
  // messenger's key) posts the subscription to this iframe, which stores it with its
  // session. Only the parent may: the page's frame-ancestors allows only portal origins to
  // frame it. The answer goes back to that origin alone.
  function acceptHandOver() {
    if (!framed) return;
    addEventListener("message", async (e) => {
      if (e.source !== window.parent || !e.data || e.data.type !== "dreamseed-push-subscription") return;
      const reply = (ok, id) => window.parent.postMessage({ type: "dreamseed-push-subscribed", ok, id }, e.origin);
      const sub = e.data.subscription;
      if (!sub || typeof sub.endpoint !== "string" || !sub.keys) return reply(false);
      try {
        const r = await fetch("/api/v1/push/subscriptions", {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
          body: JSON.stringify({ endpoint: sub.endpoint, keys: { p256dh: String(sub.keys.p256dh || ""), auth: String(sub.keys.auth || "") } }),
        });
        reply(r.ok, r.ok ? (await r.json()).id : undefined);
        if (r.ok && document.getElementById("push-devices")) refresh("Enabled");
      } catch (err) {
        reply(false);
      }
    });
  }

  // tellRead gives the service worker the conversations this page shows as read, so it
  // closes their notifications, and the unread total for the badge. Not inside the iframe:
  // its service worker is another, partitioned one.
  async function tellRead() {
    if (framed || !("serviceWorker" in navigator)) return;
    const reg = await navigator.serviceWorker.getRegistration("/");
    if (!reg || !reg.active) return;
    const read = new Set();
    for (const li of document.querySelectorAll("li[data-conversation]")) {
      const badge = li.querySelector("[data-unread]");
      if (!badge || badge.dataset.unread === "0") read.add(Number(li.dataset.conversation));
    }
    const thread = document.getElementById("thread");
    if (thread && thread.dataset.conversation) read.add(Number(thread.dataset.conversation));
    const totalEl = document.querySelector("[data-unread-total]");
    const msg = { type: "read", conversations: [...read] };
    if (totalEl) msg.unread = Number(totalEl.dataset.unreadTotal) || 0;
    reg.active.postMessage(msg);
  }

  function start() {
    const settings = document.getElementById("push-devices");
    if (settings) initSettings(settings);
    const page = document.getElementById("push-enable-page");
    if (page) initEnablePage(page);
    acceptHandOver();
    tellRead().catch(() => {});
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") tellRead().catch(() => {});
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
