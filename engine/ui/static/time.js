// Shows each <time datetime> in the viewer's own zone; the UTC text it replaces stays on hover.
"use strict";
var gitwardFormat = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
  timeZoneName: "short"
});

function gitwardLocalTime(el) {
  var when = new Date(el.getAttribute("datetime"));
  if (isNaN(when.getTime())) { return; }
  el.title = el.textContent;
  el.textContent = gitwardFormat.format(when);
}

document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("time[datetime]").forEach(gitwardLocalTime);
});
