// Trail console: small page helpers (no framework, no build step).
"use strict";
(function () {
  // Print button of the patient page.
  var print = document.getElementById("print");
  if (print) {
    print.addEventListener("click", function () { window.print(); });
  }
  // A search shows that it is running until the next page arrives.
  document.querySelectorAll("form.filters").forEach(function (form) {
    form.addEventListener("submit", function () {
      var b = form.querySelector("button[type=submit]");
      if (b) {
        b.setAttribute("aria-busy", "true");
        b.dataset.label = b.textContent;
        b.textContent = "Loading…";
      }
    });
  });
  // Coming back with the back button restores the label.
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("button[aria-busy=true]").forEach(function (b) {
      b.removeAttribute("aria-busy");
      if (b.dataset.label) { b.textContent = b.dataset.label; }
    });
  });
})();
