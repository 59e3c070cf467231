/* Durable dashboard: graph view (fit, pan, zoom, follow), live node states, JSON viewers,
   row selection. No dependencies besides htmx; everything works without it, only less. */
(function () {
  "use strict";

  var MAX_SCALE = 2;       // zoomed in, a drawing px is at most this many screen px
  var MIN_HEIGHT = 320;    // the graph's box is never shorter than this
  var SIDE_MIN = 320;      // room kept for the side column beside the graph on wide screens
  var WIDE = 900;          // narrower than this, the graph and the side column stack

  /* ---- the graph ------------------------------------------------------------------ */

  function graphOf(root) {
    var box = root.querySelector ? root.querySelector("#graph") : null;
    if (!box && root.id === "graph") box = root;
    return box;
  }

  function setupGraph(box) {
    var svg = box.querySelector("svg");
    if (!svg || box.__durableGraph) return;
    var full = svg.viewBox.baseVal;
    var state = {
      box: box,
      svg: svg,
      full: { x: full.x, y: full.y, w: full.width, h: full.height },
      view: { x: full.x, y: full.y, w: full.width, h: full.height },
      panel: box.closest(".graph-panel"),
    };
    box.__durableGraph = state;
    size(state);
    show(state, state.full);
    var drag = null;
    svg.addEventListener("pointerdown", function (event) {
      if (event.button !== 0 || !isZoomed(state)) return;
      drag = { x: event.clientX, y: event.clientY, view: copy(state.view) };
      svg.setPointerCapture(event.pointerId);
      box.classList.add("dragging");
    });
    svg.addEventListener("pointermove", function (event) {
      if (!drag) return;
      var k = state.view.w / svg.clientWidth;
      show(state, {
        x: drag.view.x - (event.clientX - drag.x) * k,
        y: drag.view.y - (event.clientY - drag.y) * k,
        w: drag.view.w,
        h: drag.view.h,
      });
      following(state, false);
    });
    function endDrag() {
      drag = null;
      box.classList.remove("dragging");
    }
    svg.addEventListener("pointerup", endDrag);
    svg.addEventListener("pointercancel", endDrag);
    box.addEventListener(
      "wheel",
      function (event) {
        // A plain wheel scrolls the page; Ctrl + wheel (and a trackpad's pinch) zooms.
        if (!event.ctrlKey && !event.metaKey) return;
        event.preventDefault();
        var rect = svg.getBoundingClientRect();
        var at = {
          x: state.view.x + ((event.clientX - rect.left) / rect.width) * state.view.w,
          y: state.view.y + ((event.clientY - rect.top) / rect.height) * state.view.h,
        };
        zoom(state, event.deltaY < 0 ? 1.25 : 0.8, at);
      },
      { passive: false }
    );
    box.addEventListener("keydown", function (event) {
      if (event.key === "+" || event.key === "=") zoom(state, 1.25);
      else if (event.key === "-") zoom(state, 0.8);
      else if (event.key === "0") show(state, state.full);
      else return;
      event.preventDefault();
    });
    var tools = state.panel && state.panel.querySelector(".graph-tools");
    if (tools) {
      tools.addEventListener("click", function (event) {
        var action = event.target.getAttribute && event.target.getAttribute("data-graph");
        if (action === "zoom-in") zoom(state, 1.5);
        else if (action === "zoom-out") zoom(state, 1 / 1.5);
        else if (action === "fit") show(state, state.full);
        else return;
        follow_(state);
      });
      var follow = tools.querySelector('[data-graph="follow"]');
      if (follow) follow.addEventListener("change", function () { follow.checked && follow_(state); });
    }
    follow_(state);
  }

  function copy(v) { return { x: v.x, y: v.y, w: v.w, h: v.h }; }

  function isZoomed(state) { return state.view.w < state.full.w - 0.5; }

  /* The box: the whole drawing at the largest scale that fits between the box's top and
     the bottom of the window, and in the row's width (leaving the side column its room),
     never enlarged past 1.25. */
  function size(state) {
    var row = state.panel && state.panel.parentElement;
    var width = row ? row.clientWidth : state.box.clientWidth;
    var wide = window.innerWidth >= WIDE;
    var panelPad = state.panel ? state.panel.offsetWidth - state.box.clientWidth : 0;
    var room = (wide ? width - SIDE_MIN - 16 : width) - Math.max(panelPad, 0);
    var top = state.box.getBoundingClientRect().top + window.scrollY;
    var height = Math.max(MIN_HEIGHT, window.innerHeight - top - 28);
    var scale = Math.min(room / state.full.w, height / state.full.h, 1.25);
    var w = Math.floor(state.full.w * scale);
    state.svg.style.width = w + "px";
    state.svg.style.height = Math.floor(state.full.h * scale) + "px";
    // Beside the side column the panel is as wide as the drawing; stacked, it is full width.
    if (state.panel) state.panel.style.width = wide ? w + Math.max(panelPad, 0) + "px" : "";
  }

  function show(state, view) {
    var full = state.full;
    var w = Math.min(view.w, full.w), h = Math.min(view.h, full.h);
    var x = Math.max(full.x, Math.min(view.x, full.x + full.w - w));
    var y = Math.max(full.y, Math.min(view.y, full.y + full.h - h));
    state.view = { x: x, y: y, w: w, h: h };
    state.svg.setAttribute("viewBox", [x, y, w, h].join(" "));
    state.box.classList.toggle("zoomed", isZoomed(state));
    state.box.setAttribute("data-zoom", (full.w / w).toFixed(2));
  }

  function zoom(state, factor, at) {
    var v = state.view;
    var smallest = Math.min(state.full.w, state.svg.clientWidth / MAX_SCALE);
    var w = Math.max(smallest, Math.min(state.full.w, v.w / factor));
    var h = (w / state.full.w) * state.full.h;
    at = at || { x: v.x + v.w / 2, y: v.y + v.h / 2 };
    show(state, {
      x: at.x - ((at.x - v.x) / v.w) * w,
      y: at.y - ((at.y - v.y) / v.h) * h,
      w: w,
      h: h,
    });
  }

  function following(state, on) {
    var follow = state.panel && state.panel.querySelector('[data-graph="follow"]');
    if (!follow) return false;
    if (on === false) follow.checked = false;
    return follow.checked;
  }

  /* Keep the running node in view: when it is outside the view, centre the view on it. */
  function follow_(state) {
    if (!following(state)) return;
    var node = state.svg.querySelector("g.node.active");
    if (!node) return;
    var b = node.getBBox(), v = state.view;
    var inside = b.x >= v.x && b.y >= v.y && b.x + b.width <= v.x + v.w && b.y + b.height <= v.y + v.h;
    if (inside) return;
    show(state, { x: b.x + b.width / 2 - v.w / 2, y: b.y + b.height / 2 - v.h / 2, w: v.w, h: v.h });
  }

  /* ---- live node states ----------------------------------------------------------- */

  var SVGNS = "http://www.w3.org/2000/svg";

  function applyNodeStates(root) {
    var states = document.getElementById("graph-states");
    var box = document.getElementById("graph");
    if (!states || !box) return;
    var svg = box.querySelector("svg");
    if (!svg) return;
    states.querySelectorAll("i[data-node-id]").forEach(function (el) {
      var id = el.getAttribute("data-node-id");
      var node = svg.querySelector('g.node[data-node-id="' + CSS.escape(id) + '"]');
      if (!node) return;
      var status = el.getAttribute("data-status");
      Array.prototype.slice.call(node.classList).forEach(function (c) {
        if (c.indexOf("status-") === 0) node.classList.remove(c);
      });
      if (status) node.classList.add("status-" + status);
      node.classList.toggle("active", el.hasAttribute("data-active"));
      var title = node.querySelector("title");
      var label = node.querySelector("text");
      if (title && label) title.textContent = label.textContent + (status ? " (" + status + ")" : "");
      progressBar(node, el);
    });
    if (box.__durableGraph) follow_(box.__durableGraph);
  }

  function progressBar(node, el) {
    var bar = node.querySelector("g.progress");
    var shape = node.querySelector(".shape");
    var text = node.querySelector("text");
    var fraction = el.getAttribute("data-fraction");
    if (fraction === null || !shape) {
      if (bar) bar.remove();
      if (text && shape && bar) text.setAttribute("y", centre(shape).y);
      return;
    }
    var c = centre(shape);
    var half = shape.getBBox().width / 2 - (node.classList.contains("type-foreach") ? 22 : 12);
    if (!bar) {
      bar = document.createElementNS(SVGNS, "g");
      bar.setAttribute("class", "progress");
      bar.appendChild(document.createElementNS(SVGNS, "title"));
      ["track", "bar"].forEach(function (name) {
        var rect = document.createElementNS(SVGNS, "rect");
        rect.setAttribute("class", name);
        rect.setAttribute("x", c.x - half);
        rect.setAttribute("y", c.y + 9);
        rect.setAttribute("height", 6);
        rect.setAttribute("rx", 3);
        bar.appendChild(rect);
      });
      bar.querySelector(".track").setAttribute("width", 2 * half);
      node.appendChild(bar);
    }
    var done = el.getAttribute("data-done"), total = el.getAttribute("data-total");
    bar.setAttribute("data-done", done);
    bar.setAttribute("data-total", total);
    bar.querySelector("title").textContent = done + " / " + total;
    bar.querySelector(".bar").setAttribute("width", (2 * half * parseFloat(fraction)).toFixed(1));
    if (text) text.setAttribute("y", c.y - 6);
  }

  function centre(shape) {
    var b = shape.getBBox();
    return { x: b.x + b.width / 2, y: b.y + b.height / 2 };
  }

  /* ---- JSON viewers --------------------------------------------------------------- */

  function copyText(text, button) {
    function done(ok) {
      var label = button.textContent;
      button.textContent = ok ? "Copied" : "Copy failed";
      button.setAttribute("data-copied", ok ? "1" : "0");
      setTimeout(function () { button.textContent = label; }, 1500);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { done(true); }, function () { fallback(); });
    } else {
      fallback();
    }
    function fallback() {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      area.remove();
      done(ok);
    }
  }

  /* A whole tree is its own copy: each key and scalar is a JSON literal. */
  function keyOf(el) {
    var key = el.querySelector(":scope > .jv-key");
    return key ? key.textContent : null;
  }

  function valueOf(el) {
    if (el.tagName === "DETAILS") {
      var summary = el.querySelector(":scope > summary");
      var key = keyOf(summary);
      var opener = summary.textContent.slice(key === null ? 0 : key.length + 2).trim()[0];
      var children = Array.prototype.filter.call(el.children, function (c) { return c !== summary; });
      if (opener === "[") return children.map(valueOf);
      var object = Object.create(null);  // so a key "__proto__" is a key like any other
      children.forEach(function (child) {
        var head = child.tagName === "DETAILS" ? child.querySelector(":scope > summary") : child;
        object[JSON.parse(keyOf(head))] = valueOf(child);
      });
      return object;
    }
    var k = keyOf(el);
    return JSON.parse(el.textContent.slice(k === null ? 0 : k.length + 2));
  }

  function viewerText(viewer) {
    var full = viewer.querySelector("template.jv-text");
    if (full) return full.content.textContent;
    var root = viewer.querySelector(".jv-tree").firstElementChild;
    return JSON.stringify(valueOf(root), null, 2);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-jv]");
    if (!button) return;
    var viewer = button.closest(".json-view");
    if (!viewer) return;
    var action = button.getAttribute("data-jv");
    if (action === "copy") {
      copyText(viewerText(viewer), button);
    } else {
      viewer.querySelectorAll("details.jv-node").forEach(function (d) { d.open = action === "expand"; });
    }
  });

  /* ---- the list's counts per status keep the status filter in step ------------------- */

  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest(".status-counts a[data-status]");
    var select = document.getElementById("id_status");
    if (link && select) select.value = link.getAttribute("data-status");
  });

  /* ---- row selection on the list (kept while the table refetches itself) ----------- */

  var selected = new Set();

  function syncSelection() {
    var boxes = document.querySelectorAll("#execution-table .row-select");
    var form = document.getElementById("selection-form");
    if (!form) return;
    boxes.forEach(function (box) { box.checked = selected.has(box.value); });
    var onPage = Array.prototype.filter.call(boxes, function (b) { return b.checked; }).length;
    var all = document.querySelector("#execution-table .select-all");
    if (all) {
      all.checked = boxes.length > 0 && onPage === boxes.length;
      all.indeterminate = onPage > 0 && onPage < boxes.length;
    }
    // What is submitted is what is checked on this page.
    document.getElementById("selection-count").textContent = onPage;
    form.classList.toggle("empty", onPage === 0);
    form.querySelectorAll("button[data-action]").forEach(function (b) { b.disabled = onPage === 0; });
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.classList && target.classList.contains("row-select")) {
      if (target.checked) selected.add(target.value); else selected.delete(target.value);
      syncSelection();
    } else if (target.classList && target.classList.contains("select-all")) {
      document.querySelectorAll("#execution-table .row-select").forEach(function (box) {
        if (target.checked) selected.add(box.value); else selected.delete(box.value);
      });
      syncSelection();
    }
  });

  document.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest('[data-selection="clear"]')) {
      selected.clear();
      syncSelection();
    }
  });

  /* ---- wiring ----------------------------------------------------------------------- */

  function init(root) {
    var box = graphOf(root || document);
    if (box) setupGraph(box);
    applyNodeStates(root || document);
    syncSelection();
  }

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:load", function (event) { init(event.target); });
  document.addEventListener("htmx:oobAfterSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (target && (target.id === "graph-states" || (target.closest && target.closest("#graph-states")))) {
      applyNodeStates(document);
    }
  });
  window.addEventListener("resize", function () {
    var box = document.getElementById("graph");
    if (box && box.__durableGraph) {
      size(box.__durableGraph);
    }
  });
})();
