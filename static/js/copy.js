/* A "Copy" button (data-copy="#id") puts the named field's value on the clipboard and says so. */
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var field = document.querySelector(button.dataset.copy);
    if (!field) return;
    var done = function () { button.textContent = "Copied"; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(done, function () { field.select(); });
    } else {
      field.select();  // no clipboard API over plain HTTP: select it, and try the older way
      if (document.execCommand("copy")) done();
    }
  });
})();
