// Aegis console: the only script. Every element with data-live="URL" is refreshed from URL
// (an HTML fragment) every two seconds while the page is visible. Without this script the
// pages work the same; they are only not live. A 401 means the session ended: reload, which
// leads to the sign-in page.
(function () {
  "use strict";
  var INTERVAL = 2000;
  function refresh(el) {
    if (document.hidden) { return; }
    fetch(el.getAttribute("data-live"), { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (r.status === 401) { window.location.reload(); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html !== null && html !== el.innerHTML) { el.innerHTML = html; }
      })
      .catch(function () { /* the next tick tries again */ });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var live = document.querySelectorAll("[data-live]");
    for (var i = 0; i < live.length; i++) {
      (function (el) { window.setInterval(function () { refresh(el); }, INTERVAL); })(live[i]);
    }
  });
})();
