// The compose page's "From": choosing another identity swaps the signature in
// the message, but only while the previous identity's signature is still there
// as it was put (the person's own words are never touched). Each option carries
// its signature as the server made it: the plain-text block ("-- " line first)
// and the HTML editor's <div class="signature"> block. Without this script the
// message keeps the signature it started with.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("compose");
  const select = document.getElementById("identity");
  if (!form || !select) return;
  let previous = select.selectedOptions[0] || null;
  select.addEventListener("change", () => {
    const next = select.selectedOptions[0];
    if (!next || next === previous) return;
    const changed = form.elements.format.value === "html"
      ? swapHtml(select, previous, next)
      : swapText(form.elements.body, select, previous, next);
    previous = next;
    if (changed) form.dispatchEvent(new Event("input"));  // the draft autosaves it
  });
});

// --- plain text --------------------------------------------------------------------

function blockAt(text, block) {
  // The first place where the block stands on lines of its own.
  let at = text.indexOf(block);
  while (at >= 0) {
    const end = at + block.length;
    if ((at === 0 || text[at - 1] === "\n") && (end === text.length || text[end] === "\n")) return at;
    at = text.indexOf(block, at + 1);
  }
  return -1;
}

function quoteStart(text, forwardLine) {
  // Where a reply's attribution or a forward's header begins (-1: no quote found).
  const forward = forwardLine ? blockAt(text, forwardLine) : -1;
  if (forward >= 0) return forward;
  const lines = text.split("\n");
  let offset = 0;
  for (let i = 0; i < lines.length; i += 1) {
    if (lines[i].startsWith(">")) {
      const attribution = i > 0 && lines[i - 1].trim() ? lines[i - 1].length + 1 : 0;
      return offset - attribution;
    }
    offset += lines[i].length + 1;
  }
  return -1;
}

function swapText(body, select, previous, next) {
  const text = body.value;
  const old = previous ? previous.dataset.signatureText : "";
  const fresh = next.dataset.signatureText;
  if (old) {
    const at = blockAt(text, old);
    if (at < 0) return false;  // changed by the person: theirs now
    const before = text.slice(0, at);
    const after = text.slice(at + old.length);
    body.value = fresh ? before + fresh + after : before.replace(/\n\n$/, "") + after;
    return true;
  }
  if (!fresh || /(^|\n)-- \n/.test(text)) return false;  // nothing to add, or their own
  const quote = select.dataset.signatureAt === "quote"
    ? quoteStart(text, select.dataset.forwardLine) : -1;
  if (quote >= 0) {
    const before = text.slice(0, quote).replace(/\n+$/, "");
    body.value = `${before}\n\n${fresh}\n\n${text.slice(quote)}`;
  } else {
    body.value = `${text.replace(/\n+$/, "")}\n\n${fresh}\n`;
  }
  return true;
}

// --- formatted text ----------------------------------------------------------------

function element(html) {
  // The server escaped the signature's text into this block.
  const template = document.createElement("template");
  template.innerHTML = html;
  return template.content.firstElementChild;
}

function quoteAnchor(editor, forwardLine) {
  // The element a new signature goes before: the forward's header, or the reply's
  // attribution above its quote.
  for (const child of editor.children) {
    if (forwardLine && child.textContent.trim().startsWith(forwardLine)) return child;
    if (child.tagName === "BLOCKQUOTE") {
      const attribution = child.previousElementSibling;
      return attribution && attribution.tagName === "P" ? attribution : child;
    }
  }
  return null;
}

function swapHtml(select, previous, next) {
  const editor = document.getElementById("editor");
  const current = editor.querySelector("div.signature");
  const old = previous ? previous.dataset.signatureHtml : "";
  const fresh = next.dataset.signatureHtml ? element(next.dataset.signatureHtml) : null;
  if (old) {
    // Compared as the browser serializes both, so escaping differences do not count.
    if (!current || current.innerHTML !== element(old).innerHTML) return false;
    if (fresh) current.replaceWith(fresh); else current.remove();
    return true;
  }
  if (!fresh || current) return false;
  const anchor = select.dataset.signatureAt === "quote"
    ? quoteAnchor(editor, select.dataset.forwardLine) : null;
  if (anchor) anchor.before(fresh); else editor.append(fresh);
  return true;
}
