// The language menu submits itself when picked with a mouse or a finger. From the
// keyboard, arrow keys change the value as they go, so submitting on "change"
// would reload the page under the user's fingers (RGAA 7.4, WCAG 3.2.2): there the
// "Change language" button shows up instead. Without JavaScript it is always shown.
document.addEventListener("DOMContentLoaded", () => {
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    const button = select.form.querySelector("[data-autosubmit-button]");
    let fromKeyboard = false;
    if (button) button.classList.add("js-hidden");
    select.addEventListener("keydown", () => {
      fromKeyboard = true;
      if (button) button.classList.remove("js-hidden");
    });
    select.addEventListener("pointerdown", () => {
      fromKeyboard = false;
    });
    select.addEventListener("change", () => {
      if (!fromKeyboard) select.form.submit();
    });
  }
});
