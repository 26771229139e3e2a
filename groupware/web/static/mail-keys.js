// Webmail keyboard shortcuts, on the message list and the message page (the help
// dialog in mail/_keys_help.html lists them). They never fire while the person types
// in a field, nor with Ctrl, Alt or Meta (the browser's own shortcuts).
"use strict";
(() => {
  const help = () => document.getElementById("mail-keys-help");
  const rows = () => [...document.querySelectorAll("#messages tr.message")].filter((r) => !r.hidden);
  let current = -1;

  // Boxes and buttons take no text: on a ticked checkbox, j and k still move.
  const NOT_TEXT = new Set(["checkbox", "radio", "button", "submit", "reset", "image"]);

  function isTyping(target) {
    if (!(target instanceof Element)) return false;
    if (target.closest("textarea, select, [contenteditable]:not([contenteditable='false'])")) return true;
    return target instanceof HTMLInputElement && !NOT_TEXT.has(target.type);
  }

  function select(index) {
    const list = rows();
    if (!list.length) return;
    current = Math.max(0, Math.min(index, list.length - 1));
    for (const row of list) row.classList.remove("is-current");
    const row = list[current];
    row.classList.add("is-current");
    row.setAttribute("aria-current", "true");
    for (const other of list) if (other !== row) other.removeAttribute("aria-current");
    row.scrollIntoView({ block: "nearest" });
  }

  function currentRow() {
    const list = rows();
    return current >= 0 && current < list.length ? list[current] : null;
  }

  function composeUrl(mode) {
    const dialog = help();
    const row = currentRow();
    const uid = row ? row.dataset.uid : document.querySelector("[data-message-uid]")?.dataset.messageUid;
    const link = document.querySelector(`a[href*="mode=${mode}"]`);
    if (link) return link.href;  // the message page's own Reply / Reply all / Forward
    if (!dialog || !uid || !dialog.dataset.folder) return null;
    const url = new URL(dialog.dataset.composeUrl, location.href);
    url.searchParams.set("folder", dialog.dataset.folder);
    url.searchParams.set("uid", uid);
    url.searchParams.set("mode", mode);
    return url.href;
  }

  function go(url) {
    if (url) location.assign(url);
  }

  function remove() {
    const listForm = document.getElementById("message-actions");
    if (listForm) {
      const ticked = listForm.querySelectorAll('input[name="uid"]:checked, input[name="thread"]:checked');
      const row = currentRow();
      if (!ticked.length && row) {
        const box = row.querySelector('input[type="checkbox"]');
        if (box) box.checked = true;
      }
      listForm.querySelector('button[name="action"][value="delete"]')?.click();
      return;
    }
    document.querySelector('form button[name="action"][value="delete"]')?.click();
  }

  function toggleTicked() {
    const box = currentRow()?.querySelector('input[type="checkbox"]');
    if (box) box.checked = !box.checked;
  }

  function open() {
    const link = currentRow()?.querySelector("td.subject a");
    if (link) link.click();
  }

  function showHelp() {
    const dialog = help();
    if (dialog && !dialog.open) dialog.showModal();
  }

  const actions = {
    j: () => select(current + 1),
    ArrowDown: () => select(current + 1),
    k: () => select(current - 1),
    ArrowUp: () => select(current - 1),
    Enter: open,
    o: open,
    x: toggleTicked,
    r: () => go(composeUrl("reply")),
    a: () => go(composeUrl("all")),
    f: () => go(composeUrl("forward")),
    c: () => go(help()?.dataset.composeUrl),
    "#": remove,
    Delete: remove,
    u: () => {
      const back = document.getElementById("back-to-folder");
      if (back) back.click();
      else if (!document.getElementById("messages")) go(help()?.dataset.listUrl);
    },
    "/": () => document.getElementById("mail-search")?.focus(),
    "?": showHelp,
  };
  // Keys that only mean something where there is a list (elsewhere they scroll or submit).
  const listOnly = new Set(["j", "k", "ArrowDown", "ArrowUp", "Enter", "o", "x"]);

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.altKey || event.metaKey || event.defaultPrevented) return;
    if (isTyping(event.target) || help()?.open) return;
    const action = actions[event.key];
    if (!action) return;
    const hasList = Boolean(document.getElementById("messages"));
    if (listOnly.has(event.key) && !hasList) return;
    if (event.key === "Enter" && (currentRow() === null || event.target.closest?.("a, button"))) return;
    if (event.key === "/" && !document.getElementById("mail-search")) return;
    event.preventDefault();
    action();
  });

  document.addEventListener("DOMContentLoaded", () => {
    for (const button of document.querySelectorAll("[data-keys-help]")) {
      button.addEventListener("click", showHelp);
    }
  });
})();
