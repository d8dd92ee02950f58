// rdv console: refresh a page while calls are live. No framework, no build step.
// The body says what to watch: data-live-conv (one conversation and its stamp) or
// data-live-since (any conversation seen since the page was drawn). The page reloads when
// something changed, unless the operator is typing in a form.
(function () {
  "use strict";
  var body = document.body;
  var every = (parseInt(body.getAttribute("data-poll"), 10) || 5) * 1000;
  var conv = body.getAttribute("data-live-conv");
  var since = body.getAttribute("data-live-since");
  var status = document.querySelector("[data-live-status]");
  if (!conv && !since) { return; }
  var url = conv
    ? "/console/live.json?conv=" + encodeURIComponent(conv)
    : "/console/live.json?since=" + encodeURIComponent(since);

  function busy() {
    var el = document.activeElement;
    return el && (el.tagName === "INPUT" || el.tagName === "SELECT" || el.tagName === "TEXTAREA");
  }

  function tick() {
    if (document.hidden) { return; }
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (r.status === 401) { window.location.reload(); return null; }
        return r.ok ? r.json() : null;
      })
      .then(function (data) {
        if (!data) { return; }
        var changed = conv ? data.stamp !== body.getAttribute("data-live-stamp") : data.changed;
        if (status) {
          status.textContent = conv ? (data.live ? " · en direct" : "") :
            (data.live ? " · " + data.live + " conversation(s) en cours" : "");
        }
        if (changed && !busy()) { window.location.reload(); }
      })
      .catch(function () { /* the next tick tries again */ });
  }
  window.setInterval(tick, every);
}());
