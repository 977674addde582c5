// provisiond console: the little JavaScript it has. Pages work without it; with it, a running
// record's engine log follows live (server-sent events) and the page refreshes when it ends.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var log = document.getElementById("engine-log");
  if (!log || !log.dataset.events || !window.EventSource) {
    return;
  }
  var source = new EventSource(log.dataset.events);
  var state = document.getElementById("log-state");
  if (state) {
    state.textContent = "following live";
  }
  source.addEventListener("message", function (e) {
    log.textContent += e.data + "\n";
    log.scrollTop = log.scrollHeight;
  });
  // A form posted from this page (fail, retry) navigates away: stop following first, so the
  // stream's end cannot reload this page over the answer.
  var leaving = false;
  document.addEventListener("submit", function () {
    leaving = true;
    source.close();
  });
  source.addEventListener("end", function () {
    source.close();
    if (!leaving) {
      window.location.reload();
    }
  });
  source.addEventListener("error", function () {
    if (state && source.readyState === EventSource.CLOSED) {
      state.textContent = "stopped following (reload to resume)";
    }
  });
});
