/* Flask-Observe: the History panel follows this page's own fetch() and
 * XMLHttpRequest calls. A response naming its report in X-Observe-Report gets its
 * row from the JSON API, inserted in the panel's table (newest first, by the time
 * the request completed) without a reload.
 *
 * Installed once per page (a second copy of this script does nothing). Our own calls
 * to the API go through the original fetch and carry no X-Observe-Report, so they are
 * never followed (no request loops). Cross-origin calls and responses without the
 * header are left alone, silently. Served as a file by our blueprint: no inline script.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.flObserveHistory) {
    return;
  }
  var api = script.getAttribute("data-api");
  var originalFetch = window.fetch ? window.fetch.bind(window) : null;
  var state = { seen: {}, followed: 0 };
  window.flObserveHistory = state;
  var RETRIES = [100, 300, 900, 2700];  // a stream's report is kept once its body is closed
  var SVG = "http://www.w3.org/2000/svg";

  function sameOrigin(url) {
    try {
      return new URL(url, window.location.href).origin === window.location.origin;
    } catch (error) {
      return false;
    }
  }

  function reportId(header) {
    var path = header.split("?")[0].replace(/\/+$/, "");
    return decodeURIComponent(path.slice(path.lastIndexOf("/") + 1));
  }

  function cell(row, text, className) {
    var td = document.createElement("td");
    if (className) {
      td.className = className;
    }
    if (text !== null) {
      td.textContent = text;
    }
    row.appendChild(td);
    return td;
  }

  function formatMs(ms) {
    return ms === null ? "\u2013" : ms.toFixed(3) + " ms";
  }

  function formatBytes(value) {
    if (value === null || value === undefined) {
      return "\u2013";
    }
    var sign = value > 0 ? "+" : value < 0 ? "-" : "";
    var size = Math.abs(value);
    var units = ["B", "KiB", "MiB", "GiB"];
    var unit = 0;
    while (size >= 1024 && unit < units.length - 1) {
      size /= 1024;
      unit += 1;
    }
    return sign + (unit === 0 ? size.toFixed(0) : size.toFixed(1)) + " " + units[unit];
  }

  function rescale(table) {
    var width = parseFloat(table.getAttribute("data-bar-width")) || 120;
    var rows = table.tBodies[0].rows;
    var slowest = 0;
    var index;
    for (index = 0; index < rows.length; index += 1) {
      slowest = Math.max(slowest, parseFloat(rows[index].getAttribute("data-ms")) || 0);
    }
    for (index = 0; index < rows.length; index += 1) {
      var row = rows[index];
      var ms = parseFloat(row.getAttribute("data-ms")) || 0;
      var toolbarMs = parseFloat(row.getAttribute("data-toolbar-ms")) || 0;
      var bar = Math.max(slowest > 0 ? (ms / slowest) * width : 0, 1);
      var rect = row.querySelector("svg.observe-bar rect");
      var toolbar = row.querySelector("svg.observe-bar rect.observe-bar-toolbar");
      if (rect) {
        rect.setAttribute("width", String(bar));
      }
      if (toolbar) {
        var part = Math.min(slowest > 0 ? (toolbarMs / slowest) * width : 0, bar);
        toolbar.setAttribute("width", String(part));
        toolbar.setAttribute("x", String(bar - part));
      }
    }
  }

  function insert(data) {
    var table = document.getElementById("observe-history-table");
    if (!table || table.querySelector('tr[data-id="' + CSS.escape(data.id) + '"]')) {
      return;
    }
    var row = document.createElement("tr");
    row.className = "observe-live" + (data.error || data.status >= 500 ? " observe-error" : "");
    row.setAttribute("data-id", data.id);
    row.setAttribute("data-ms", String(data.duration_ms || 0));
    row.setAttribute("data-toolbar-ms", String(data.toolbar_ms || 0));
    cell(row, data.at.slice(11, 19));
    var link = document.createElement("a");
    link.href = data.report_url;
    link.target = "_blank";
    link.rel = "noopener";
    link.textContent = data.method + " " + data.path;
    cell(row, null).appendChild(link);
    cell(row, String(data.status || "\u2013"), "observe-number");
    cell(row, formatMs(data.duration_ms), "observe-number");
    var width = table.getAttribute("data-bar-width") || "120";
    var svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("class", "observe-bar");
    svg.setAttribute("width", width);
    svg.setAttribute("height", "10");
    svg.setAttribute("viewBox", "0 0 " + width + " 10");
    var rect = document.createElementNS(SVG, "rect");
    rect.setAttribute("height", "10");
    rect.setAttribute("fill", "#4e79a7");
    svg.appendChild(rect);
    cell(row, null).appendChild(svg);
    cell(row, formatBytes(data.memory_delta), "observe-number");
    var error = cell(row, null);
    if (data.error) {
      error.textContent = data.error.type + ": " + data.error.message +
        (data.event_id ? " (event " + data.event_id + ")" : "");
    }
    row.setAttribute("data-at", data.at);
    // Newest first, as the server lists them: a stream's row may arrive after the
    // rows of calls that completed later.
    var body = table.tBodies[0];
    var next = null;
    var index;
    for (index = 0; index < body.rows.length; index += 1) {
      if ((body.rows[index].getAttribute("data-at") || "") < data.at) {
        next = body.rows[index];
        break;
      }
    }
    body.insertBefore(row, next);
    var size = parseInt(table.getAttribute("data-size"), 10) || 50;
    while (body.rows.length > size) {
      body.deleteRow(body.rows.length - 1);
    }
    var empty = document.getElementById("observe-history-empty");
    if (empty) {
      empty.parentNode.removeChild(empty);
    }
    rescale(table);
  }

  function load(id, attempt) {
    originalFetch(api + "/" + encodeURIComponent(id), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        if (response.status === 404 && attempt < RETRIES.length) {
          window.setTimeout(function () { load(id, attempt + 1); }, RETRIES[attempt]);
          return null;
        }
        return response.ok ? response.json() : null;
      })
      .then(function (data) {
        if (data && data.summary) {
          insert(data.summary);
        }
      })
      .catch(function () {});  // the toolbar must never break the page
  }

  function follow(url, header) {
    if (!header || !originalFetch || !sameOrigin(url || window.location.href)) {
      return;
    }
    var id = reportId(header);
    if (!id || state.seen[id]) {
      return;
    }
    state.seen[id] = true;
    state.followed += 1;
    load(id, 0);
  }

  if (originalFetch) {
    window.fetch = function () {
      var result = originalFetch.apply(window, arguments);
      result.then(function (response) {
        try {
          follow(response.url, response.headers.get("X-Observe-Report"));
        } catch (error) { /* opaque or odd responses: nothing to follow */ }
      }, function () {});
      return result;
    };
  }

  var send = window.XMLHttpRequest && window.XMLHttpRequest.prototype.send;
  if (send) {
    window.XMLHttpRequest.prototype.send = function () {
      this.addEventListener("load", function () {
        try {
          if (sameOrigin(this.responseURL)) {
            follow(this.responseURL, this.getResponseHeader("X-Observe-Report"));
          }
        } catch (error) { /* nothing to follow */ }
      });
      return send.apply(this, arguments);
    };
  }
})();
