// The Syncing your data page: polls the run's progress (a static file, so the CSP needs no inline script).
(function () {
  const box = document.getElementById("syncing"), bar = document.getElementById("bar");
  bar.style.width = bar.dataset.percent + "%";  // CSSOM, not a style attribute: allowed by the CSP
  const text = document.getElementById("progress-text"), err = document.getElementById("progress-error");
  const done = document.getElementById("done"), wait = document.getElementById("done-wait");
  // Done goes back to the app page that opened this tab (it shows the connection by itself): close this
  // tab, which the browser allows for a tab a link opened, and it returns to the opener's tab (focused
  // here too where an opener is reachable). If the browser keeps the tab open (the flow was opened some
  // other way), the link itself leads to the app in the control panel.
  done.addEventListener("click", function (event) {
    event.preventDefault();
    try { if (window.opener && !window.opener.closed) window.opener.focus(); } catch (e) {}
    window.close();
    setTimeout(function () { if (!window.closed) window.location.href = done.href; }, 300);
  });
  async function poll() {
    try {
      const r = await fetch(box.dataset.progressUrl, { cache: "no-store", credentials: "same-origin" });
      if (r.ok) {
        const p = await r.json();
        bar.style.width = p.percent + "%";
        bar.parentElement.setAttribute("aria-valuenow", p.percent);
        text.textContent = p.status_label + " — " + p.processed + " of " + (p.total || "…") + " records" + (p.failed ? " (" + p.failed + " failed)" : "");
        if (p.error_summary) { err.hidden = false; err.textContent = p.error_summary; }
        if (p.finished) { done.hidden = false; wait.hidden = true; return; }
      }
    } catch (e) {}
    setTimeout(poll, 1000);
  }
  poll();
})();
