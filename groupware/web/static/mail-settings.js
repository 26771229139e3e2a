// Reading pane (web.webmail_settings): with the "beside" or "below" layout, a click on
// a subject opens the message in a pane of the folder page instead of a new page. The
// message page is fetched and its article moved into the pane; links and buttons in
// it work as on the message page. Without JavaScript, the link opens the page.
document.addEventListener("DOMContentLoaded", () => {
  const layout = document.querySelector(".mail-layout.pane-right, .mail-layout.pane-bottom");
  if (!layout) return;
  const pane = document.createElement("section");
  pane.className = "reading-pane card";
  pane.id = "reading-pane";
  layout.appendChild(pane);

  const open = async (link) => {
    const row = link.closest("tr");
    const reply = await fetch(link.href, { credentials: "same-origin" });
    if (!reply.ok) {
      window.location.href = link.href;
      return;
    }
    const page = new DOMParser().parseFromString(await reply.text(), "text/html");
    const article = page.querySelector("article.mail-message");
    if (!article) {
      window.location.href = link.href;
      return;
    }
    pane.replaceChildren(document.importNode(article, true));
    for (const other of document.querySelectorAll("#messages tr.is-open")) {
      other.classList.remove("is-open");
    }
    if (row) row.classList.add("is-open", "was-read");
    if (row) row.classList.remove("unseen");
    pane.querySelector("h1")?.setAttribute("tabindex", "-1");
    pane.querySelector("h1")?.focus();
  };

  for (const link of document.querySelectorAll("#messages td.subject a")) {
    link.addEventListener("click", (event) => {
      if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
      event.preventDefault();
      open(link).catch(() => {
        window.location.href = link.href;
      });
    });
  }
});
