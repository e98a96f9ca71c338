"use strict";
// MoneyTracker UI: plain DOM, no framework, no inline script (the CSP forbids it).
// Amounts travel as integer cents; the UI parses and formats them without floating point.

(function () {
  const state = { csrf: null, accounts: [], categories: false };
  const $ = (selector) => document.querySelector(selector);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    return node;
  }

  function notify(message, ok) {
    const box = $("#notice");
    box.textContent = message;
    box.classList.toggle("ok", Boolean(ok));
    box.hidden = false;
    clearTimeout(notify.timer);
    notify.timer = setTimeout(() => { box.hidden = true; }, ok ? 2500 : 8000);
  }

  // "12.34" -> 1234, "-5" -> -500, "1,5" -> 150; null when not a valid amount.
  function parseCents(text) {
    const match = /^\s*([+-])?(\d{1,11})(?:[.,](\d{1,2}))?\s*$/.exec(text);
    if (!match) return null;
    const cents = Number(match[2]) * 100 + Number((match[3] || "").padEnd(2, "0"));
    return match[1] === "-" ? -cents : cents;
  }

  function formatCents(cents) {
    const sign = cents < 0 ? "−" : "";
    const abs = Math.abs(cents);
    const whole = Math.floor(abs / 100).toLocaleString();
    return `${sign}${whole}.${String(abs % 100).padStart(2, "0")}`;
  }

  function amountCell(cents, tag) {
    return el(tag || "td", { class: `amount ${cents < 0 ? "neg" : "pos"}` }, formatCents(cents));
  }

  async function request(path, options) {
    const response = await fetch(path, Object.assign({ credentials: "same-origin" }, options));
    const body = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
    if (!response.ok) {
      const detail = body && body.detail;
      const text = Array.isArray(detail)
        ? detail.map((d) => `${(d.loc || []).slice(-1)[0]}: ${d.msg}`).join("; ")
        : detail || `${response.status} ${response.statusText}`;
      const error = new Error(text);
      error.status = response.status;
      throw error;
    }
    return body;
  }

  async function csrfToken(refresh) {
    if (!state.csrf || refresh) state.csrf = (await request("/api/csrf")).token;
    return state.csrf;
  }

  async function post(path, payload) {
    const send = async (refresh) => request(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": await csrfToken(refresh) },
      body: JSON.stringify(payload),
    });
    try {
      return await send(false);
    } catch (error) {
      if (error.status === 403) return send(true); // expired token (or rotated secret): fetch a new one once
      throw error;
    }
  }

  function renderAccounts(summary) {
    state.accounts = summary.accounts;
    const list = $("#accounts");
    list.replaceChildren();
    if (!summary.accounts.length) list.append(el("li", { class: "empty" }, "No accounts yet: add one below."));
    for (const account of summary.accounts) {
      list.append(el("li", {},
        el("span", {}, account.name, el("span", { class: "count" }, `${account.transactions} tx`)),
        amountCell(account.balance_cents, "strong")));
    }
    const total = $("#total");
    total.textContent = formatCents(summary.total_cents);
    total.className = `amount ${summary.total_cents < 0 ? "neg" : "pos"}`;

    const select = $("#tx-form select[name=account_id]");
    const chosen = select.value;
    select.replaceChildren(...summary.accounts.map((a) => el("option", { value: a.id }, a.name)));
    if (chosen) select.value = chosen;
    $("#tx-form button").disabled = !summary.accounts.length;
  }

  function renderTransactions(rows) {
    const names = new Map(state.accounts.map((a) => [a.id, a.name]));
    const body = $("#transactions");
    body.replaceChildren();
    if (!rows.length) {
      body.append(el("tr", {}, el("td", { colspan: "5", class: "empty" }, "No transactions yet.")));
      return;
    }
    for (const tx of rows) {
      const cells = [
        el("td", {}, tx.occurred_on),
        el("td", {}, names.get(tx.account_id) || `#${tx.account_id}`),
        el("td", {}, tx.description || ""),
      ];
      if (state.categories) cells.push(el("td", {}, tx.category ? el("span", { class: "tag" }, tx.category) : ""));
      cells.push(amountCell(tx.amount_cents));
      body.append(el("tr", {}, ...cells));
    }
  }

  async function refresh() {
    const [summary, rows] = await Promise.all([request("/api/summary"), request("/api/transactions?limit=200")]);
    renderAccounts(summary);
    renderTransactions(rows);
  }

  async function loadVersion() {
    const version = await request("/api/version");
    state.categories = (version.features || []).includes("categories");
    for (const node of document.querySelectorAll(".category")) node.hidden = !state.categories;
    $("#release").textContent = `v${version.release} · schema ${version.schema || "?"}`;
  }

  async function onSubmit(form, build, path, done) {
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      const payload = build(new FormData(form));
      if (!payload) return;
      await post(path, payload);
      done();
      await refresh();
    } catch (error) {
      notify(`Could not save: ${error.message}`);
    } finally {
      button.disabled = false;
    }
  }

  document.addEventListener("DOMContentLoaded", async () => {
    const today = new Date();
    $("#tx-form input[name=occurred_on]").value =
      new Date(today.getTime() - today.getTimezoneOffset() * 60000).toISOString().slice(0, 10);

    $("#account-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const form = event.currentTarget;
      onSubmit(form, (data) => ({ name: data.get("name").trim() }), "/api/accounts", () => {
        form.reset();
        notify("Account added.", true);
      });
    });

    $("#tx-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const form = event.currentTarget;
      onSubmit(form, (data) => {
        const cents = parseCents(data.get("amount"));
        if (cents === null || cents === 0) {
          notify("Amount must be a non-zero number with at most two decimals, e.g. -12.50");
          return null;
        }
        const payload = {
          account_id: Number(data.get("account_id")),
          amount_cents: cents,
          description: data.get("description").trim(),
          occurred_on: data.get("occurred_on"),
        };
        if (state.categories && data.get("category").trim()) payload.category = data.get("category").trim();
        return payload;
      }, "/api/transactions", () => {
        form.querySelector("input[name=amount]").value = "";
        form.querySelector("input[name=description]").value = "";
        notify("Transaction added.", true);
      });
    });

    try {
      await loadVersion();
      await refresh();
    } catch (error) {
      notify(`The API is not available right now (${error.message}). Retry in a moment.`);
    }
  });
})();
