/*
 * The pipeline editor's textarea: a line-number gutter kept in step with the text and its scrolling,
 * and "line N" links of validation problems selecting that line. (Tab keeps moving the focus.)
 */
(function () {
  "use strict";

  function setUp(textarea) {
    var gutter = textarea.parentElement.querySelector(".gutter");

    function renumber() {
      var count = textarea.value.split("\n").length;
      var lines = [];
      for (var i = 1; i <= count; i++) lines.push(i);
      gutter.textContent = lines.join("\n");
      gutter.scrollTop = textarea.scrollTop;
    }

    function goToLine(line) {
      var lines = textarea.value.split("\n");
      var start = 0;
      for (var i = 0; i < line - 1 && i < lines.length; i++) start += lines[i].length + 1;
      var end = start + (lines[line - 1] || "").length;
      textarea.focus();
      textarea.setSelectionRange(start, end);
      var lineHeight = parseFloat(getComputedStyle(textarea).lineHeight) || 18;
      textarea.scrollTop = Math.max(0, (line - 5) * lineHeight);
      gutter.scrollTop = textarea.scrollTop;
    }

    textarea.addEventListener("input", renumber);
    textarea.addEventListener("renumber", renumber);  // the stage editor rewrote the text
    textarea.addEventListener("scroll", function () { gutter.scrollTop = textarea.scrollTop; });
    document.querySelectorAll(".goto-line").forEach(function (link) {
      link.addEventListener("click", function (event) {
        event.preventDefault();
        goToLine(Number(link.dataset.line));
      });
    });
    renumber();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var textarea = document.getElementById("pipeline-text");
    if (textarea) setUp(textarea);
  });
})();
