// Times: the server writes UTC; add the viewer's own zone beside it.
// Refresh: poll the same URL and swap <main>, while the tab is visible.
(function () {
  "use strict";
  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      if (el.dataset.local) return;
      var d = new Date(el.getAttribute("datetime"));
      if (isNaN(d)) return;
      el.dataset.local = "1";
      var span = document.createElement("span");
      span.className = "local";
      span.textContent = "(" + d.toLocaleString(undefined, { timeZoneName: "short" }) + ")";
      el.after(span);
    });
  }
  function refresh() {
    if (document.hidden) return;
    fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { if (!r.ok || r.redirected) throw new Error(String(r.status)); return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("main");
        var main = document.getElementById("main");
        if (fresh && main) {
          main.replaceWith(fresh);
          localTimes(fresh);
          document.body.dataset.refreshed = String((Number(document.body.dataset.refreshed) || 0) + 1);
        }
      })
      .catch(function () { /* keep the page as it is; the next poll tries again */ });
  }
  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    var every = Number(document.body.dataset.refresh) || 0;
    if (every > 0) setInterval(refresh, every * 1000);
  });
})();
