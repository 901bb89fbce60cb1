// Keep a row as it is when a poll brings it back unchanged.
//
// A poll re-sends the rows changed in a short look-back window (so no change
// is ever missed); redrawing an unchanged row would close a half-typed
// "decline" reason or wipe a message. Each row carries its version
// (data-updated, the request's updated_at): same version, no redraw.
document.addEventListener("htmx:oobBeforeSwap", function (event) {
  var current = event.detail.target;
  var incoming = event.detail.fragment && event.detail.fragment.firstElementChild;
  if (!current || !incoming || !current.matches("li.request-card")) return;
  if (incoming.dataset.updated && incoming.dataset.updated === current.dataset.updated) {
    event.preventDefault();
  }
});

// Poll only while the tab is visible: a background tab asks for nothing.
// (Here rather than as an hx-trigger filter, which htmx would have to eval.)
document.addEventListener("htmx:confirm", function (event) {
  var polls = event.target.id === "poller" || event.target.hasAttribute("data-poll");
  if (polls && document.visibilityState !== "visible") {
    event.preventDefault();
  }
});
