// Dialtone theme + menu. Loaded synchronously in <head> so the theme is set before first paint.
(function () {
  "use strict";
  var KEY = "dialtone-theme";
  var CYCLE = ["dark", "light", "system"];
  var root = document.documentElement;

  function valid(t) { return CYCLE.indexOf(t) !== -1; }

  function load() {
    try {
      var t = window.localStorage.getItem(KEY);
      if (valid(t)) return t;
    } catch (e) { /* storage blocked: fall back to system */ }
    return "system";
  }

  function save(t) {
    try { window.localStorage.setItem(KEY, t); } catch (e) { /* not persisted; still applied */ }
  }

  function label(t) {
    var button = document.getElementById("theme-toggle");
    if (!button) return;
    button.setAttribute("aria-label", "Theme: " + t);
    button.setAttribute("title", "Theme: " + t);
  }

  function apply(t) {
    root.setAttribute("data-theme", t);
    label(t);
  }

  apply(load());

  function wireTheme() {
    var button = document.getElementById("theme-toggle");
    if (!button) return;
    label(root.getAttribute("data-theme") || "system");
    button.addEventListener("click", function () {
      var current = root.getAttribute("data-theme");
      var next = CYCLE[(CYCLE.indexOf(current) + 1) % CYCLE.length];
      apply(next);
      save(next);
    });
    // Keep other open tabs in step.
    window.addEventListener("storage", function (e) {
      if (e.key === KEY) apply(valid(e.newValue) ? e.newValue : "system");
    });
  }

  // The menu is a <details>, so it opens without JS; this keeps aria-expanded true
  // and adds Escape / click-outside to close.
  function wireMenu() {
    var toggle = document.getElementById("menu-toggle");
    var details = toggle && toggle.parentNode;
    if (!toggle || !details || details.tagName !== "DETAILS") return;

    function sync() { toggle.setAttribute("aria-expanded", details.open ? "true" : "false"); }
    function setOpen(open) { details.open = open; sync(); }

    sync();
    toggle.addEventListener("click", function (e) {
      e.preventDefault();
      setOpen(!details.open);
    });
    details.addEventListener("toggle", sync);
    document.addEventListener("keydown", function (e) {
      if ((e.key === "Escape" || e.key === "Esc") && details.open) {
        setOpen(false);
        toggle.focus();
      }
    });
    document.addEventListener("click", function (e) {
      if (details.open && !details.contains(e.target)) setOpen(false);
    });
  }

  function init() { wireTheme(); wireMenu(); }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
