// Shared by every page: progressive enhancements that need no library.
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  // The language menu applies itself when changed; without JS its button does it.
  document.querySelectorAll("select.js-autosubmit").forEach(function (select) {
    select.addEventListener("change", function () {
      select.form.submit();
    });
  });
  // The filter panel's toggle (templates/tracker/_filters.html): shown by the stylesheet on
  // narrow screens only, where aria-expanded="false" folds the panel away. After a filter is
  // applied in place (the map), the panel folds again so the result is in view, and focus
  // goes back to the toggle rather than to the hidden button that applied it.
  document.querySelectorAll(".filters-toggle[aria-controls]").forEach(function (toggle) {
    var panel = document.getElementById(toggle.getAttribute("aria-controls"));
    if (!panel) return;
    function folding() {
      return getComputedStyle(toggle).display !== "none";
    }
    toggle.addEventListener("click", function () {
      toggle.setAttribute("aria-expanded", toggle.getAttribute("aria-expanded") === "true" ? "false" : "true");
    });
    // On the document, so it runs after the page's own handler has (or not) kept the
    // submission in place.
    document.addEventListener("submit", function (event) {
      if (event.target !== panel || !event.defaultPrevented || !folding()) return;
      toggle.setAttribute("aria-expanded", "false");
      toggle.focus();
    });
  });
})();
