// Drop-down menus made of <details data-dropdown> (the notification area, the job page's actions):
// they work without this script; with it, one closes on Escape or a click outside it, and opening
// one closes the others.
(function () {
  "use strict";
  function menus() { return Array.prototype.slice.call(document.querySelectorAll("details[data-dropdown][open]")); }
  document.addEventListener("click", function (event) {
    menus().forEach(function (menu) { if (!menu.contains(event.target)) menu.open = false; });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    menus().forEach(function (menu) {
      menu.open = false;
      var summary = menu.querySelector("summary");
      if (summary && menu.contains(document.activeElement)) summary.focus();
    });
  });
  document.addEventListener("toggle", function (event) {
    var opened = event.target;
    if (!opened.matches || !opened.matches("details[data-dropdown]") || !opened.open) return;
    menus().forEach(function (menu) { if (menu !== opened && !menu.contains(opened)) menu.open = false; });
  }, true);
})();
