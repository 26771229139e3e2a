// The folder menu of the phone layout opens the chosen folder at once, and a
// conversation's messages fold under its row (without JavaScript they all show).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const select of document.querySelectorAll("select[data-go]")) {
    const form = select.form;
    const button = form.querySelector("[data-go-button]");
    if (button) button.hidden = true;
    select.addEventListener("change", () => form.submit());
  }
  for (const toggle of document.querySelectorAll("[data-thread-toggle]")) {
    const group = toggle.dataset.threadToggle;
    const members = document.querySelectorAll(`tr[data-member-of="${group}"]`);
    const show = (open) => {
      for (const row of members) row.hidden = !open;
      toggle.setAttribute("aria-expanded", String(open));
      toggle.firstElementChild.textContent = open ? "▾" : "▸";
    };
    show(false);
    toggle.hidden = false;
    toggle.addEventListener("click", () => show(toggle.getAttribute("aria-expanded") !== "true"));
  }
});
