/*
 * The pipeline editor's textarea: a line-number gutter kept in step with the text and its scrolling,
 * the text coloured beneath it (keys, strings, numbers, ${expressions}, comments, in YAML or JSON),
 * and "line N" links of validation problems selecting that line. (Tab keeps moving the focus.)
 */
(function () {
  "use strict";

  var TOKENS = /(#.*$)|("(?:[^"\\]|\\.)*"|'(?:[^']|'')*')|(\$\{[^}]*\}?)|(\b(?:true|false|null|yes|no)\b)|(-?\b\d+(?:\.\d+)?\b)/g;
  var KEY = /^(\s*(?:-\s+)?)("(?:[^"\\]|\\.)*"|[^\s"'#:{}\[\],-][^:#]*?)(\s*:)(?=\s|$)/;

  function escape(text) {
    return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  function span(kind, text) { return '<span class="tk-' + kind + '">' + escape(text) + "</span>"; }

  function colourValue(text) {
    var html = "", last = 0;
    text.replace(TOKENS, function (match, comment, string, expression, literal, number, offset) {
      html += escape(text.slice(last, offset));
      if (comment !== undefined && (offset === 0 || /\s/.test(text[offset - 1]))) html += span("com", match);
      else if (string !== undefined) html += span("str", string).replace(/\$\{[^}]*\}?/g, function (e) {
        return '</span><span class="tk-expr">' + e + '</span><span class="tk-str">';
      });
      else if (expression !== undefined) html += span("expr", match);
      else if (literal !== undefined) html += span("lit", match);
      else if (number !== undefined) html += span("num", match);
      else html += escape(match);
      last = offset + match.length;
      return match;
    });
    return html + escape(text.slice(last));
  }

  function colourLine(line) {
    var key = KEY.exec(line);
    if (!key) return colourValue(line);
    return escape(key[1]) + span("key", key[2]) + escape(key[3]) + colourValue(line.slice(key[0].length));
  }

  function setUp(textarea) {
    var gutter = textarea.closest(".code-editor").querySelector(".gutter");
    var highlight = textarea.parentElement.querySelector(".highlight");

    function colour() {
      if (!highlight) return;
      highlight.innerHTML = textarea.value.split("\n").map(colourLine).join("\n") + "\n";
      highlight.scrollTop = textarea.scrollTop;
      highlight.scrollLeft = textarea.scrollLeft;
    }

    function renumber() {
      var count = textarea.value.split("\n").length;
      var lines = [];
      for (var i = 1; i <= count; i++) lines.push(i);
      gutter.textContent = lines.join("\n");
      gutter.scrollTop = textarea.scrollTop;
      colour();
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
    textarea.addEventListener("scroll", function () {
      gutter.scrollTop = textarea.scrollTop;
      if (highlight) { highlight.scrollTop = textarea.scrollTop; highlight.scrollLeft = textarea.scrollLeft; }
    });
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
