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

// Live regions (data-poll, hx-trigger "every 30s, visibilitychange from:document") skip
// their request while the tab is hidden, and catch up as soon as it is shown again.
document.addEventListener("htmx:beforeRequest", (event) => {
  if (document.hidden && event.detail.elt.hasAttribute("data-poll")) event.preventDefault();
});
