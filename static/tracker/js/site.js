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
})();
