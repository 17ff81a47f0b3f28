// Events explorer (templates/analytics/explorer.html). A file, not an inline script: the
// Content-Security-Policy allows scripts only from our static files.

// Live tail: while a <tbody data-tail-url> is on the page, ask every POLL_MS for the rows
// newer than the newest one shown (its data-cursor) and put them on top, keeping at most
// data-tail-cap rows. As healthchecks' adaptive setInterval does, a hidden tab does not
// poll: it catches up the moment it is shown again.
(() => {
  const POLL_MS = 2000;
  let inFlight = false;

  function tailBody() {
    return document.querySelector("tbody[data-tail-url]");
  }

  function trim(body) {
    const cap = parseInt(body.dataset.tailCap, 10) || 200;
    const rows = body.querySelectorAll("tr[data-cursor]");
    for (let i = cap; i < rows.length; i++) rows[i].remove();
    const gaps = body.querySelectorAll("tr.tail-gap");
    for (let i = 1; i < gaps.length; i++) gaps[i].remove();
  }

  function poll() {
    const body = tailBody();
    if (!body || inFlight || document.hidden) return;
    const url = new URL(body.dataset.tailUrl, window.location.href);
    const newest = body.querySelector("tr[data-cursor]");
    if (newest) url.searchParams.set("after", newest.dataset.cursor);
    inFlight = true;
    htmx
      .ajax("GET", url.pathname + url.search, { target: body, swap: "afterbegin" })
      .catch(() => {})
      .finally(() => {
        inFlight = false;
        if (body.isConnected) trim(body);
      });
  }

  window.setInterval(poll, POLL_MS);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) poll();
  });
})();

// The explorer answers bad filters with 400 and the form's errors; htmx leaves error
// answers unswapped unless told, and these are meant to be read.
document.addEventListener("htmx:beforeSwap", (event) => {
  const target = event.detail.target;
  if (event.detail.xhr.status === 400 && target && target.id === "explorer-results") {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});

// The filter form sends every field, filled or not; leave the empty ones out of the URL it
// pushes, so a shared link names only the filters in use. (The server redirects a URL with
// empty filters to the same without them, which covers the form without JavaScript.)
document.addEventListener("htmx:configRequest", (event) => {
  const form = event.detail.elt;
  if (event.detail.verb !== "get" || !form.matches || !form.matches("form.explorer-filters")) return;
  const params = event.detail.formData;
  for (const name of [...new Set(params.keys())]) {
    if (params.getAll(name).every((value) => value === "")) params.delete(name);
  }
});
