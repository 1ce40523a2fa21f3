// A <select data-autosubmit> submits its form when changed (the sandbox's user switcher and order status).
// A static file, not an onchange attribute: the sandbox's Content-Security-Policy runs no inline handlers.
document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
  select.addEventListener("change", function () { select.form.submit(); });
});
