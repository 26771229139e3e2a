// The compose page's script: formatted text, uploads with progress, autosave to
// Drafts, address suggestions. Without it the page still works: a plain-text
// message, files sent with the form, "Save draft" as a form button.
"use strict";

const AUTOSAVE_MS = 30000;
const SUGGEST_DELAY_MS = 200;
const MIN_QUERY_CHARS = 2;

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("compose");
  if (!form) return;
  const token = form.querySelector('input[name="csrf_token"]').value;
  const status = document.getElementById("draft-status");
  const editor = setUpEditor(form);
  const state = { dirty: false, saving: null, busy: false, leaving: false };
  setUpUploads(form, token, () => { state.dirty = true; });
  for (const box of form.querySelectorAll("[data-address-field] input")) {
    setUpSuggestions(form, box);
  }

  const save = async () => {
    if (state.leaving) return;
    editor.sync();
    state.dirty = false;
    status.textContent = form.dataset.textSaving;
    const data = new FormData(form);
    data.delete("files");
    try {
      const answer = await fetch(form.dataset.autosaveUrl, {
        method: "POST", body: data, headers: { "X-CSRFToken": token },
        credentials: "same-origin",
      });
      // An IMAP failure answers an HTML error page: no JSON, the generic message.
      const body = await answer.json().catch(() => ({}));
      if (!answer.ok || !body.draft_uid) throw { refusal: body.error };
      form.elements.draft_uid.value = body.draft_uid;
      status.textContent = body.message;
    } catch (error) {
      state.dirty = true;
      status.textContent = error.refusal || form.dataset.textSaveFailed;
    }
  };
  const saveOnce = () => {
    // One save at a time, so each replaces the version the previous one made.
    state.busy = true;
    state.saving = (state.saving || Promise.resolve()).then(save)
      .finally(() => { state.busy = false; });
    return state.saving;
  };

  form.addEventListener("input", () => { state.dirty = true; });
  setInterval(() => { if (state.dirty) saveOnce(); }, AUTOSAVE_MS);
  document.getElementById("save-draft").addEventListener("click", (event) => {
    event.preventDefault();
    saveOnce();
  });
  form.addEventListener("submit", (event) => {
    editor.sync();
    if (state.busy) {
      // A save is on its way: send once it answered, with the draft UID it made,
      // so that the draft sent is the one removed from Drafts.
      event.preventDefault();
      state.saving.then(() => form.requestSubmit(event.submitter));
      return;
    }
    state.leaving = true;
  });
});

// --- formatted text ----------------------------------------------------------------

function escapeHtml(text) {
  const span = document.createElement("span");
  span.textContent = text;
  return span.innerHTML;
}

function textToHtml(text) {
  return text.split(/\n\s*\n/).filter((block) => block.length)
    .map((block) => "<p>" + escapeHtml(block).replace(/\n/g, "<br>") + "</p>").join("");
}

function setUpEditor(form) {
  const area = document.getElementById("editor-area");
  const editor = document.getElementById("editor");
  const plainArea = document.getElementById("plain-area");
  const body = form.elements.body;
  const html = form.elements.html_body;
  const format = form.elements.format;
  const toPlain = document.getElementById("to-plain");
  const toHtml = document.getElementById("to-html");
  document.getElementById("format-switch").hidden = false;

  const show = (mode) => {
    format.value = mode;
    area.hidden = mode !== "html";
    plainArea.hidden = mode === "html";
    toPlain.hidden = mode !== "html";
    toHtml.hidden = mode === "html";
  };
  const sync = () => {
    if (format.value !== "html") return;
    html.value = editor.innerHTML;
    body.value = editor.innerText;
  };
  // The server cleaned this HTML (nh3) before putting it in the page.
  const start = form.dataset.start === "plain" ? "plain" : "html";
  editor.innerHTML = start === "html" && html.value ? html.value : textToHtml(body.value);
  show(start);

  toPlain.addEventListener("click", () => {
    body.value = editor.innerText;
    show("plain");
    body.focus();
  });
  toHtml.addEventListener("click", () => {
    editor.innerHTML = textToHtml(body.value);
    show("html");
    editor.focus();
  });
  for (const button of area.querySelectorAll("[data-command]")) {
    button.addEventListener("click", () => {
      command(form, button.dataset.command);
      editor.focus();
      refreshPressed(area);
      form.dispatchEvent(new Event("input"));
    });
  }
  editor.addEventListener("keyup", () => refreshPressed(area));
  editor.addEventListener("mouseup", () => refreshPressed(area));
  return { sync };
}

function command(form, name) {
  if (name === "createLink") {
    const url = window.prompt(form.dataset.textLinkPrompt, "https://");
    if (url && /^(https?:|mailto:)/i.test(url.trim())) {
      document.execCommand("createLink", false, url.trim());
    }
  } else if (name === "blockquote") {
    const inQuote = document.queryCommandValue("formatBlock").toLowerCase() === "blockquote";
    document.execCommand("formatBlock", false, inQuote ? "p" : "blockquote");
  } else {
    document.execCommand(name, false, null);
  }
}

function refreshPressed(area) {
  for (const button of area.querySelectorAll("[aria-pressed]")) {
    button.setAttribute("aria-pressed", String(document.queryCommandState(button.dataset.command)));
  }
}

// --- attachments -------------------------------------------------------------------

function setUpUploads(form, token, changed) {
  const input = document.getElementById("files");
  const list = document.getElementById("attachment-list");
  let queue = Promise.resolve();
  for (const item of list.querySelectorAll("li")) addRemoveButton(form, token, item, changed);
  input.addEventListener("change", () => {
    const files = Array.from(input.files);
    input.value = "";  // staged one by one now: not sent again with the form
    for (const file of files) {
      const item = document.createElement("li");
      const progress = document.createElement("progress");
      progress.max = 100;
      progress.value = 0;
      progress.setAttribute("aria-label", form.dataset.textUploading.replace("NAME", file.name));
      item.append(file.name + " ", progress);
      list.append(item);
      // One at a time: each upload counts the ones before it against the limit.
      queue = queue.then(() => upload(form, token, file, item, progress, changed));
    }
  });
}

function attachedIds(form) {
  return Array.from(form.querySelectorAll('input[name="attachment"]:checked'), (box) => box.value);
}

function upload(form, token, file, item, progress, changed) {
  return new Promise((resolve) => {
    const data = new FormData();
    data.append("file", file);
    for (const id of attachedIds(form)) data.append("attachment", id);
    const request = new XMLHttpRequest();
    request.open("POST", form.dataset.uploadUrl);
    request.setRequestHeader("X-CSRFToken", token);
    request.responseType = "json";
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) progress.value = Math.round((event.loaded / event.total) * 100);
    });
    request.addEventListener("load", () => {
      const body = request.response || {};
      if (request.status === 200 && body.id) {
        showStaged(form, token, item, body, changed);
      } else {
        failed(item, body.error || form.dataset.textUploadFailed);
      }
      resolve();
    });
    request.addEventListener("error", () => { failed(item, form.dataset.textUploadFailed); resolve(); });
    request.send(data);
  });
}

function failed(item, message) {
  item.querySelector("progress")?.remove();
  const error = document.createElement("span");
  error.className = "error";
  error.setAttribute("role", "alert");
  error.textContent = message;
  item.append(error);
}

function showStaged(form, token, item, staged, changed) {
  const label = document.createElement("label");
  const box = document.createElement("input");
  box.type = "checkbox";
  box.name = "attachment";
  box.value = staged.id;
  box.checked = true;
  label.append(box, " " + staged.name);
  const size = document.createElement("span");
  size.className = "muted";
  size.textContent = staged.size;
  const progress = item.querySelector("progress");
  progress.value = 100;
  progress.classList.add("done");
  item.replaceChildren(label, " ", size, " ", progress);
  addRemoveButton(form, token, item, changed);
  changed();
}

function addRemoveButton(form, token, item, changed) {
  const box = item.querySelector('input[name="attachment"]');
  const name = item.querySelector("label").textContent.trim();
  const button = document.createElement("button");
  button.type = "button";
  button.className = "secondary remove-attachment";
  button.textContent = form.dataset.textRemove;
  button.setAttribute("aria-label", form.dataset.textRemoveNamed.replace("NAME", name));
  button.addEventListener("click", async () => {
    const url = form.dataset.removeUrl.replace("FILE_ID", encodeURIComponent(box.value));
    const answer = await fetch(url, {
      method: "POST", headers: { "X-CSRFToken": token }, credentials: "same-origin",
    });
    if (answer.ok) {
      item.remove();
      changed();
    }
  });
  item.append(" ", button);
}

// --- address suggestions (ARIA combobox with a listbox popup) ------------------------

function setUpSuggestions(form, input) {
  const list = document.createElement("ul");
  list.id = input.id + "-suggestions";
  list.className = "suggestions";
  list.setAttribute("role", "listbox");
  list.setAttribute("aria-label", form.dataset.textSuggestions);
  list.hidden = true;
  // Below the field's own box (in the flex column of .field it would sit on the label).
  input.closest("[data-address-field]").append(list);
  input.setAttribute("role", "combobox");
  input.setAttribute("aria-autocomplete", "list");
  input.setAttribute("aria-expanded", "false");
  input.setAttribute("aria-controls", list.id);
  let timer = null;
  let active = -1;
  let asked = 0;

  const options = () => Array.from(list.children);
  const close = () => {
    list.hidden = true;
    list.replaceChildren();
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
    active = -1;
  };
  const highlight = (index) => {
    const all = options();
    active = (index + all.length) % all.length;
    all.forEach((option, i) => option.setAttribute("aria-selected", String(i === active)));
    input.setAttribute("aria-activedescendant", all[active].id);
    all[active].scrollIntoView({ block: "nearest" });
  };
  const choose = (option) => {
    const parts = input.value.split(",");
    parts[parts.length - 1] = " " + option.textContent;
    input.value = parts.join(",").replace(/^\s+/, "") + ", ";
    close();
    input.focus();
    form.dispatchEvent(new Event("input"));
  };
  const show = (suggestions) => {
    close();
    suggestions.forEach((text, i) => {
      const option = document.createElement("li");
      option.id = `${list.id}-${i}`;
      option.setAttribute("role", "option");
      option.setAttribute("aria-selected", "false");
      option.textContent = text;
      option.addEventListener("mousedown", (event) => { event.preventDefault(); choose(option); });
      list.append(option);
    });
    if (suggestions.length) {
      list.hidden = false;
      input.setAttribute("aria-expanded", "true");
    }
  };
  const ask = async () => {
    const text = input.value.split(",").pop().trim();
    if (text.length < MIN_QUERY_CHARS) { close(); return; }
    const number = ++asked;
    const url = `${form.dataset.addressesUrl}?q=${encodeURIComponent(text)}`;
    const answer = await fetch(url, { credentials: "same-origin" });
    if (!answer.ok || number !== asked) return;  // a newer question is on its way
    show(await answer.json());
  };

  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(ask, SUGGEST_DELAY_MS);
  });
  input.addEventListener("keydown", (event) => {
    if (list.hidden) return;
    if (event.key === "ArrowDown") { event.preventDefault(); highlight(active + 1); }
    else if (event.key === "ArrowUp") { event.preventDefault(); highlight(active - 1); }
    else if (event.key === "Enter" && active >= 0) { event.preventDefault(); choose(options()[active]); }
    else if (event.key === "Escape") { event.preventDefault(); close(); }
  });
  input.addEventListener("blur", () => setTimeout(close, SUGGEST_DELAY_MS));
}
