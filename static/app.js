// DreamSeed Messenger — the little JavaScript the server-rendered pages need.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  // Every htmx request carries the session's CSRF token in a header.
  document.addEventListener("htmx:config:request", function (evt) {
    var token = csrfToken();
    if (token && evt.detail && evt.detail.ctx && evt.detail.ctx.request) {
      evt.detail.ctx.request.headers["X-CSRF-Token"] = token;
    }
  });

  // A thread opens at its newest message.
  function scrollThreadToBottom() {
    var scroller = document.getElementById("thread-scroll");
    if (scroller) scroller.scrollTop = scroller.scrollHeight;
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", scrollThreadToBottom);
  } else {
    scrollThreadToBottom();
  }
})();
