/* Keyboard access to wide tables (strict CSP: a static file, no inline script).

   A table that is wider than its .table-scroll box scrolls sideways; a keyboard user can only scroll
   a region that takes focus (WCAG 2.1.1, axe "scrollable-region-focusable"). Such a box becomes a
   focusable, labelled region (named after its table's caption or the nearest heading); one that fits
   again loses the tab stop. Checked on load, on resize, and after every htmx swap. */
(function () {
  "use strict";

  function label(box) {
    var caption = box.querySelector("caption");
    if (caption && caption.textContent.trim()) return caption.textContent.trim();
    var section = box.closest("section, .card, .table-card, main");
    var heading = section ? section.querySelector("h1, h2, h3") : null;
    return heading && heading.textContent.trim() ? heading.textContent.trim() + " (table)" : "Table";
  }

  function update() {
    var boxes = document.querySelectorAll(".table-scroll");
    for (var i = 0; i < boxes.length; i++) {
      var box = boxes[i];
      var ours = box.getAttribute("data-a11y-scroll") === "1";
      if (box.scrollWidth > box.clientWidth + 1) {
        if (ours || box.hasAttribute("tabindex")) continue;  // done already, or the template decided
        box.setAttribute("data-a11y-scroll", "1");
        box.setAttribute("tabindex", "0");
        box.setAttribute("role", "region");
        if (!box.hasAttribute("aria-label")) box.setAttribute("aria-label", label(box));
      } else if (ours) {
        box.removeAttribute("data-a11y-scroll");
        box.removeAttribute("tabindex");
        box.removeAttribute("role");
        box.removeAttribute("aria-label");
      }
    }
  }

  var pending = 0;
  function later() {
    if (pending) return;
    pending = window.requestAnimationFrame(function () { pending = 0; update(); });
  }

  document.addEventListener("DOMContentLoaded", update);
  document.addEventListener("htmx:afterSettle", later);
  window.addEventListener("resize", later);
})();
