/*
 * Live updates for the dashboard: one WebSocket per page, no polling.
 *
 * A page opts in with an element carrying
 *   data-live-url="/ws/executions/<id>/"  (or /ws/applications/<name>/)
 *   data-live-target="#execution"          the element its fragment replaces
 *   data-fragment="execution"              ?fragment=<name> renders that element alone
 *
 * Messages: {"type": "hello", "sequence": n} after subscribing, then
 * {"type": "execution.changed", executionId, application, status, sequence,
 *  stages: [{id, refId, status, startTime, endTime}]}.
 * Each change is applied in place to the elements that carry
 * data-execution-id / data-stage-id; the page's fragment is fetched again
 * (and swapped in only if its data-version differs and no event arrived
 * while it was on its way, else fetched again) after a hello (which
 * also follows every reconnect), on a gap in an execution's sequence, for
 * an execution the page does not show, after a status change (the
 * actions offered depend on it), and after an htmx swap (an action's
 * answer) that an event overtook. Close codes 4403/4404 end the connection.
 *
 * An action that a status change makes meaningless (Pause once the execution ended, Skip on a finished
 * wait, a judgment banner once judged) carries data-status-of="<execution or stage id>" and
 * data-shown-while="<statuses>": it is hidden the moment the event arrives, before the fragment comes.
 *
 * Timers: every element with data-start-time (epoch ms) shows its duration
 * in its [data-timer] element, ticking until it has data-end-time.
 */
(function () {
  "use strict";

  var COMPLETE = ["SUCCEEDED", "FAILED_CONTINUE", "TERMINAL", "CANCELED", "STOPPED", "SKIPPED"];
  var FINAL_CLOSE_CODES = [4403, 4404];

  function formatDuration(ms) {
    var seconds = Math.max(0, Math.floor(ms / 1000));
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    if (seconds < 60) return seconds + "s";
    if (seconds < 3600) return Math.floor(seconds / 60) + "m " + pad(seconds % 60) + "s";
    return Math.floor(seconds / 3600) + "h " + pad(Math.floor((seconds % 3600) / 60)) + "m";
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-start-time]").forEach(function (el) {
      var start = Number(el.dataset.startTime);
      if (!start) return;
      var end = el.dataset.endTime ? Number(el.dataset.endTime) : now;
      var text = formatDuration(end - start);
      var timer = el.hasAttribute("data-timer") ? el : el.querySelector("[data-timer]");
      if (timer && timer.textContent !== text) timer.textContent = text;
      if (el.dataset.stageName) el.title = el.dataset.stageName + " — " + el.dataset.stageStatus + " — " + text;
    });
  }

  function setStatusClass(el, status) {
    el.className = el.className.replace(/\bstatus-[A-Z_]+\b/g, "").trim() + " status-" + status;
  }

  function setTime(el, name, value) {
    if (value) el.setAttribute(name, value); else el.removeAttribute(name);
  }

  /* Hide at once the actions meant only for other statuses of the execution or stage ``id``. */
  function hideStaleActions(id, status) {
    document.querySelectorAll('[data-status-of="' + id + '"][data-shown-while]').forEach(function (el) {
      if (el.dataset.shownWhile.split(" ").indexOf(status) < 0) el.hidden = true;
    });
  }

  /* Apply one change in place; true when a status changed (actions on the page may differ then). */
  function applyChange(message) {
    hideStaleActions(message.executionId, message.status);
    (message.stages || []).forEach(function (stage) { hideStaleActions(stage.id, stage.status); });
    var changed = false;
    document.querySelectorAll('[data-execution-id="' + message.executionId + '"]').forEach(function (el) {
      if (el.dataset.executionStatus !== undefined && el.dataset.executionStatus !== message.status) changed = true;
      el.dataset.executionStatus = message.status;
      setStatusClass(el, message.status);
      if (el.hasAttribute("data-status-text")) el.textContent = message.status;
      if (el.dataset.startTime && !el.dataset.endTime && COMPLETE.indexOf(message.status) >= 0) {
        el.dataset.endTime = String(Date.now());
      }
    });
    (message.stages || []).forEach(function (stage) {
      document.querySelectorAll('[data-stage-id="' + stage.id + '"]').forEach(function (el) {
        if (el.dataset.stageStatus !== stage.status) changed = true;
        el.dataset.stageStatus = stage.status;
        setStatusClass(el, stage.status);
        setTime(el, "data-start-time", stage.startTime);
        setTime(el, "data-end-time", stage.endTime);
        if (el.hasAttribute("data-status-text")) el.textContent = stage.status;
      });
    });
    tick();
    return changed;
  }

  function isBusy(target) {
    /* Someone typing in a form (a cancel reason, a judgment comment): do not pull it from under them. */
    var active = document.activeElement;
    return !!(active && target.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName));
  }

  /* Elements marked hx-preserve (the open stage panel) stay as they are, as they do in htmx's swaps. */
  function keepPreserved(current, fresh) {
    current.querySelectorAll("[hx-preserve][id]").forEach(function (kept) {
      var slot = fresh.querySelector("#" + CSS.escape(kept.id));
      if (slot) slot.replaceWith(kept);
    });
  }

  function LivePage(root) {
    this.root = root;
    this.socket = null;
    this.attempts = 0;
    this.sequences = {};
    this.refreshTimer = null;
    this.stopped = false;
    this.applied = 0;  /* events handled so far: a fragment fetched before the latest one may be older */
  }

  LivePage.prototype.setState = function (state) {
    var badge = document.getElementById("live-status");
    if (!badge) return;
    badge.dataset.liveState = state;
    badge.textContent = { open: "live", connecting: "connecting…", reconnecting: "reconnecting…",
                          denied: "no live updates", offline: "offline" }[state] || state;
  };

  LivePage.prototype.connect = function () {
    var self = this;
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    self.setState(self.attempts ? "reconnecting" : "connecting");
    var socket = new WebSocket(scheme + location.host + self.root.dataset.liveUrl);
    self.socket = socket;
    socket.onopen = function () { self.attempts = 0; self.setState("open"); };
    socket.onmessage = function (event) {
      var message;
      try { message = JSON.parse(event.data); } catch (error) { return; }
      self.handle(message);
    };
    socket.onclose = function (event) {
      if (self.socket !== socket) return;
      if (FINAL_CLOSE_CODES.indexOf(event.code) >= 0) { self.stopped = true; self.setState("denied"); return; }
      self.setState("reconnecting");
      var delay = Math.min(30000, 1000 * Math.pow(2, self.attempts)) * (0.75 + Math.random() * 0.5);
      self.attempts += 1;
      setTimeout(function () { self.connect(); }, delay);
    };
  };

  LivePage.prototype.handle = function (message) {
    if (message.type === "hello") {
      this.sequences = {};
      this.refresh();  /* whatever happened before this subscription started */
      return;
    }
    if (message.type !== "execution.changed") return;
    var id = message.executionId;
    var last = this.sequences[id];
    if (last !== undefined && message.sequence <= last) return;  /* a duplicate or an old message */
    var gap = last !== undefined && message.sequence > last + 1;
    this.sequences[id] = message.sequence;
    this.applied += 1;
    var shown = document.querySelector('[data-execution-id="' + id + '"]');
    var changed = shown ? applyChange(message) : false;
    if (!shown || gap || changed) this.refreshSoon();
  };

  /* An action's answer (an htmx swap) rendered before an event that arrived meanwhile may show an older
     state than the page did: read the page again. */
  LivePage.prototype.watchSwaps = function () {
    var self = this;
    document.addEventListener("htmx:beforeRequest", function (event) {
      if (event.detail.xhr) event.detail.xhr.liveApplied = self.applied;
    });
    document.addEventListener("htmx:afterSwap", function (event) {
      var applied = event.detail.xhr && event.detail.xhr.liveApplied;
      if (applied !== undefined && applied !== self.applied) self.refreshSoon();
    });
  };

  LivePage.prototype.refreshSoon = function () {
    var self = this;
    clearTimeout(self.refreshTimer);
    self.refreshTimer = setTimeout(function () { self.refresh(); }, 300);
  };

  LivePage.prototype.refresh = function () {
    var self = this;
    var target = document.querySelector(self.root.dataset.liveTarget);
    if (!target) return;
    if (isBusy(target)) {
      target.addEventListener("focusout", function () { self.refreshSoon(); }, { once: true });
      return;
    }
    var url = new URL(location.href);
    url.hash = "";
    url.searchParams.set("fragment", self.root.dataset.fragment);
    var applied = self.applied;
    fetch(url, { headers: { "X-Requested-With": "live.js" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html === null) return;
        /* An event arrived meanwhile: this fragment may predate it, so do not undo it; fetch again. */
        if (self.applied !== applied) { self.refreshSoon(); return; }
        var holder = document.createElement("template");
        holder.innerHTML = html.trim();
        var fresh = holder.content.firstElementChild;
        var current = document.querySelector(self.root.dataset.liveTarget);
        if (!fresh || !current || isBusy(current)) return;
        if (fresh.dataset.version && fresh.dataset.version === current.dataset.version) return;
        keepPreserved(current, fresh);
        current.replaceWith(fresh);
        if (window.htmx) window.htmx.process(fresh);
        tick();
      })
      .catch(function () { /* the socket's reconnect brings the next try */ });
  };

  /* A form loaded into a <dialog> (the Run form) opens it. */
  document.addEventListener("htmx:afterSwap", function (event) {
    var dialog = event.detail.target && event.detail.target.closest("dialog");
    if (dialog && !dialog.open) dialog.showModal();
  });

  document.addEventListener("DOMContentLoaded", function () {
    tick();
    setInterval(tick, 1000);
    var root = document.querySelector("[data-live-url]");
    if (!root || !("WebSocket" in window)) return;
    var live = new LivePage(root);
    live.watchSwaps();
    live.connect();
  });
})();
