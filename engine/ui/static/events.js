// The events page, live: each event the store records from now on is added at the top of the
// table as the server sends it (server-sent events). Rows are built from text, never markup.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var table = document.getElementById("events");
  var status = document.getElementById("live");
  if (!table || !window.EventSource) { return; }
  var body = table.querySelector("tbody");
  var labels = { info: "ℹ info", warning: "⚠ warning", error: "✗ error" };

  function cell(label, content, cls) {
    var td = document.createElement("td");
    td.setAttribute("data-label", label);
    if (cls) { td.className = cls; }
    if (typeof content === "string") { td.textContent = content; } else { td.appendChild(content); }
    return td;
  }

  function row(e) {
    var tr = document.createElement("tr");
    tr.className = "event-" + e.severity + " fresh";
    var time = document.createElement("time");
    time.setAttribute("datetime", e.time);
    time.textContent = e.time.replace("T", " ").slice(0, 16) + " UTC";
    gitwardLocalTime(time);
    var severity = document.createElement("span");
    severity.className = "severity severity-" + e.severity;
    severity.textContent = labels[e.severity] || e.severity;
    tr.appendChild(cell("Time", time));
    tr.appendChild(cell("Severity", severity));
    tr.appendChild(cell("Object", e.kind + " " + e.name));
    tr.appendChild(cell("Reason", e.reason));
    tr.appendChild(cell("Message", e.message, "message"));
    return tr;
  }

  var source = new EventSource(table.getAttribute("data-stream"));
  source.onopen = function () { status.textContent = "Live: new events appear at the top."; };
  source.onerror = function () { status.textContent = "Live updates paused; reconnecting…"; };
  source.onmessage = function (message) {
    var empty = body.querySelector("td[colspan]");
    if (empty) { empty.parentNode.remove(); }
    body.insertBefore(row(JSON.parse(message.data)), body.firstChild);
  };
});
