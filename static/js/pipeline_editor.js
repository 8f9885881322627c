/*
 * The pipeline editor's stage editor: the same document as the text view, edited through forms.
 *
 * The page embeds the document (#pipeline-document) and every stage type with its declared fields
 * (#stage-types, the list GET /api/stage-types/ answers). Each stage's form is generated from its type's
 * fields, so a new stage type gets a form without a line here. Switching views converts through the
 * server (POST /pipelines/document/), which parses with the same rules as a save: the text view's edits
 * reach the forms, and the forms' edits reach the text, in YAML or JSON. The forms are validated as they
 * change (POST /api/pipelines/validate/), each problem shown at its field by its JSON pointer. Leaving
 * the page with unsaved changes asks first.
 */
(function () {
  "use strict";

  var TRIGGER_TYPES = ["git", "docker", "jenkins", "cron", "pipeline", "webhook"];
  var NOTIFICATION_TYPES = ["slack", "email", "webhook", "microsoftteams", "googlechat"];
  var NOTIFICATION_WHEN = ["pipeline.starting", "pipeline.complete", "pipeline.failed", "stage.starting",
    "stage.complete", "stage.failed", "manualJudgment"];
  // parameterConfig entries, triggers and notifications, declared as a stage type declares its fields.
  var PARAMETER_FIELDS = [
    {name: "name", kind: "string", label: "Name", required: true},
    {name: "label", kind: "string", label: "Label"},
    {name: "description", kind: "string", label: "Description"},
    {name: "default", kind: "string", label: "Default"},
    {name: "required", kind: "boolean", label: "Required", default: false},
    {name: "options", kind: "list", label: "Options", items: [{name: "value", kind: "string", label: "Value"}]}
  ];
  // A trigger's own fields come from its type's declaration (#trigger-types); these are every trigger's.
  var TRIGGER_FIELDS = [
    {name: "type", kind: "string", label: "Type", required: true, suggestions: TRIGGER_TYPES},
    {name: "enabled", kind: "boolean", label: "Enabled", default: true},
    {name: "runAsUser", kind: "string", label: "Run as", help: "A service account of your team (optional)."}
  ];
  var NOTIFICATION_FIELDS = [
    {name: "type", kind: "choice", label: "Type", required: true, choices: NOTIFICATION_TYPES},
    {name: "address", kind: "string", label: "Address", help: "A channel, an e-mail address or a URL."},
    {name: "when", kind: "checks", label: "When", choices: NOTIFICATION_WHEN}
  ];
  var STAGE_NOTIFICATION_WHEN = ["stage.starting", "stage.complete", "stage.failed", "manualJudgment",
    "manualJudgmentContinue", "manualJudgmentStop"];
  // What happens when a stage fails, as Deck offers it: each choice is a set of the three flags.
  var ON_FAILURE = [
    {value: "pipeline", text: "Halt the entire pipeline", flags: {}},
    {value: "branch", text: "Halt this branch of the pipeline", flags: {failPipeline: false}},
    {value: "branchThenFail", text: "Halt this branch and fail the pipeline once other branches complete",
      flags: {failPipeline: false, completeOtherBranchesThenFail: true}},
    {value: "ignore", text: "Ignore the failure", flags: {failPipeline: false, continuePipeline: true}}
  ];
  var WINDOW_FIELDS = [
    {name: "whitelist", kind: "list", label: "Allowed hours", items: [
      {name: "startHour", kind: "integer", label: "From hour", default: 9},
      {name: "startMin", kind: "integer", label: "min", default: 0},
      {name: "endHour", kind: "integer", label: "To hour", default: 17},
      {name: "endMin", kind: "integer", label: "min", default: 0}]},
    {name: "days", kind: "list", itemKind: "integer", label: "Days", help: "1 = Sunday ... 7 = Saturday; none: every day"}
  ];
  var NODE_W = 170, NODE_H = 44, COL_GAP = 50, ROW_GAP = 16, MARGIN = 12;

  var state = {doc: null, types: {}, triggerTypes: {}, optionsOpen: false, selected: null, view: "visual", docChanged: false, textChanged: false,
    unsaved: false, submitting: false, validateTimer: null, problems: []};
  var form, textarea;

  // --- Small helpers ------------------------------------------------------------------------------

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else if (key.slice(0, 2) === "on") node.addEventListener(key.slice(2), attrs[key]);
      else if (attrs[key] !== undefined && attrs[key] !== null && attrs[key] !== false) node.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  function svg(tag, attrs) {
    var node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    Object.keys(attrs).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    return node;
  }

  function pointer() {
    return Array.prototype.map.call(arguments, function (part) {
      return "/" + String(part).replace(/~/g, "~0").replace(/\//g, "~1");
    }).join("");
  }

  function csrf() { return form.querySelector("[name=csrfmiddlewaretoken]").value; }

  function post(url, body, contentType) {
    var headers = {"X-CSRFToken": csrf(), "Accept": "application/json"};
    if (contentType) headers["Content-Type"] = contentType;
    return fetch(url, {method: "POST", headers: headers, body: body, credentials: "same-origin"})
      .then(function (response) {
        return response.json().then(function (data) { return {ok: response.ok, data: data}; });
      });
  }

  function setKey(object, key, value) {
    if (value === undefined) delete object[key];
    else object[key] = value;
  }

  function asNumber(text, kind) {
    var trimmed = text.trim();
    if (trimmed === "") return undefined;
    var pattern = kind === "integer" ? /^-?\d+$/ : /^-?\d+(\.\d+)?$/;
    return pattern.test(trimmed) ? Number(trimmed) : trimmed;  // anything else is an expression
  }

  // --- Changes --------------------------------------------------------------------------------------

  function markUnsaved() {
    state.unsaved = true;
    var note = document.getElementById("unsaved-note");
    if (note) note.hidden = false;
  }

  function changed(structural) {
    state.docChanged = true;
    markUnsaved();
    drawGraph();
    if (structural) renderForms();
    clearTimeout(state.validateTimer);
    state.validateTimer = setTimeout(validate, 400);
  }

  function validate() {
    post(form.dataset.validateUrl, JSON.stringify(state.doc), "application/json").then(function (answer) {
      state.problems = answer.ok ? answer.data.errors || [] : [{pointer: "", message: "could not be validated"}];
      showProblems();
    });
  }

  function showProblems() {
    var list = document.getElementById("visual-problems");
    list.textContent = "";
    document.querySelectorAll("#visual-view .invalid").forEach(function (node) { node.classList.remove("invalid"); });
    state.problems.forEach(function (problem) {
      list.appendChild(el("li", {"data-pointer": problem.pointer}, [
        el("code", {"class": "pointer", text: problem.pointer || "/"}), document.createTextNode(" " + problem.message)
      ]));
      var control = findControl(problem.pointer);
      if (control) control.classList.add("invalid");
    });
    list.hidden = state.problems.length === 0;
    var valid = document.getElementById("visual-valid");
    valid.hidden = state.problems.length !== 0;
  }

  function findControl(where) {
    // The control at the pointer, or at its nearest parent that has one.
    for (var path = where; path; path = path.slice(0, path.lastIndexOf("/"))) {
      var control = document.querySelector('#visual-view [data-pointer="' + path.replace(/"/g, '\\"') + '"]');
      if (control) return control;
    }
    return null;
  }

  // --- The graph ------------------------------------------------------------------------------------

  function stages() { return Array.isArray(state.doc.stages) ? state.doc.stages : (state.doc.stages = []); }

  function requisites(stage) {
    return Array.isArray(stage.requisiteStageRefIds) ? stage.requisiteStageRefIds.map(String) : [];
  }

  function depths() {
    var byRef = {}, depth = {};
    stages().forEach(function (stage) { byRef[String(stage.refId)] = stage; });
    function depthOf(ref, visiting) {
      if (depth[ref] !== undefined) return depth[ref];
      if (visiting[ref]) return 0;  // a cycle: validation names it
      visiting[ref] = true;
      var parents = requisites(byRef[ref]).filter(function (r) { return byRef[r]; });
      depth[ref] = parents.length ? Math.max.apply(null, parents.map(function (r) { return depthOf(r, visiting); })) + 1 : 0;
      return depth[ref];
    }
    Object.keys(byRef).forEach(function (ref) { depthOf(ref, {}); });
    return depth;
  }

  function drawGraph() {
    var graph = document.getElementById("editor-graph");
    graph.textContent = "";
    var depth = depths(), rows = {}, place = {}, width = 0, height = 0;
    stages().forEach(function (stage, index) {
      var ref = String(stage.refId), column = depth[ref] || 0;
      var row = rows[column] = (rows[column] || 0) + 1;
      place[ref] = {x: MARGIN + column * (NODE_W + COL_GAP), y: MARGIN + (row - 1) * (NODE_H + ROW_GAP), index: index};
      width = Math.max(width, place[ref].x + NODE_W + MARGIN);
      height = Math.max(height, place[ref].y + NODE_H + MARGIN);
    });
    graph.setAttribute("width", width || 10);
    graph.setAttribute("height", height || 10);
    stages().forEach(function (stage) {
      var to = place[String(stage.refId)];
      requisites(stage).forEach(function (ref) {
        var from = place[ref];
        if (!from) return;
        var x1 = from.x + NODE_W, y1 = from.y + NODE_H / 2, x2 = to.x, y2 = to.y + NODE_H / 2, mid = (x1 + x2) / 2;
        graph.appendChild(svg("path", {"class": "edge", "data-from": ref, "data-to": String(stage.refId),
          d: "M" + x1 + "," + y1 + " C" + mid + "," + y1 + " " + mid + "," + y2 + " " + x2 + "," + y2}));
      });
    });
    stages().forEach(function (stage) {
      var ref = String(stage.refId), at = place[ref];
      var node = svg("g", {"class": "editor-node" + (state.selected === at.index ? " selected" : ""),
        "data-ref-id": ref, transform: "translate(" + at.x + "," + at.y + ")", tabindex: "0", role: "button"});
      node.appendChild(svg("rect", {width: NODE_W, height: NODE_H, rx: 4}));
      var name = svg("text", {x: 8, y: 18, "class": "node-name"});
      name.textContent = String(stage.name || "(unnamed)").slice(0, 24);
      var kind = svg("text", {x: 8, y: 35, "class": "node-type"});
      kind.textContent = (state.types[stage.type] || {}).label || stage.type || "(no type)";
      node.appendChild(name);
      node.appendChild(kind);
      node.addEventListener("click", function () { select(at.index); });
      node.addEventListener("keydown", function (event) { if (event.key === "Enter") select(at.index); });
      graph.appendChild(node);
    });
  }

  function select(index) {
    state.selected = index;
    drawGraph();
    renderStageForm();
  }

  // --- Controls generated from declared fields ----------------------------------------------------

  function fieldControl(field, value, onChange, where) {
    var kind = field.kind, id = "f" + where.replace(/[^A-Za-z0-9]/g, "_");
    var control;
    if (kind === "boolean") {
      var checked = value === undefined || value === null ? field.default === true : value === true || value === "true";
      control = el("input", {type: "checkbox", id: id, checked: checked, onchange: function () { onChange(control.checked); }});
    } else if (kind === "choice") {
      control = el("select", {id: id, onchange: function () { onChange(control.value === "" ? undefined : control.value); }});
      control.appendChild(el("option", {value: "", text: field.default ? "(default: " + field.default + ")" : "(none)"}));
      var choices = (field.choices || []).slice();
      if (value !== undefined && value !== null && value !== "" && choices.indexOf(String(value)) < 0) choices.push(String(value));
      choices.forEach(function (choice) {
        control.appendChild(el("option", {value: choice, text: choice, selected: String(value) === choice}));
      });
    } else if (kind === "checks") {
      return checksControl(field, value, onChange, where);
    } else if (kind === "list") {
      return field.items && field.items.length ? itemsControl(field, value, onChange, where) : linesControl(field, value, onChange, where, id);
    } else if (kind === "object") {
      control = jsonControl(value, onChange, id);
    } else if (kind === "text") {
      control = el("textarea", {id: id, rows: 3, oninput: function () { onChange(control.value === "" ? undefined : control.value); }});
      control.value = value === undefined || value === null ? "" : String(value);
    } else {
      var numeric = kind === "integer" || kind === "number";
      control = el("input", {type: "text", id: id, inputmode: numeric ? "decimal" : null,
        list: field.suggestions ? id + "-list" : null, placeholder: field.default !== undefined && field.default !== null ? String(field.default) : null,
        oninput: function () {
          onChange(numeric ? asNumber(control.value, kind) : control.value === "" ? undefined : control.value);
        }});
      control.value = value === undefined || value === null ? "" : typeof value === "object" ? JSON.stringify(value) : String(value);
    }
    control.setAttribute("data-pointer", where);
    control.setAttribute("data-field", field.name);
    var label = el("label", {"for": id, text: field.label || field.name}, [
      field.required ? el("span", {"class": "required", title: "required", text: " *"}) : null
    ]);
    var parts = [label, control];
    if (field.suggestions) {
      parts.push(el("datalist", {id: id + "-list"}, field.suggestions.map(function (s) { return el("option", {value: s}); })));
    }
    if (field.help) parts.push(el("div", {"class": "help", text: field.help}));
    var wide = kind === "text" || kind === "object";
    return el("div", {"class": "field" + (kind === "boolean" ? " boolean" : "") + (wide ? " wide" : "")}, parts);
  }

  function checksControl(field, value, onChange, where) {
    // A list whose items are chosen among known values, one checkbox each (unknown values kept).
    var chosen = Array.isArray(value) ? value.map(String) : [];
    var box = el("fieldset", {"class": "checks", "data-pointer": where, "data-field": field.name},
      [el("legend", {text: field.label || field.name})]);
    field.choices.concat(chosen.filter(function (c) { return field.choices.indexOf(c) < 0; })).forEach(function (choice) {
      var input = el("input", {type: "checkbox", value: choice, checked: chosen.indexOf(choice) >= 0, onchange: function () {
        chosen = chosen.filter(function (c) { return c !== choice; });
        if (input.checked) chosen.push(choice);
        onChange(chosen.length ? chosen : undefined);
      }});
      box.appendChild(el("label", {"class": "check"}, [input, document.createTextNode(" " + choice)]));
    });
    return box;
  }

  function jsonControl(value, onChange, id) {
    var control = el("textarea", {id: id, rows: 3, "class": "json", spellcheck: "false"});
    control.value = value === undefined || value === null ? "" : JSON.stringify(value, null, 2);
    control.addEventListener("input", function () {
      if (control.value.trim() === "") { control.classList.remove("invalid-json"); onChange(undefined); return; }
      try {
        var parsed = JSON.parse(control.value);
        control.classList.remove("invalid-json");
        control.title = "";
        onChange(parsed);
      } catch (error) {
        control.classList.add("invalid-json");  // the document keeps its last valid value meanwhile
        control.title = "Not valid JSON: " + error.message;
      }
    });
    return control;
  }

  function linesControl(field, value, onChange, where, id) {
    var control = el("textarea", {id: id, rows: 2, "data-pointer": where, "data-field": field.name});
    control.value = Array.isArray(value) ? value.map(String).join("\n") : value === undefined || value === null ? "" : String(value);
    control.addEventListener("input", function () {
      var items = control.value.split("\n").map(function (line) { return line.trim(); }).filter(Boolean);
      if (field.itemKind === "integer" || field.itemKind === "number") {
        items = items.map(function (item) { return asNumber(item, field.itemKind); });
      }
      onChange(items.length ? items : undefined);
    });
    return el("div", {"class": "field wide"}, [
      el("label", {"for": id, text: (field.label || field.name) + " (one per line)"}),
      control, field.help ? el("div", {"class": "help", text: field.help}) : null
    ]);
  }

  function itemsControl(field, value, onChange, where) {
    var list = Array.isArray(value) ? value : [];
    var box = el("div", {"class": "items", "data-pointer": where, "data-field": field.name});
    box.appendChild(el("div", {"class": "items-head"}, [
      el("strong", {text: field.label || field.name}),
      field.required ? el("span", {"class": "required", text: " *"}) : null,
      field.help ? el("span", {"class": "help", text: " " + field.help}) : null
    ]));
    list.forEach(function (item, index) {
      if (typeof item !== "object" || item === null) {  // a plain value, as ["promote", "hold"]: its one field
        item = list[index] = (function (o) { o[field.items[0].name] = item; return o; })({});
      }
      var row = el("div", {"class": "item", "data-index": index});
      field.items.forEach(function (sub) {
        row.appendChild(fieldControl(sub, item[sub.name], function (v) { setKey(item, sub.name, v); onChange(list); },
          where + pointer(index, sub.name)));
      });
      row.appendChild(el("button", {type: "button", "class": "link danger remove-item", text: "Remove",
        onclick: function () { list.splice(index, 1); onChange(list.length ? list : undefined, true); }}));
      box.appendChild(row);
    });
    box.appendChild(el("button", {type: "button", "class": "add-item", "data-add": field.name,
      text: "Add " + (field.label || field.name).replace(/s$/, "").toLowerCase(),
      onclick: function () {
        var fresh = {};
        field.items.forEach(function (sub) { if (sub.default !== undefined && sub.default !== null) fresh[sub.name] = sub.default; });
        list.push(fresh);
        onChange(list, true);
      }}));
    return box;
  }

  // --- The selected stage's form ---------------------------------------------------------------------

  function nextRefId() {
    var highest = 0;
    stages().forEach(function (stage) { var n = parseInt(stage.refId, 10); if (n > highest) highest = n; });
    return String(highest + 1);
  }

  function downstreamOf(ref) {
    // Stages that wait, directly or not, on ref: choosing one of them as a requisite would make a cycle.
    var found = {}, grew = true;
    found[ref] = true;
    while (grew) {
      grew = false;
      stages().forEach(function (stage) {
        var own = String(stage.refId);
        if (!found[own] && requisites(stage).some(function (r) { return found[r]; })) { found[own] = grew = true; }
      });
    }
    return found;
  }

  function addStage() {
    var type = document.getElementById("add-stage-type").value, described = state.types[type] || {fields: []};
    var stage = {refId: nextRefId(), name: described.label || type, type: type, requisiteStageRefIds: []};
    var after = stages()[state.selected];
    if (after) stage.requisiteStageRefIds.push(String(after.refId));
    described.fields.forEach(function (field) {
      if (field.required && field.default !== null && field.default !== undefined) stage[field.name] = field.default;
    });
    stages().push(stage);
    state.selected = stages().length - 1;
    changed(true);
  }

  function removeStage(index) {
    var ref = String(stages()[index].refId);
    stages().splice(index, 1);
    stages().forEach(function (stage) {
      if (Array.isArray(stage.requisiteStageRefIds)) {
        stage.requisiteStageRefIds = stage.requisiteStageRefIds.filter(function (r) { return String(r) !== ref; });
      }
    });
    state.selected = null;
    changed(true);
  }

  function typeSelect(stage, where) {
    var control = el("select", {id: "stage-type", "data-pointer": where + "/type", onchange: function () {
      stage.type = control.value;
      changed(true);
    }});
    var names = Object.keys(state.types);
    if (names.indexOf(stage.type) < 0) names.push(stage.type);
    names.forEach(function (name) {
      control.appendChild(el("option", {value: name, text: (state.types[name] || {}).label || name, selected: name === stage.type}));
    });
    return el("div", {"class": "field"}, [el("label", {"for": "stage-type", text: "Type"}), control]);
  }

  function dependsOn(stage, where) {
    var excluded = downstreamOf(String(stage.refId)), box = el("fieldset", {"class": "depends-on", id: "depends-on",
      "data-pointer": where + "/requisiteStageRefIds"}, [el("legend", {text: "Depends on"})]);
    stages().forEach(function (other) {
      var ref = String(other.refId);
      if (excluded[ref]) return;
      var input = el("input", {type: "checkbox", value: ref, checked: requisites(stage).indexOf(ref) >= 0,
        onchange: function () {
          var chosen = requisites(stage).filter(function (r) { return r !== ref; });
          if (input.checked) chosen.push(ref);
          stage.requisiteStageRefIds = chosen;
          changed(false);
        }});
      box.appendChild(el("label", {"class": "check"}, [input, document.createTextNode(" " + (other.name || ref))]));
    });
    if (box.children.length === 1) box.appendChild(el("span", {"class": "muted small", text: "No other stage it could wait on."}));
    return box;
  }

  function renderStageForm() {
    var holder = document.getElementById("stage-form");
    holder.textContent = "";
    var stage = stages()[state.selected];
    if (!stage) {
      holder.appendChild(el("p", {"class": "muted", text: stages().length ? "Choose a stage in the graph to edit it." :
        "No stages yet: add the first one."}));
      return;
    }
    var where = pointer("stages", state.selected), described = state.types[stage.type];
    holder.appendChild(el("h3", {text: "Stage " + stage.refId}));
    holder.appendChild(fieldControl({name: "name", kind: "string", label: "Name"}, stage.name, function (v) {
      setKey(stage, "name", v); changed(false);
    }, where + "/name"));
    holder.appendChild(typeSelect(stage, where));
    holder.appendChild(dependsOn(stage, where));
    if (!described) {
      holder.appendChild(el("p", {"class": "muted", text: "Unknown stage type: edit its settings in the text view."}));
    } else {
      if (described.description) holder.appendChild(el("p", {"class": "muted small", text: described.description}));
      var grid = holder.appendChild(el("div", {"class": "fields-grid"}));
      described.fields.forEach(function (field) {
        grid.appendChild(fieldControl(field, stage[field.name], function (value, structural) {
          setKey(stage, field.name, value);
          changed(structural);
        }, where + pointer(field.name)));
      });
    }
    holder.appendChild(stageOptions(stage, where, described ? described.fields : []));
    holder.appendChild(el("button", {type: "button", "class": "danger", id: "remove-stage", text: "Remove stage",
      onclick: function () { removeStage(state.selected); }}));
    showProblems();
  }

  // --- Options every stage has (Orca's): when it runs, what its failure does, timeout, window, notices --

  function onFailureOf(stage) {
    if (stage.continuePipeline === true) return "ignore";
    if (stage.failPipeline === false) return stage.completeOtherBranchesThenFail === true ? "branchThenFail" : "branch";
    return "pipeline";
  }

  function failureControl(stage, where) {
    var control = el("select", {id: "opt-onFailure", "data-pointer": where + "/failPipeline", onchange: function () {
      ["failPipeline", "continuePipeline", "completeOtherBranchesThenFail"].forEach(function (k) { delete stage[k]; });
      var picked = ON_FAILURE.filter(function (o) { return o.value === control.value; })[0];
      Object.keys(picked.flags).forEach(function (k) { stage[k] = picked.flags[k]; });
      changed(false);
    }});
    ON_FAILURE.forEach(function (option) {
      control.appendChild(el("option", {value: option.value, text: option.text, selected: option.value === onFailureOf(stage)}));
    });
    return el("div", {"class": "field wide"}, [el("label", {"for": "opt-onFailure", text: "If the stage fails"}), control]);
  }

  function stageOptions(stage, where, declared) {
    var own = declared.map(function (f) { return f.name; });
    var box = el("details", {"class": "stage-options", id: "stage-options", open: state.optionsOpen ? "open" : null,
      ontoggle: function () { state.optionsOpen = box.open; }}, [el("summary", {text: "Execution options"})]);
    var grid = box.appendChild(el("div", {"class": "fields-grid"}));
    function add(field, value, onChange, at) {
      if (own.indexOf(field.name) < 0) grid.appendChild(fieldControl(field, value, onChange, at || where + pointer(field.name)));
    }
    var enabled = stage.stageEnabled && typeof stage.stageEnabled === "object" ? stage.stageEnabled.expression : undefined;
    add({name: "stageEnabled", kind: "string", label: "Run only when",
      help: "An expression, e.g. ${parameters.env == 'prod'}; empty: always."}, enabled, function (v) {
      setKey(stage, "stageEnabled", v === undefined ? undefined : {type: "expression", expression: v});
      changed(false);
    }, where + "/stageEnabled/expression");
    grid.appendChild(failureControl(stage, where));
    add({name: "stageTimeoutMs", kind: "integer", label: "Timeout (ms)", help: "Empty: the stage type's own."},
      stage.stageTimeoutMs, function (v) {
        setKey(stage, "stageTimeoutMs", v);
        setKey(stage, "overrideTimeout", v === undefined ? undefined : true);
        changed(false);
      });
    add({name: "restrictExecutionDuringTimeWindow", kind: "boolean", label: "Run only in a time window"},
      stage.restrictExecutionDuringTimeWindow, function (v) {
        setKey(stage, "restrictExecutionDuringTimeWindow", v ? true : undefined);
        if (v && !stage.restrictedExecutionWindow) stage.restrictedExecutionWindow = {whitelist: [{startHour: 9, startMin: 0, endHour: 17, endMin: 0}]};
        if (!v) delete stage.restrictedExecutionWindow;
        changed(true);
      });
    if (stage.restrictExecutionDuringTimeWindow === true) {
      var window = stage.restrictedExecutionWindow && typeof stage.restrictedExecutionWindow === "object" ?
        stage.restrictedExecutionWindow : (stage.restrictedExecutionWindow = {});
      WINDOW_FIELDS.forEach(function (field) {
        grid.appendChild(fieldControl(field, window[field.name], function (v, structural) {
          setKey(window, field.name, v); changed(structural);
        }, where + pointer("restrictedExecutionWindow", field.name)));
      });
    }
    add({name: "sendNotifications", kind: "boolean", label: "Send notifications for this stage"},
      stage.sendNotifications, function (v) { setKey(stage, "sendNotifications", v ? true : undefined); changed(true); });
    if (stage.sendNotifications === true) {
      add({name: "notifications", kind: "list", label: "Stage notifications", items: NOTIFICATION_FIELDS.map(function (f) {
        return f.name === "when" ? {name: "when", kind: "checks", label: "When", choices: STAGE_NOTIFICATION_WHEN} : f;
      })}, stage.notifications, function (v, structural) { setKey(stage, "notifications", v); changed(structural); });
    }
    add({name: "comments", kind: "text", label: "Comments", help: "Shown with the stage; expressions allowed."},
      stage.comments, function (v) { setKey(stage, "comments", v); changed(false); });
    return box;
  }

  // --- Parameters, triggers, notifications -----------------------------------------------------------

  function restOf(item, known) {
    var rest = {};
    Object.keys(item).forEach(function (key) { if (known.indexOf(key) < 0) rest[key] = item[key]; });
    return rest;
  }

  function entriesForm(holderId, key, common, label, ownFields) {
    var holder = document.getElementById(holderId);
    holder.textContent = "";
    var list = Array.isArray(state.doc[key]) ? state.doc[key] : [];
    list.forEach(function (item, index) {
      if (typeof item !== "object" || item === null || Array.isArray(item)) return;  // validation names it
      var fields = common.concat(ownFields ? ownFields(item) : []);
      var known = fields.map(function (f) { return f.name; });
      var withRest = fields.concat(key === "parameterConfig" || !Object.keys(restOf(item, known)).length ? [] :
        [{name: "__rest", kind: "object", label: "Other settings (JSON)",
          help: "Keys the form does not show, in Spinnaker's shape."}]);
      var row = el("div", {"class": "item entry", "data-index": index});
      withRest.forEach(function (field) {
        var isRest = field.name === "__rest";
        var value = isRest ? restOf(item, known) : item[field.name];
        if (isRest && !Object.keys(value).length) value = undefined;
        row.appendChild(fieldControl(field, value, function (v, structural) {
          if (field.name === "type" && key === "triggers") structural = true;  // its own fields change
          if (isRest) {
            Object.keys(restOf(item, known)).forEach(function (k) { delete item[k]; });
            if (v && typeof v === "object" && !Array.isArray(v)) Object.keys(v).forEach(function (k) { if (known.indexOf(k) < 0) item[k] = v[k]; });
          } else setKey(item, field.name, v);
          changed(false);
          if (structural) renderForms();
        }, pointer(key, index) + (isRest ? "" : pointer(field.name))));
      });
      row.appendChild(el("button", {type: "button", "class": "link danger remove-item", text: "Remove",
        onclick: function () { list.splice(index, 1); changed(true); }}));
      holder.appendChild(row);
    });
    holder.appendChild(el("button", {type: "button", "class": "add-item", "data-add": key, text: "Add " + label,
      onclick: function () {
        var fresh = {};
        common.forEach(function (f) { if (f.default !== undefined && f.default !== null && f.kind !== "boolean") fresh[f.name] = f.default; });
        if (key === "triggers") fresh.enabled = true;
        state.doc[key] = list;
        list.push(fresh);
        changed(true);
      }}));
  }

  function renderForms() {
    renderStageForm();
    entriesForm("parameters-form", "parameterConfig", PARAMETER_FIELDS, "parameter");
    entriesForm("triggers-form", "triggers", TRIGGER_FIELDS, "trigger", function (trigger) {
      return state.triggerTypes[trigger.type] || [];
    });
    entriesForm("notifications-form", "notifications", NOTIFICATION_FIELDS, "notification");
    showProblems();
  }

  // --- The two views of one document ----------------------------------------------------------------

  function format() { return form.querySelector("[name=format]").value || "yaml"; }

  function syncText() {
    // The forms' document written into the text area, in the chosen format.
    if (!state.docChanged) return Promise.resolve(true);
    var body = new FormData();
    body.append("document", JSON.stringify(state.doc));
    body.append("format", format());
    return post(form.dataset.documentUrl, body).then(function (answer) {
      if (!answer.ok) return false;
      textarea.value = answer.data.text;
      textarea.dispatchEvent(new Event("renumber"));
      state.docChanged = false;
      state.textChanged = false;
      return true;
    });
  }

  function syncDocument() {
    // The text area's text read into the forms; a text that does not parse keeps the text view, with its problems.
    if (!state.textChanged && state.doc) return Promise.resolve(true);
    var body = new FormData();
    body.append("text", textarea.value);
    return post(form.dataset.documentUrl, body).then(function (answer) {
      var problems = document.getElementById("switch-problems");
      problems.textContent = "";
      if (!answer.ok) {
        (answer.data.problems || []).forEach(function (p) {
          problems.appendChild(el("li", {"data-pointer": p.pointer}, [
            p.line ? el("span", {text: "line " + p.line + " "}) : null,
            el("code", {"class": "pointer", text: p.pointer || "/"}), document.createTextNode(" " + p.message)]));
        });
        problems.hidden = false;
        return false;
      }
      problems.hidden = true;
      state.doc = answer.data.document;
      state.textChanged = false;
      state.docChanged = false;
      if (state.selected !== null && !stages()[state.selected]) state.selected = null;
      return true;
    });
  }

  function showView(view) {
    var switched = view === "text" ? syncText() : syncDocument();
    return switched.then(function (ok) {
      if (!ok) return;
      state.view = view;
      form.querySelector("[name=view]").value = view;
      document.getElementById("visual-view").hidden = view !== "visual";
      document.getElementById("text-view").hidden = view !== "text";
      document.querySelectorAll("[data-view]").forEach(function (button) {
        button.classList.toggle("on", button.dataset.view === view);
        button.setAttribute("aria-pressed", button.dataset.view === view ? "true" : "false");
      });
      if (view === "visual") { drawGraph(); renderForms(); validate(); }
    });
  }

  function onSubmit(event) {
    // Validate, save and the format buttons send the text: bring the forms' edits into it first.
    if (state.view === "visual" && state.docChanged) {
      event.preventDefault();
      var submitter = event.submitter;
      syncText().then(function (ok) { if (ok) form.requestSubmit(submitter); });
      return;
    }
    state.submitting = true;
  }

  function setUp() {
    form = document.getElementById("editor-form");
    textarea = document.getElementById("pipeline-text");
    var typesData = document.getElementById("stage-types"), docData = document.getElementById("pipeline-document");
    if (!form || !typesData || !docData) return;
    JSON.parse(typesData.textContent).forEach(function (type) { state.types[type.type] = type; });
    var triggerData = document.getElementById("trigger-types");
    if (triggerData) {
      state.triggerTypes = JSON.parse(triggerData.textContent) || {};
      TRIGGER_FIELDS[0] = {name: "type", kind: "choice", label: "Type", required: true, choices: Object.keys(state.triggerTypes)};
    }
    state.doc = JSON.parse(docData.textContent);
    state.textChanged = state.doc === null;
    if (form.dataset.unsaved === "true") markUnsaved();
    var typeMenu = document.getElementById("add-stage-type");
    Object.keys(state.types).forEach(function (name) {
      typeMenu.appendChild(el("option", {value: name, text: state.types[name].label}));
    });
    document.getElementById("add-stage").addEventListener("click", addStage);
    document.querySelectorAll("[data-view]").forEach(function (button) {
      button.addEventListener("click", function () { showView(button.dataset.view); });
    });
    textarea.addEventListener("input", function () { state.textChanged = true; markUnsaved(); });
    form.addEventListener("submit", onSubmit);
    window.addEventListener("beforeunload", function (event) {
      if (state.unsaved && !state.submitting) { event.preventDefault(); event.returnValue = ""; }
    });
    if (state.doc && stages().length) state.selected = 0;
    showView(form.querySelector("[name=view]").value === "text" || state.doc === null ? "text" : "visual");
  }

  document.addEventListener("DOMContentLoaded", setUp);
})();
