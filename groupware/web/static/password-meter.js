// Password strength meter, beside each field where a new password is chosen.
// It mirrors the server's policy (groupware/core/passwords.py): a minimum length, not
// the person's first or last name (parts of three letters or more, accents folded),
// not their birth date, and not their NUMEN, which the page does not know (only its keyed
// hash is kept): that rule is shown and checked by the server on saving. The server
// decides in every case: this only helps.
// The texts come translated from the page (data attributes); the verdict is read out
// by screen readers (aria-live) and the <meter> gives the level.
"use strict";

function fold(text) {
  return text.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
}

function varietyBits(password) {
  let pool = 0;
  if (/[a-z]/.test(password)) pool += 26;
  if (/[A-Z]/.test(password)) pool += 26;
  if (/[0-9]/.test(password)) pool += 10;
  if (/[^a-zA-Z0-9]/.test(password)) pool += 33;
  // Repeated characters add little: count each distinct one once, then half.
  const distinct = new Set(password).size;
  const length = distinct + (password.length - distinct) / 2;
  return length * Math.log2(Math.max(pool, 1));
}

function assess(password, meter) {
  const minLength = Number(meter.dataset.minLength || "0");
  const folded = fold(password);
  const names = (meter.dataset.names || "").split(" ").filter((part) => part.length >= 3);
  const dates = (meter.dataset.dates || "").split(" ").filter(Boolean);
  const broken = {
    length: [...password].length < minLength,
    names: names.some((part) => folded.includes(part)),
    dates: dates.some((form) => password.includes(form)),
  };
  const bits = varietyBits(password);
  const breaksPolicy = Object.values(broken).some(Boolean);
  let level = 0;
  if (!breaksPolicy) level = bits < 40 ? 1 : bits < 60 ? 2 : bits < 80 ? 3 : 4;
  return { broken, level, weakVariety: bits < 60 };
}

function update(input, meter) {
  const password = input.value;
  meter.hidden = password.length === 0;
  const { broken, level, weakVariety } = assess(password, meter);
  const levels = (meter.dataset.levels || "").split("|");
  meter.querySelector("meter").value = level;
  const missing = [];
  for (const rule of meter.querySelectorAll("[data-rule]:not([data-server])")) {
    const isBroken = "advice" in rule.dataset ? weakVariety : broken[rule.dataset.rule];
    rule.classList.toggle("rule-broken", Boolean(isBroken));
    rule.classList.toggle("rule-ok", !isBroken);
    if (isBroken) missing.push(rule.textContent.trim());
  }
  const verdict = levels[level] || "";
  meter.querySelector(".meter-verdict").textContent =
    missing.length ? `${verdict}. ${missing.join(". ")}.` : `${verdict}.`;
  meter.dataset.level = String(level);
}

document.addEventListener("DOMContentLoaded", () => {
  for (const meter of document.querySelectorAll("[data-password-meter]")) {
    const input = document.getElementById(meter.dataset.passwordMeter);
    if (!input) continue;
    input.addEventListener("input", () => update(input, meter));
    if (input.value) update(input, meter);
  }
});
