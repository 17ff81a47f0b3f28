// Copy buttons: <button data-copy-target="#id">Copy</button>
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy-target]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copyTarget);
  if (!source) return;
  try {
    await navigator.clipboard.writeText(source.textContent.trim());
    button.textContent = "Copied";
  } catch (err) {
    const range = document.createRange();
    range.selectNodeContents(source);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    button.textContent = "Selected: press Ctrl+C";
  }
});

// A form loaded by htmx into a <dialog> (e.g. "Rotate secret" on the client page) opens
// it as a modal; the dialog's Cancel link closes it instead of leaving the page.
document.addEventListener("htmx:afterSwap", (event) => {
  const dialog = event.detail.target.closest("dialog");
  if (dialog && !dialog.open) dialog.showModal();
});
document.addEventListener("click", (event) => {
  const link = event.target.closest("[data-dialog-close]");
  const dialog = link && link.closest("dialog[open]");
  if (!dialog) return;
  event.preventDefault();
  dialog.close();
});

// A plain (non-htmx) form with data-confirm asks before it submits. The Content-Security-
// Policy allows no inline handlers (onsubmit="…"), so the question lives in the markup.
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
});

// A form's error summary (templates/base/_error_summary.html) takes the focus when the page
// or an htmx swap shows one, so keyboard and screen-reader users land on what to fix.
function focusErrorSummary(root) {
  const summary = root.querySelector("[data-error-summary]");
  if (summary) summary.focus();
  return Boolean(summary);
}
document.addEventListener("DOMContentLoaded", () => focusErrorSummary(document));

// Fragments answered with 400, 409 or 422 carry a form with its errors (the rotate dialog,
// the grant form): swap them in like a 200. htmx 2 drops 4xx bodies by default.
document.addEventListener("htmx:beforeSwap", (event) => {
  if ([400, 409, 422].includes(event.detail.xhr.status)) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});

// After a swap: the error summary if there is one, else the element marked autofocus (the
// rotate dialog's default choice, 24 hours, never "Immediately").
document.addEventListener("htmx:afterSettle", (event) => {
  const target = event.detail.target;
  if (target.closest("[data-poll]")) return; // a live region's refresh never moves focus
  if (focusErrorSummary(target)) return;
  const preferred = target.querySelector("[autofocus]");
  if (preferred) preferred.focus();
});

// Live regions poll through htmx: hx-trigger="every 15s, kw:visible from:document" plus
// data-poll. A poll is skipped while the tab is hidden (no requests from background tabs)
// or while the user works inside the region (ticked rows, an open <details>); when the tab
// shows again every live region refreshes at once.
document.addEventListener("htmx:beforeRequest", (event) => {
  const element = event.detail.elt;
  if (!element.hasAttribute || !element.hasAttribute("data-poll")) return;
  const busy = element.querySelector("input[type=checkbox]:checked, details[open]");
  if (document.hidden || busy) event.preventDefault();
});
document.addEventListener("visibilitychange", () => {
  if (!document.hidden) document.dispatchEvent(new CustomEvent("kw:visible"));
});

// Print buttons: <button data-print>Print</button> (the campaign report).
document.addEventListener("click", (event) => {
  if (event.target.closest("[data-print]")) window.print();
});
