// Mercato pages work without JavaScript; this only enhances them.
document.addEventListener("DOMContentLoaded", function () {
  // A category picked in the marketplace filter applies at once.
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () {
      if (select.form) select.form.submit();
    });
  });
  // One-time secrets: a Copy button beside each (shown only when the script runs).
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var target = document.getElementById(button.getAttribute("data-copy"));
    if (!target || !navigator.clipboard) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(target.textContent).then(function () { button.textContent = "Copied"; });
    });
  });
});
