// Mercato pages work without JavaScript; this only enhances them.
// A category picked in the marketplace filter applies at once.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { if (select.form) select.form.submit(); });
  });
});
