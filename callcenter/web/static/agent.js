// Agent screen: live screen-pop over /ws/agent and the end-of-call disposition form.
"use strict";

const TEXT = {
  tr: {
    title: "Temsilci ekranı", skip: "Sonlandırma formuna geç", offline: "Bağlı değil",
    online: "Bağlı", langHelp: "Arayüz dilini değiştirir", tokenLabel: "API anahtarı",
    login: "Giriş", idle: "Arama bekleniyor", ringing: "Çalıyor", connected: "Görüşmede",
    ended: "Görüşme bitti", number: "Numara", queue: "Kuyruk", wait: "Bekleme",
    ivr: "Sesli yanıt seçimleri", digits: "Tuşlanan", tickets: "Açık talepler",
    recent: "Son aramalar", date: "Tarih", outcome: "Sonuç", agent: "Temsilci",
    disposition: "Sonlandırma", dispTitle: "Görüşmeyi sonlandır", kind: "Sonuç",
    info: "Bilgi verildi", request: "Talep", category: "Kategori", note: "Not",
    save: "Kaydet", none: "Yok", unknown: "Bilinmeyen arayan", seconds: "sn",
    withheld: "Gizli numara",
    keys: "Klavye: Alt+B bilgi verildi, Alt+T talep, Sekme ile alanlar arasında gezinin, " +
      "Enter ile kaydedin.",
    saved: "Kaydedildi.", ticketOpened: "Talep açıldı: ", ticketJoined: "Açık talebe eklendi: ",
    already: "Bu görüşme zaten kaydedilmiş.", chooseKind: "Bilgi verildi ya da Talep seçin.",
    incoming: "Arama geliyor: ", callEnded: "Görüşme bitti. Sonlandırma formu açık.",
    cancelled: "Arama başka bir temsilciye geçti.", switchTo: "English",
    outcomes: { answered: "Cevaplandı", abandoned: "Beklerken kapattı", timeout: "Zaman aşımı",
      ivr_only: "Yalnız sesli yanıt" },
    kinds: { info: "Bilgi", request: "Talep" },
  },
  en: {
    title: "Agent screen", skip: "Skip to the disposition form", offline: "Not connected",
    online: "Connected", langHelp: "Changes the interface language", tokenLabel: "API token",
    login: "Sign in", idle: "Waiting for a call", ringing: "Ringing", connected: "On the call",
    ended: "Call ended", number: "Number", queue: "Queue", wait: "Wait",
    ivr: "IVR choices", digits: "Keyed in", tickets: "Open requests",
    recent: "Recent calls", date: "Date", outcome: "Outcome", agent: "Agent",
    disposition: "Disposition", dispTitle: "Close the call", kind: "Outcome",
    info: "Information given", request: "Request", category: "Category", note: "Note",
    save: "Save", none: "None", unknown: "Unknown caller", seconds: "s",
    withheld: "Withheld",
    keys: "Keyboard: Alt+B information given, Alt+T request, Tab between fields, Enter saves.",
    saved: "Saved.", ticketOpened: "Request opened: ", ticketJoined: "Added to open request: ",
    already: "This call was already recorded.", chooseKind: "Choose information or request.",
    incoming: "Incoming call: ", callEnded: "Call ended. The disposition form is open.",
    cancelled: "The call went to another agent.", switchTo: "Türkçe",
    outcomes: { answered: "Answered", abandoned: "Hung up waiting", timeout: "Timed out",
      ivr_only: "IVR only" },
    kinds: { info: "Information", request: "Request" },
  },
};

const $ = (id) => document.getElementById(id);
const state = { lang: localStorage.getItem("cc_lang") || "tr", token: null, pop: null,
  categories: [], ws: null, retry: 500, tick: null };

function t(key) { return TEXT[state.lang][key] ?? key; }

function applyLanguage() {
  document.documentElement.lang = state.lang;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  const button = $("lang");
  button.textContent = t("switchTo");
  button.lang = state.lang === "tr" ? "en" : "tr";
  fillCategories();
  if (state.pop) renderPop(state.pop, false);
  else $("stage").textContent = t("idle");
  setLink(state.ws && state.ws.readyState === WebSocket.OPEN);
}

function setLink(on) {
  const link = $("link");
  link.dataset.state = on ? "on" : "off";
  link.textContent = on ? t("online") : t("offline");
}

function fillCategories() {
  const select = $("category");
  const chosen = select.value;
  select.replaceChildren(...state.categories.map((c) => {
    const option = document.createElement("option");
    option.value = c.code;
    option.textContent = state.lang === "en" ? c.en : c.tr;
    return option;
  }));
  if (chosen) select.value = chosen;
}

function text(id, value) { $(id).textContent = value ?? ""; }

function fmtDate(iso) {
  return iso ? new Date(iso).toLocaleString(state.lang === "en" ? "en-GB" : "tr-TR") : "";
}

function fmtWait(seconds) {
  return seconds == null ? "" : `${Math.round(seconds)} ${t("seconds")}`;
}

function renderPop(pop, announce) {
  state.pop = pop;
  $("pop").dataset.stage = pop.stage;
  text("stage", t(pop.stage));
  $("pop-body").hidden = false;
  const caller = pop.caller;
  text("caller-name", caller.name || t("unknown"));
  text("caller-national", caller.withheld ? t("withheld") : caller.national || caller.number || "");
  text("caller-e164", caller.e164 || "");
  text("queue", pop.queue);
  text("wait", fmtWait(pop.wait_s));
  // The menu's own words ("Ana menü › Sosyal yardım › Gıda yardımı"), not dialplan contexts.
  const words = pop.ivr.words || {};
  text("ivr-path", (words[state.lang] || words.tr || []).join(" › "));
  text("ivr-digits", pop.ivr.digits);
  const tickets = pop.open_tickets.map((x) => {
    const li = document.createElement("li");
    li.textContent = `${x.reference} · ${x.category} · ${x.status}`;
    return li;
  });
  if (!tickets.length) {
    const li = document.createElement("li");
    li.textContent = t("none");
    tickets.push(li);
  }
  $("tickets").replaceChildren(...tickets);
  $("recent").tBodies[0].replaceChildren(...pop.recent_calls.map((c) => {
    const tr = document.createElement("tr");
    for (const value of [fmtDate(c.date), t("outcomes")[c.outcome] || c.outcome, c.agent,
      c.disposition ? t("kinds")[c.disposition] : ""]) {
      const td = document.createElement("td");
      td.textContent = value ?? "";
      tr.append(td);
    }
    return tr;
  }));
  clearInterval(state.tick);
  if (pop.stage === "ringing" && pop.wait_s != null) {
    const shownAt = Date.now();
    state.tick = setInterval(() => text("wait", fmtWait(pop.wait_s + (Date.now() - shownAt) / 1000)), 1000);
  }
  const form = $("disposition");
  if (pop.stage !== "ringing") {
    if (form.hidden || form.dataset.linkedid !== pop.linkedid) resetForm(pop);
    form.hidden = false;
  }
  if (!announce) return;
  if (pop.stage === "ringing") {
    const who = caller.name || (caller.withheld ? t("withheld") : caller.national || "");
    $("announce").textContent = t("incoming") + who;
  }
  if (pop.stage === "ended") {
    $("announce").textContent = t("callEnded");
    $("kind-info").focus();
  }
}

function resetForm(pop) {
  const form = $("disposition");
  form.reset();
  form.dataset.linkedid = pop.linkedid;
  form.dataset.server = pop.server;
  $("category").disabled = true;
  $("save").disabled = false;
  text("result", "");
}

function onKindChange() {
  const request = $("kind-request").checked;
  $("category").disabled = !request;
  $("category").required = request;
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options,
    headers: { ...(options.headers || {}), Authorization: `Bearer ${state.token}`,
      "Content-Type": "application/json" } });
  const body = await response.json().catch(() => ({}));
  return { ok: response.ok, status: response.status, body };
}

async function submitDisposition(event) {
  event.preventDefault();
  const form = $("disposition");
  const kind = form.elements.kind.value;
  if (!kind) { text("result", t("chooseKind")); $("kind-info").focus(); return; }
  const payload = { server: form.dataset.server, kind, note: $("note").value };
  if (kind === "request") payload.category = $("category").value;
  $("save").disabled = true;
  const path = `/api/calls/${encodeURIComponent(form.dataset.linkedid)}/disposition`;
  const { ok, body } = await api(path, { method: "POST", body: JSON.stringify(payload) });
  if (!ok) {
    $("save").disabled = false;
    text("result", body.error ? body.error.message : "error");
    return;
  }
  if (body.duplicate) text("result", t("already") + (body.reference ? ` ${body.reference}` : ""));
  else if (body.ticket) text("result", (body.ticket.merged ? t("ticketJoined") : t("ticketOpened")) + body.ticket.reference);
  else text("result", t("saved"));
}

function connect() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${proto}//${location.host}/ws/agent?token=${encodeURIComponent(state.token)}`);
  state.ws = ws;
  ws.onopen = () => { state.retry = 500; setLink(true); };
  ws.onclose = () => {
    setLink(false);
    setTimeout(connect, state.retry);
    state.retry = Math.min(state.retry * 2, 15000);
  };
  ws.onmessage = (event) => {
    const msg = JSON.parse(event.data);
    if (msg.type === "hello") {
      state.categories = msg.categories;
      fillCategories();
      text("whoami", msg.agent || msg.interface || "");
    } else if (msg.type === "pop") {
      renderPop(msg, true);
    } else if (msg.type === "cancel" && state.pop && state.pop.linkedid === msg.linkedid &&
               state.pop.stage === "ringing") {
      state.pop = null;
      $("pop").dataset.stage = "idle";
      $("pop-body").hidden = true;
      text("stage", t("idle"));
      $("announce").textContent = t("cancelled");
    }
  };
}

async function start() {
  const url = new URL(location.href);
  if (url.searchParams.has("token")) {
    sessionStorage.setItem("cc_token", url.searchParams.get("token"));
    url.searchParams.delete("token");
    history.replaceState(null, "", url);
  }
  state.token = sessionStorage.getItem("cc_token");
  if (!state.token) { $("login").hidden = false; $("token").focus(); return; }
  const me = await api("/api/me");
  if (!me.ok) {
    sessionStorage.removeItem("cc_token");
    $("login").hidden = false;
    $("token").focus();
    return;
  }
  $("login").hidden = true;
  $("main").hidden = false;
  connect();
}

$("lang").addEventListener("click", () => {
  state.lang = state.lang === "tr" ? "en" : "tr";
  localStorage.setItem("cc_lang", state.lang);
  applyLanguage();
});
$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem("cc_token", $("token").value.trim());
  start();
});
$("kind-info").addEventListener("change", onKindChange);
$("kind-request").addEventListener("change", onKindChange);
$("disposition").addEventListener("submit", submitDisposition);
applyLanguage();
start();
