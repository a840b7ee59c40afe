// DreamSeed Messenger service worker (served as /sw.js, scope /): Web Push notifications.
// The server puts `const WORDS = {ko: {...}, en: {...}}` before this file, from the one
// table of words (words.go).
//
// A push's payload (JSON): title, body, url, conversation_id, tag, count (the unread
// messages of the conversation: "N new messages"), unread (the unread total, for the app badge), and optionally lang ("ko"|"en"; else the browser's language) and
// unread_conversations (the ids still unread: the notifications of the others are closed,
// they were read since).
"use strict";

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("push", (event) => event.waitUntil(onPush(event)));
self.addEventListener("notificationclick", (event) => event.waitUntil(onClick(event)));
self.addEventListener("message", (event) => {
  if (event.origin && event.origin !== self.location.origin) return;
  const d = event.data || {};
  if (d.type === "read") event.waitUntil(closeRead(d.conversations || [], d.unread));
});

function words(lang) {
  if (!WORDS[lang]) lang = /^en\b/i.test(self.navigator.language || "") ? "en" : "ko";
  return WORDS[lang];
}

function parse(event) {
  try {
    const d = event.data ? event.data.json() : null;
    return d && typeof d === "object" ? d : {};
  } catch (e) {
    return {};
  }
}

function str(v, max) {
  return typeof v === "string" ? v.slice(0, max) : "";
}

async function onPush(event) {
  const d = parse(event);
  const w = words(d.lang);
  const conv = Number.isSafeInteger(d.conversation_id) ? d.conversation_id : 0;
  const tag = str(d.tag, 100) || (conv ? "conversation-" + conv : "messenger");
  if (Array.isArray(d.unread_conversations)) {
    await closeExcept(d.unread_conversations.map(Number));
  }
  // One notification per conversation: a second push replaces it. The server counts the
  // conversation's unread messages (count: one push stands for a window's messages); a
  // payload without it adds one to what is shown.
  let count = Number.isSafeInteger(d.count) && d.count > 0 ? Math.min(d.count, 99999) : 0;
  if (!count) {
    const shown = await self.registration.getNotifications({ tag });
    count = 1;
    for (const n of shown) count += (n.data && n.data.count) || 1;
  }
  const title = str(d.title, 200) || w.app;
  const preview = str(d.body, 300);
  const body = count > 1 ? w.several.replace("{n}", count) + (preview ? "\n" + preview : "") : preview;
  const url = safeURL(d.url) || self.location.origin + "/";
  await setBadge(typeof d.unread === "number" ? d.unread : d.unread_total);
  await self.registration.showNotification(title, {
    body,
    tag,
    renotify: count > 1,
    icon: "/static/icon-192.png",
    badge: "/static/icon-192.png",
    lang: w === WORDS.en ? "en" : "ko",
    timestamp: Date.now(),
    data: { conversation_id: conv, url, count },
  });
}

// safeURL keeps only http(s) links: a payload never opens javascript: or data:.
function safeURL(u) {
  if (typeof u !== "string" || u.length > 2000) return "";
  try {
    const url = new URL(u, self.location.origin);
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : "";
  } catch (e) {
    return "";
  }
}

async function setBadge(n) {
  if (!("setAppBadge" in self.navigator) || typeof n !== "number" || n < 0) return;
  try {
    if (n > 0) await self.navigator.setAppBadge(n);
    else await self.navigator.clearAppBadge();
  } catch (e) {
    // No badge on this platform.
  }
}

async function closeExcept(unread) {
  const keep = new Set(unread);
  for (const n of await self.registration.getNotifications()) {
    const c = n.data && n.data.conversation_id;
    if (c && !keep.has(c)) n.close();
  }
}

async function closeRead(read, total) {
  const gone = new Set(read.map(Number));
  for (const n of await self.registration.getNotifications()) {
    const c = n.data && n.data.conversation_id;
    if (c && gone.has(c)) n.close();
  }
  await setBadge(total);
}

// onClick focuses a messenger tab (taking it to the conversation) or opens the payload's
// link: the messenger's conversation, or the portal's deep link.
async function onClick(event) {
  event.notification.close();
  const url = (event.notification.data && event.notification.data.url) || self.location.origin + "/";
  const target = new URL(url);
  if (target.origin === self.location.origin) {
    const tabs = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    const tab = tabs.find((c) => new URL(c.url).pathname === target.pathname) || tabs[0];
    if (tab) {
      const focused = await tab.focus();
      if (new URL(tab.url).pathname !== target.pathname && "navigate" in focused) {
        try {
          await focused.navigate(target.href);
        } catch (e) {
          // An uncontrolled tab cannot be navigated from here: it is focused at least.
        }
      }
      return;
    }
  }
  await self.clients.openWindow(target.href);
}
