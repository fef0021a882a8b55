// The jobs list and the queue tab: select-all, the selected count and which of the selection bar's
// actions apply (compare 2–4, export 1+, cancel 1+ not ended), whole rows opening the job. Everything here is optional: the page works without it (CSP: no inline code).
(function () {
  "use strict";

  function boxes() {
    return Array.from(document.querySelectorAll('#jobs input[name="job_id"]'));
  }

  function refresh() {
    var all = document.getElementById("select-all");
    var count = document.getElementById("selected-count");
    var list = boxes();
    var chosen = list.filter(function (b) { return b.checked; });
    var running = chosen.filter(function (b) { return !b.hasAttribute("data-ended"); }).length;
    if (all) {
      all.checked = list.length > 0 && chosen.length === list.length;
      all.indeterminate = chosen.length > 0 && chosen.length < list.length;
    }
    if (count) { count.textContent = chosen.length ? chosen.length + " selected" : "none selected"; }
    enable("compare-selected", chosen.length >= 2 && chosen.length <= 4);
    enable("export-selected", chosen.length > 0);
    enable("bulk-cancel-button", running > 0);
  }

  function enable(id, on) {
    var button = document.getElementById(id);
    if (button) { button.disabled = !on; }
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.id === "select-all") {
      boxes().forEach(function (b) { b.checked = target.checked; });
    }
    if (target.id === "select-all" || target.name === "job_id") { refresh(); }
  });

  document.addEventListener("click", function (event) {
    var row = event.target.closest("tr[data-href]");
    if (!row || event.target.closest("a, button, input, select, label, textarea")) { return; }
    if (window.getSelection && String(window.getSelection())) { return; }  // selecting text, not opening
    window.location.href = row.getAttribute("data-href");
  });

  // Filter requests (htmx) leave out empty fields and defaults, so the address bar stays short.
  document.addEventListener("htmx:configRequest", function (event) {
    var data = event.detail.formData;
    if (!data || !event.detail.elt || event.detail.elt.id !== "jobs-filters") { return; }
    var keys = [];
    data.forEach(function (value, key) { if (keys.indexOf(key) < 0) { keys.push(key); } });
    keys.forEach(function (key) {
      if (data.getAll(key).every(function (v) { return v === ""; })) { data.delete(key); }
    });
    if (data.get("sort") === "created_at" && data.get("order") === "desc") { data.delete("sort"); data.delete("order"); }
    if (data.get("per_page") === "25") { data.delete("per_page"); }
  });

  document.addEventListener("DOMContentLoaded", refresh);
  document.addEventListener("htmx:afterSwap", refresh);
})();
