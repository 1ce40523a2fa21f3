// The Syncing your data page: polls the run's progress (a static file, so the CSP needs no inline script).
(function () {
  const box = document.getElementById("syncing"), bar = document.getElementById("bar");
  bar.style.width = bar.dataset.percent + "%";  // CSSOM, not a style attribute: allowed by the CSP
  const text = document.getElementById("progress-text"), err = document.getElementById("progress-error");
  async function poll() {
    try {
      const r = await fetch(box.dataset.progressUrl, { cache: "no-store", credentials: "same-origin" });
      if (r.ok) {
        const p = await r.json();
        bar.style.width = p.percent + "%";
        bar.parentElement.setAttribute("aria-valuenow", p.percent);
        text.textContent = p.status_label + " — " + p.processed + " of " + (p.total || "…") + " records" + (p.failed ? " (" + p.failed + " failed)" : "");
        if (p.error_summary) { err.hidden = false; err.textContent = p.error_summary; }
        if (p.finished) return;
      }
    } catch (e) {}
    setTimeout(poll, 1000);
  }
  poll();
})();
