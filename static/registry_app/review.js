/* Review page behaviour that must live in a static file (strict CSP: no inline scripts or handlers).

   The review forms post through htmx. When the server refuses (400 with a validation message,
   403 when the user may not act), it answers with the re-rendered review panel carrying the
   message; htmx drops 4xx bodies by default, so swap them for forms inside [data-swap-errors]. */
(function () {
  "use strict";

  document.addEventListener("htmx:beforeSwap", function (event) {
    var detail = event.detail;
    var status = detail.xhr ? detail.xhr.status : 0;
    var elt = detail.requestConfig ? detail.requestConfig.elt : null;
    if ((status === 400 || status === 403) && elt && elt.closest && elt.closest("[data-swap-errors]")) {
      detail.shouldSwap = true;
      detail.isError = false;
    }
  });
})();
