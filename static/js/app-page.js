// The app page inside BigCommerce's iframe. No cookies: every request carries the signed app context
// in the X-App-Context header. The panel is re-rendered by the server and swapped in when it changes,
// so the page notices a new connection (made in the Connect tab) without a manual reload.
(function () {
  const root = document.getElementById("panel");
  if (!root) return;
  const ctx = root.dataset.appContext;
  let last = "";
  let shownHookUrl = "";  // the journey webhook's URL, once its owner asked to see it
  let failedPage = 1;  // the failed-records list's page, kept across the poller's refreshes

  async function call(url, method, body) {
    const headers = { "X-App-Context": ctx };
    if (body) headers["Content-Type"] = "application/x-www-form-urlencoded";
    const response = await fetch(url, { method, headers, body, credentials: "omit", cache: "no-store" });
    return response;
  }

  async function refresh(extra) {
    try {
      const query = [];
      if (extra) query.push("error=" + encodeURIComponent(extra));
      if (failedPage > 1) query.push("failed_page=" + failedPage);
      const url = root.dataset.panelUrl + (query.length ? "?" + query.join("&") : "");
      const response = await call(url, "GET");
      if (!response.ok) return;
      const html = await response.text();
      const version = response.headers.get("X-Panel-Version") || html;
      // Someone typing in the panel's text box keeps what they typed: the next poll swaps the panel in.
      // (A read-only field, the journey webhook's URL, is no text box: the panel goes on refreshing.)
      const typing = document.activeElement && root.contains(document.activeElement) &&
        document.activeElement.matches("input[type=text]:not([readonly])");
      if ((version !== last && !typing) || extra) {
        last = version;
        root.innerHTML = html;
        widths();
        hookShow(false);
      }
    } catch (e) { /* offline for a moment: the next poll tries again */ }
  }

  async function act(url, body) {
    const response = await call(url, "POST", body || "");
    let message = "";
    if (!response.ok) {
      try { message = (await response.json()).error || ""; } catch (e) { message = "Something went wrong."; }
    }
    await refresh(message);
  }

  // The journey webhook's URL: fetched on request (never part of the polled panel), shown in its field.
  async function hookUrl(url, op) {
    const response = await call(url, "POST", "op=" + encodeURIComponent(op));
    let data = {};
    try { data = await response.json(); } catch (e) { data = {}; }
    if (data.hook_url) shownHookUrl = data.hook_url;
    await refresh(response.ok ? "" : (data.error || "Something went wrong."));
    hookShow(true);
  }

  // The URL once shown stays shown (in this page only) when a poll swaps a fresher panel in.
  function hookShow(select) {
    const details = root.querySelector("#consent-hook");
    const field = root.querySelector("#consent-hook-url");
    if (!shownHookUrl || !field) return;
    if (details) details.open = true;
    field.value = shownHookUrl;
    field.hidden = false;
    if (select) field.select();
  }

  root.addEventListener("click", function (event) {
    const target = event.target.closest("[data-action]");
    if (!target || target.disabled) return;
    const action = target.dataset.action;
    if (action === "sync-now") act(root.dataset.syncUrl);
    if (action === "manager") act(root.dataset.managersUrl, "bc_user_id=" + encodeURIComponent(target.dataset.user) + "&allowed=" + target.dataset.allowed);
    if (action === "post") act(target.dataset.url);
    if (action === "hook-url") {
      if (target.dataset.op === "rotate" && !confirm("Replace the URL? The one pasted in Ortto stops working until you paste the new one.")) return;
      hookUrl(target.dataset.url, target.dataset.op);
    }
    if (action === "failed-page") { failedPage = parseInt(target.dataset.page, 10) || 1; refresh(); }
    if (action === "disconnect" && confirm("Disconnect this store from Ortto? Syncing stops; nothing is deleted in Ortto.")) act(root.dataset.disconnectUrl);
  });
  root.addEventListener("submit", function (event) {
    const form = event.target.closest("form[data-action=form]");
    if (!form) return;
    event.preventDefault();
    if (document.activeElement) document.activeElement.blur();  // the answer's panel replaces the form
    act(form.dataset.url, new URLSearchParams(new FormData(form)).toString());
  });
  root.addEventListener("change", function (event) {
    const target = event.target;
    if (target.dataset && target.dataset.action === "tracking") {
      target.disabled = true;
      act(root.dataset.trackingUrl, "enabled=" + (target.checked ? "1" : "0"));
    }
    if (target.dataset && target.dataset.action === "toggle") {
      target.disabled = true;
      act(target.dataset.url, "enabled=" + (target.checked ? "1" : "0"));
    }
  });

  // Progress bars carry data-percent: the CSP refuses style attributes, not CSSOM writes.
  function widths() {
    root.querySelectorAll("[data-percent]").forEach(function (el) { el.style.width = el.dataset.percent + "%"; });
  }
  // "Sync now (available in 40 s)": the server names the moment; the page counts down to it, and the
  // poller swaps in the enabled button once the server says it is open.
  function countdown() {
    root.querySelectorAll("[data-available-at]").forEach(function (button) {
      const left = Math.max(0, Math.ceil((Date.parse(button.dataset.availableAt) - Date.now()) / 1000));
      const el = button.querySelector("[data-countdown]");
      if (el) el.textContent = String(left);
    });
  }
  setInterval(countdown, 1000);
  widths();
  last = root.querySelector("#panel-body") ? root.querySelector("#panel-body").dataset.version : "";
  setInterval(function () { if (!document.hidden) refresh(); }, 2000);
})();
