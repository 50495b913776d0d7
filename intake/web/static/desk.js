// The desk's only script (no inline script: the CSP forbids it).
// - sends the CSRF token with every htmx request (read from <meta name="csrf-token">);
// - asks before plain forms marked data-confirm are sent;
// - keyboard shortcuts on a case page: a approve, h hold, r reject, o reopen, n next case.
(function () {
  "use strict";
  function token() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRFToken"] = token();
  });
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  }, true);
  function typing(target) {
    var tag = (target.tagName || "").toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || target.isContentEditable;
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) {
      return;
    }
    var key = event.key.toLowerCase();
    if (key === "n") {
      var next = document.getElementById("next-case");
      if (next) { window.location.href = next.href; }
      return;
    }
    var focus = {h: "hold-reason", r: "reject-template"}[key];
    if (focus && document.getElementById(focus)) {
      event.preventDefault();
      document.getElementById(focus).focus();
      return;
    }
    var button = {a: "action-approve", o: "action-reopen"}[key];
    if (button && document.getElementById(button)) {
      event.preventDefault();
      document.getElementById(button).click();
    }
  });
})();
