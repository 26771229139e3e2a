// The message list's "select all" box: shown only with JavaScript (without it, each
// message is ticked on its own), it ticks or unticks every message of the page.
document.addEventListener("DOMContentLoaded", () => {
  const all = document.querySelector("[data-pick-all]");
  if (!all) return;
  const boxes = () => all.form.querySelectorAll('input[name="uid"]');
  all.hidden = false;
  all.addEventListener("change", () => {
    for (const box of boxes()) box.checked = all.checked;
  });
});
