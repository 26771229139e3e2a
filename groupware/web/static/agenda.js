// Agenda pages. Colours: every element with data-color gets it as --cal (CSSOM, which
// the CSP allows; inline style attributes it does not). The time grid opens at 07:00.
document.addEventListener("DOMContentLoaded", () => {
  for (const element of document.querySelectorAll("[data-color]")) {
    const colour = element.dataset.color;
    if (/^#[0-9a-fA-F]{6}$/.test(colour)) element.style.setProperty("--cal", colour);
  }

  const grid = document.querySelector(".grid-scroll");
  const seven = document.querySelector(".hours li:nth-child(8)");
  if (grid && seven) grid.scrollTop = seven.offsetTop - 40;
  // On a phone the week shows three days at a time: start at today when it is shown.
  const hours = document.querySelector(".hours");
  const todayColumn = document.querySelector(".grid-day.is-today");
  if (grid && hours && todayColumn && grid.scrollWidth > grid.clientWidth) {
    grid.scrollLeft = todayColumn.offsetLeft - hours.offsetWidth;
  }

  const search = document.querySelector(".people-search");
  if (search) peoplePicker(search);
});

// The import page polls its job and reloads itself once the job is done (the report).
document.addEventListener("DOMContentLoaded", () => {
  const job = document.querySelector("#import-job[data-finished=no]");
  if (!job) return;
  const bar = job.querySelector("progress");
  const count = job.querySelector("#import-count");
  const poll = async () => {
    const reply = await fetch(job.dataset.statusUrl, { headers: { Accept: "application/json" } });
    if (!reply.ok) return;
    const status = await reply.json();
    bar.max = status.total;
    bar.value = status.done;
    count.textContent = count.textContent.replace(/^\d+/, String(status.done));
    if (status.finished) window.location.reload();
    else setTimeout(poll, 700);
  };
  setTimeout(poll, 300);
});

// Reminders: rows of a number and a unit. "Add a reminder" copies the last row empty;
// "Remove" takes a row away (the last one is emptied instead). Rows are renumbered so
// that names stay reminders-N-amount / -unit, as the form reads them, and every label
// says which reminder it is. Without JavaScript, emptying a number removes a reminder.
document.addEventListener("DOMContentLoaded", () => {
  const box = document.querySelector("#reminders");
  if (!box) return;
  const list = box.querySelector(".reminder-rows");
  const add = box.querySelector("#add-reminder");
  const most = 10;
  const renumber = () => {
    const rows = list.querySelectorAll(".reminder-row");
    rows.forEach((row, index) => {
      const number = String(index + 1);
      for (const control of row.querySelectorAll("input, select")) {
        const part = control.name.replace(/^reminders-\d+-/, "");
        control.name = control.id = `reminders-${index}-${part}`;
      }
      const [amount, unit] = row.querySelectorAll("label");
      amount.htmlFor = `reminders-${index}-amount`;
      amount.textContent = box.dataset.label.replace("#", number);
      unit.htmlFor = `reminders-${index}-unit`;
      unit.textContent = box.dataset.unitLabel.replace("#", number);
      row.querySelector(".reminder-remove-label").textContent = ` ${amount.textContent}`;
      for (const error of row.querySelectorAll(".error")) error.remove();
    });
    add.disabled = rows.length >= most;
  };
  const wire = (row) => {
    const remove = row.querySelector(".remove-reminder");
    remove.hidden = false;
    remove.addEventListener("click", () => {
      const rows = list.querySelectorAll(".reminder-row");
      if (rows.length > 1) {
        const next = row.nextElementSibling || row.previousElementSibling;
        row.remove();
        renumber();
        next.querySelector("input").focus();
      } else {
        row.querySelector("input").value = "";
        row.querySelector("input").focus();
      }
    });
  };
  list.querySelectorAll(".reminder-row").forEach(wire);
  add.hidden = false;
  add.addEventListener("click", () => {
    const rows = list.querySelectorAll(".reminder-row");
    const copy = rows[rows.length - 1].cloneNode(true);
    copy.querySelector("input").value = "";
    copy.querySelector("input").removeAttribute("aria-invalid");
    copy.querySelector("select").selectedIndex = 0;
    list.append(copy);
    wire(copy);
    renumber();
    copy.querySelector("input").focus();
  });
  renumber();
});

// The attendee picker: what is typed is looked up in the directory (JSON) and offered
// in a datalist. Enter or "Add" puts an address in the attendees field: the one typed,
// the one picked, or the only person matching the name; Enter never submits the event
// form from here. What happened is said in a live region, for keyboard and screen
// reader users alike. Without JavaScript, addresses are typed in the attendees field.
function peoplePicker(search) {
  const input = search.querySelector("input[type=search]");
  const list = search.querySelector("datalist");
  const add = search.querySelector("#people-add");
  const said = search.querySelector("#people-said");
  const field = document.querySelector("#attendees");
  const found = new Map(); // text looked up -> people found
  let timer = 0;
  const lookUp = async (text) => {
    if (found.has(text)) return found.get(text);
    const url = `${search.dataset.peopleUrl}?q=${encodeURIComponent(text)}`;
    const reply = await fetch(url, { headers: { Accept: "application/json" } });
    const people = reply.ok ? await reply.json() : [];
    found.set(text, people);
    return people;
  };
  const offer = (people) => {
    list.replaceChildren(
      ...people.map((person) => {
        const option = document.createElement("option");
        option.value = person.email;
        option.label = person.detail ? `${person.name} — ${person.detail}` : person.name;
        return option;
      }),
    );
  };
  input.addEventListener("input", () => {
    clearTimeout(timer);
    const text = input.value.trim();
    if (text.length < 2 || text.includes("@")) return;
    timer = setTimeout(async () => offer(await lookUp(text)), 200);
  });
  const addressFor = async (text) => {
    if (text.includes("@")) return text;
    if (text.length < 2) return "";
    const people = await lookUp(text);
    const lower = text.toLowerCase();
    const exact = people.filter((p) => p.name.toLowerCase() === lower);
    if (people.length === 1 || exact.length === 1) return (exact[0] || people[0]).email;
    said.textContent = people.length ? search.dataset.unclear : search.dataset.none;
    offer(people);
    return "";
  };
  const pick = async () => {
    const address = await addressFor(input.value.trim());
    if (!address) return;
    const lines = field.value.split("\n").map((line) => line.trim()).filter(Boolean);
    if (!lines.includes(address)) lines.push(address);
    field.value = lines.join("\n");
    said.textContent = search.dataset.added.replace("#", address);
    input.value = "";
    input.focus();
  };
  input.addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    event.preventDefault();
    pick();
  });
  add.addEventListener("click", pick);
}
