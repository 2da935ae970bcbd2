// Agent desk: log-in to a cookie session, the live screen-pop over /ws/agent, the disposition
// form, and the agent's own controls (pause, queues, wrap-up, call-backs) over /api/agent/*.
// The page never holds a token: the HttpOnly session cookie goes with every request.
"use strict";

const TEXT = {
  tr: {
    title: "Temsilci masası", skip: "Sonlandırma formuna geç", offline: "Bağlı değil",
    online: "Bağlı", langHelp: "Arayüz dilini değiştirir", tokenLabel: "API anahtarı",
    login: "Giriş", logout: "Çıkış", loginTitle: "Giriş",
    loginHelp: "Anahtarınızı ya da tek kullanımlık giriş bağlantınızı süpervizörünüzden alın. " +
      "Süpervizör bunu şu komutla üretir:",
    loginHelp2: "Bağlantı bir kez açılır; açıldığında bu tarayıcıda oturum açar.",
    badKey: "Bu anahtar tanınmadı ya da iptal edilmiş. Anahtarı kontrol edin ya da " +
      "süpervizörünüzden yenisini isteyin.",
    linkExpired: "Giriş bağlantısı kullanılmış ya da süresi dolmuş. Süpervizörünüzden yeni " +
      "bir bağlantı isteyin ya da anahtarınızla girin.",
    sessionEnded: "Oturumunuz sona erdi. Yeniden giriş yapın.",
    notAgent: "Bu anahtar bir temsilciye ait değil; kontroller yalnız temsilci anahtarıyla çalışır.",
    idle: "Arama bekleniyor", ringing: "Çalıyor", connected: "Görüşmede",
    ended: "Görüşme bitti", number: "Numara", queue: "Kuyruk", wait: "Bekleme",
    ivr: "Sesli yanıt seçimleri", digits: "Tuşlanan", tickets: "Açık talepler",
    recent: "Son aramalar", date: "Tarih", outcome: "Sonuç", agent: "Temsilci",
    disposition: "Sonlandırma", dispTitle: "Görüşmeyi sonlandır", kind: "Sonuç",
    info: "Bilgi verildi", request: "Talep", category: "Kategori", note: "Not",
    save: "Kaydet", none: "Yok", noRecent: "Daha önce araması yok.", unknown: "Bilinmeyen arayan",
    seconds: "sn", historyPending: "Geçmiş yükleniyor…",
    keys: "Klavye: Alt+B bilgi verildi, Alt+T talep, Sekme ile alanlar arasında gezinin, " +
      "Enter ile kaydedin. Alt+M mola, Alt+H hazırım, Alt+E görüşme sonrası işlemi bitir.",
    saved: "Kaydedildi.", ticketOpened: "Talep açıldı: ", ticketJoined: "Açık talebe eklendi: ",
    already: "Bu görüşme zaten kaydedilmiş.", chooseKind: "Bilgi verildi ya da Talep seçin.",
    incoming: "Arama geliyor: ", callEnded: "Görüşme bitti. Sonlandırma formu açık.",
    cancelled: "Arama başka bir temsilciye geçti.", switchTo: "English",
    controls: "Durumum", myState: "Durumum", reason: "Mola nedeni", pause: "Mola ver",
    unpause: "Hazırım", wrapupLabel: "Görüşme sonrası işlem", wrapupEnd: "Bitir",
    queuesTitle: "Kuyruklarım", queuesLegend: "Girdiğim kuyruklar",
    callbacksTitle: "Geri aranacaklar",
    callbacksHelp: "Bugün beklerken kapatan ve o zamandan beri ulaşılamayan arayanlar. " +
      "«Geri ara» önce sizin telefonunuzu çaldırır, açınca vatandaşı arar.",
    callbacksNone: "Geri aranacak kimse yok.", callBack: "Geri ara", calledBack: "Geri arandı",
    callingBack: "Telefonunuz çalıyor; açınca vatandaş aranacak.", missed: "kez kapattı",
    waited: "bekledi", sent: "Gönderildi; Asterisk onayı bekleniyor…",
    failed: "Olmadı: ",
    states: { logged_out: "Kuyrukta değil", available: "Müsait", ringing: "Çalıyor",
      on_call: "Görüşmede", wrapup: "Görüşme sonrası", paused: "Molada",
      unavailable: "Ulaşılamıyor" },
    outcomes: { answered: "Cevaplandı", abandoned: "Beklerken kapattı", timeout: "Zaman aşımı",
      ivr_only: "Yalnız sesli yanıt" },
    kinds: { info: "Bilgi", request: "Talep" },
    statuses: { open: "Açık", in_progress: "İşlemde", resolved: "Çözüldü", rejected: "Reddedildi" },
  },
  en: {
    title: "Agent desk", skip: "Skip to the disposition form", offline: "Not connected",
    online: "Connected", langHelp: "Changes the interface language", tokenLabel: "API token",
    login: "Sign in", logout: "Sign out", loginTitle: "Sign in",
    loginHelp: "Get your token, or a one-time sign-in link, from your supervisor, who makes " +
      "one with:",
    loginHelp2: "A link opens once; it signs this browser in.",
    badKey: "This token is unknown or revoked. Check it, or ask your supervisor for a new one.",
    linkExpired: "This sign-in link was already used or has expired. Ask your supervisor for " +
      "a new one, or sign in with your token.",
    sessionEnded: "Your session has ended. Please sign in again.",
    notAgent: "This token does not belong to an agent; the controls work with agent tokens only.",
    idle: "Waiting for a call", ringing: "Ringing", connected: "On the call",
    ended: "Call ended", number: "Number", queue: "Queue", wait: "Wait",
    ivr: "IVR choices", digits: "Keyed in", tickets: "Open requests",
    recent: "Recent calls", date: "Date", outcome: "Outcome", agent: "Agent",
    disposition: "Disposition", dispTitle: "Close the call", kind: "Outcome",
    info: "Information given", request: "Request", category: "Category", note: "Note",
    save: "Save", none: "None", noRecent: "No earlier calls.", unknown: "Unknown caller",
    seconds: "s", historyPending: "Loading the history…",
    keys: "Keyboard: Alt+B information given, Alt+T request, Tab between fields, Enter saves. " +
      "Alt+M pause, Alt+H ready, Alt+E end after-call work.",
    saved: "Saved.", ticketOpened: "Request opened: ", ticketJoined: "Added to open request: ",
    already: "This call was already recorded.", chooseKind: "Choose information or request.",
    incoming: "Incoming call: ", callEnded: "Call ended. The disposition form is open.",
    cancelled: "The call went to another agent.", switchTo: "Türkçe",
    controls: "My state", myState: "My state", reason: "Pause reason", pause: "Pause",
    unpause: "Ready", wrapupLabel: "After-call work", wrapupEnd: "End",
    queuesTitle: "My queues", queuesLegend: "Queues I am in",
    callbacksTitle: "To call back",
    callbacksHelp: "Today's callers who hung up waiting and were not reached since. " +
      "“Call back” rings your phone first, then dials the citizen when you pick up.",
    callbacksNone: "Nobody to call back.", callBack: "Call back", calledBack: "Called back",
    callingBack: "Your phone is ringing; the citizen is dialled when you pick up.",
    missed: "missed calls", waited: "waited", sent: "Sent; waiting for Asterisk…",
    failed: "Failed: ",
    states: { logged_out: "In no queue", available: "Available", ringing: "Ringing",
      on_call: "On a call", wrapup: "After-call work", paused: "Paused",
      unavailable: "Unavailable" },
    outcomes: { answered: "Answered", abandoned: "Hung up waiting", timeout: "Timed out",
      ivr_only: "IVR only" },
    kinds: { info: "Information", request: "Request" },
    statuses: { open: "Open", in_progress: "In progress", resolved: "Resolved",
      rejected: "Rejected" },
  },
};

const $ = (id) => document.getElementById(id);
const state = { lang: localStorage.getItem("cc_lang") || "tr", me: null, pop: null,
  categories: [], ws: null, retry: 500, tick: null, desk: null, wrapTick: null,
  callers: [], loginError: null, controlFocus: false };

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
  if (state.desk) renderDesk(state.desk);
  renderCallbacks();
  if (state.loginError) showLoginError(state.loginError);
  setLink(state.ws && state.ws.readyState === WebSocket.OPEN);
}

function setLink(on) {
  const link = $("link");
  link.dataset.state = on ? "on" : "off";
  link.textContent = on ? t("online") : t("offline");
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  return node;
}

function fillCategories() {
  const select = $("category");
  const chosen = select.value;
  select.replaceChildren(...state.categories.map((c) => {
    const option = el("option", null, state.lang === "en" ? c.en : c.tr);
    option.value = c.code;
    return option;
  }));
  if (chosen) select.value = chosen;
}

function text(id, value) { $(id).textContent = value ?? ""; }

const LOCALE = () => (state.lang === "en" ? "en-GB" : "tr-TR");

function fmtDate(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleString(LOCALE(), { day: "2-digit", month: "2-digit",
    year: "numeric", hour: "2-digit", minute: "2-digit" });
}

function fmtTime(iso) {
  return iso ? new Date(iso).toLocaleTimeString(LOCALE(), { hour: "2-digit", minute: "2-digit" }) : "";
}

function fmtWait(seconds) {
  return seconds == null ? "" : `${Math.round(seconds)} ${t("seconds")}`;
}

function categoryName(code) {
  const found = state.categories.find((c) => c.code === code);
  return found ? (state.lang === "en" ? found.en : found.tr) : code;
}

// ---- the pop -----------------------------------------------------------------------------

function renderPop(pop, announce) {
  state.pop = pop;
  $("pop").dataset.stage = pop.stage;
  text("stage", t(pop.stage));
  $("pop-body").hidden = false;
  const caller = pop.caller;
  text("caller-name", caller.name || t("unknown"));
  text("caller-national", caller.national || caller.number || "");
  text("caller-e164", caller.e164 || caller.number || "");
  text("queue", pop.queue);
  text("wait", fmtWait(pop.wait_s));
  text("ivr-path", (pop.ivr.path || []).join(" › "));
  text("ivr-digits", pop.ivr.digits);
  const tickets = pop.open_tickets.map((x) => {
    const li = el("li");
    const status = t("statuses")[x.status] || x.status;
    li.append(el("strong", "num", x.reference), ` · ${categoryName(x.category)} · ${status}`);
    return li;
  });
  if (!tickets.length) tickets.push(el("li", "muted", t("none")));
  $("tickets").replaceChildren(...tickets);
  $("recent-pending").hidden = !pop.history_pending;
  const rows = pop.recent_calls.map((c) => {
    const tr = el("tr");
    tr.append(el("td", "num", fmtDate(c.date)));
    tr.append(el("td", null, t("outcomes")[c.outcome] || c.outcome));
    tr.append(el("td", null, c.agent || ""));
    tr.append(el("td", null, c.disposition ? t("kinds")[c.disposition] : ""));
    return tr;
  });
  if (!rows.length && !pop.history_pending) {
    const tr = el("tr", "muted");
    const td = el("td", null, t("noRecent"));
    td.colSpan = 4;
    tr.append(td);
    rows.push(tr);
  }
  $("recent").tBodies[0].replaceChildren(...rows);
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
  if (pop.stage === "ringing") $("announce").textContent = t("incoming") + (caller.name || caller.national || "");
  if (pop.stage === "ended") {
    $("announce").textContent = t("callEnded");
    $("kind-info").focus();
    loadCallbacks();
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

// ---- the API (the session cookie goes along; no token in the page) -----------------------

async function api(path, options = {}) {
  const init = { credentials: "same-origin", ...options, headers: { ...(options.headers || {}) } };
  if (init.body !== undefined) init.headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    return { ok: false, status: 0, body: { error: { message: String(err) } } };
  }
  const body = await response.json().catch(() => ({}));
  if (response.status === 401 && state.me) sessionEnded();
  return { ok: response.ok, status: response.status, body };
}

function errorText(body) {
  return body && body.error ? body.error.message : "error";
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
    text("result", errorText(body));
    return;
  }
  if (body.duplicate) text("result", t("already") + (body.reference ? ` ${body.reference}` : ""));
  else if (body.ticket) text("result", (body.ticket.merged ? t("ticketJoined") : t("ticketOpened")) + body.ticket.reference);
  else text("result", t("saved"));
}

// ---- the agent's controls ---------------------------------------------------------------

function reasonName(code) {
  const reasons = state.desk ? state.desk.pause_reasons : [];
  const found = reasons.find((r) => r.code === code);
  return found ? (state.lang === "en" ? found.en : found.tr) : code;
}

function renderDesk(desk) {
  state.desk = desk;
  const badge = $("state");
  badge.dataset.state = desk.state;
  badge.textContent = t("states")[desk.state] || desk.state;
  text("state-reason", desk.paused && desk.state === "paused" && desk.reason ? `(${reasonName(desk.reason)})` : "");
  const select = $("reason");
  const chosen = select.value;
  select.replaceChildren(...desk.pause_reasons.filter((r) => r.code !== "wrapup").map((r) => {
    const option = el("option", null, state.lang === "en" ? r.en : r.tr);
    option.value = r.code;
    return option;
  }));
  if (chosen) select.value = chosen;
  const inQueue = desk.queues.some((q) => q.member);
  $("pause-box").hidden = desk.paused || !inQueue;
  $("unpause").hidden = !desk.paused || desk.state === "wrapup";
  renderWrapup(desk);
  renderQueues(desk);
  keepFocus();
}

// A control that hides itself (Mola ver → Hazırım → Bitir) hands the focus to the one that
// takes its place, so the keyboard never falls back to the top of the page.
function keepFocus() {
  const active = document.activeElement;
  if (!state.controlFocus || (active && active !== document.body && !active.closest("[hidden]"))) return;
  for (const id of ["unpause", "wrapup-end", "pause"]) {
    const next = $(id);
    if (!next.closest("[hidden]")) { next.focus(); break; }
  }
}

function renderWrapup(desk) {
  clearInterval(state.wrapTick);
  const box = $("wrapup");
  const wrap = desk.wrapup || {};
  const inWrapup = desk.state === "wrapup";
  box.hidden = !inWrapup;
  if (!inWrapup) return;
  if (wrap.active && wrap.left_s != null) {
    const until = Date.now() + wrap.left_s * 1000;
    const show = () => {
      const left = Math.max(0, Math.round((until - Date.now()) / 1000));
      text("wrapup-left", `${left} ${t("seconds")}`);
    };
    show();
    state.wrapTick = setInterval(show, 1000);
  } else {
    text("wrapup-left", "");
  }
}

function renderQueues(desk) {
  const box = $("queues");
  const focused = document.activeElement && document.activeElement.dataset
    ? document.activeElement.dataset.queue : null;
  box.replaceChildren(...desk.queues.map((q) => {
    const label = el("label", "queue");
    const input = el("input");
    input.type = "checkbox";
    input.checked = q.member;
    input.dataset.queue = q.queue;
    input.id = `queue-${q.queue}`;
    input.addEventListener("change", () => toggleQueue(input));
    label.append(input, " ", el("span", null, q.queue));
    if (q.paused) label.append(" ", el("small", "muted", `(${reasonName(q.reason)})`));
    return label;
  }));
  if (focused) {
    const again = box.querySelector(`input[data-queue="${CSS.escape(focused)}"]`);
    if (again) again.focus();
  }
}

async function control(path, body) {
  state.controlFocus = true;
  text("control-result", t("sent"));
  const options = { method: "POST" };
  if (body !== undefined) options.body = JSON.stringify(body);
  const { ok, body: answer } = await api(path, options);
  text("control-result", ok ? "" : t("failed") + errorText(answer));
  if (ok) setTimeout(loadDesk, 300); // the change arrives as AMI events; the push may beat this
  return ok;
}

async function toggleQueue(input) {
  const queue = encodeURIComponent(input.dataset.queue);
  const verb = input.checked ? "join" : "leave";
  input.disabled = true;
  const ok = await control(`/api/agent/queues/${queue}/${verb}`);
  input.disabled = false;
  if (!ok) input.checked = !input.checked;
}

async function loadDesk() {
  const { ok, body } = await api("/api/agent/desk");
  if (ok) renderDesk(body);
  else text("control-result", errorText(body));
}

// ---- call-backs --------------------------------------------------------------------------

function renderCallbacks() {
  const list = $("callbacks");
  $("callbacks-empty").hidden = state.callers.length > 0;
  list.replaceChildren(...state.callers.map((c) => {
    const li = el("li", "callback");
    li.dataset.linkedid = c.linkedid;
    const who = el("p", "who");
    who.append(el("strong", "num", c.caller_national || c.caller_number), " ",
      el("span", null, c.caller_name || ""));
    const facts = el("p", "muted");
    const bits = [fmtTime(c.started_at), c.queue || "", `${fmtWait(c.wait_s)} ${t("waited")}`];
    if (c.missed_calls > 1) bits.push(`${c.missed_calls} ${t("missed")}`);
    facts.textContent = bits.filter(Boolean).join(" · ");
    li.append(who, facts);
    if (c.callbacks && c.callbacks.length) {
      const last = c.callbacks[c.callbacks.length - 1];
      li.append(el("p", "done", `${t("calledBack")}: ${fmtTime(last.at)} · ${last.agent}`));
    }
    const button = el("button", "call", t("callBack"));
    button.type = "button";
    button.dataset.linkedid = c.linkedid;
    button.setAttribute("aria-label", `${t("callBack")}: ${c.caller_number} ${c.caller_name || ""}`);
    button.addEventListener("click", () => callBack(c, button));
    li.append(button);
    return li;
  }));
}

async function loadCallbacks() {
  const { ok, body } = await api("/api/agent/callbacks");
  if (!ok) return;
  state.callers = body.callers;
  renderCallbacks();
}

async function callBack(caller, button) {
  button.disabled = true;
  const path = `/api/agent/callbacks/${encodeURIComponent(caller.linkedid)}/call` +
    `?server=${encodeURIComponent(caller.server)}`;
  const { ok, body } = await api(path, { method: "POST" });
  text("control-result", ok ? t("callingBack") : t("failed") + errorText(body));
  button.disabled = false;
  if (ok) loadCallbacks();
}

// ---- the live link -------------------------------------------------------------------------

function connect() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${proto}//${location.host}/ws/agent`);
  state.ws = ws;
  ws.onopen = () => { state.retry = 500; setLink(true); loadDesk(); };
  ws.onclose = () => {
    setLink(false);
    if (!state.me) return;
    setTimeout(connect, state.retry);
    state.retry = Math.min(state.retry * 2, 15000);
  };
  ws.onmessage = (event) => {
    const msg = JSON.parse(event.data);
    if (msg.type === "hello") {
      state.categories = msg.categories;
      fillCategories();
    } else if (msg.type === "pop") {
      renderPop(msg, true);
    } else if (msg.type === "desk") {
      renderDesk(msg);
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

// ---- log-in ------------------------------------------------------------------------------

function showLoginError(key) {
  state.loginError = key;
  const box = $("login-error");
  box.textContent = key ? t(key) : "";
  box.hidden = !key;
}

function showLogin(errorKey) {
  $("desk").hidden = true;
  $("logout").hidden = true;
  $("link").hidden = true;
  $("login").hidden = false;
  showLoginError(errorKey || null);
  $("token").focus();
}

function sessionEnded() {
  state.me = null;
  if (state.ws) state.ws.close();
  showLogin("sessionEnded");
}

async function signIn(token) {
  const { ok, status } = await api("/agent/session", { method: "POST", body: JSON.stringify({ token }) });
  if (!ok) {
    showLogin(status === 401 || status === 400 ? "badKey" : "sessionEnded");
    $("token").select();
    return false;
  }
  return true;
}

async function start() {
  const url = new URL(location.href);
  let problem = null;
  if (url.searchParams.get("login") === "expired") problem = "linkExpired";
  const handed = url.searchParams.get("token"); // an old-style link: exchanged, then dropped
  if (url.searchParams.has("token") || url.searchParams.has("login")) {
    url.searchParams.delete("token");
    url.searchParams.delete("login");
    history.replaceState(null, "", url);
  }
  if (handed && !(await signIn(handed))) return;
  const me = await api("/api/me");
  if (!me.ok) { showLogin(problem); return; }
  state.me = me.body;
  state.loginError = null;
  $("login").hidden = true;
  $("desk").hidden = false;
  $("logout").hidden = false;
  $("link").hidden = false;
  text("whoami", me.body.agent || me.body.interface || me.body.name);
  if (me.body.role !== "agent") text("control-result", t("notAgent"));
  connect();
  loadCallbacks();
  setInterval(loadCallbacks, 30000);
}

$("lang").addEventListener("click", () => {
  state.lang = state.lang === "tr" ? "en" : "tr";
  localStorage.setItem("cc_lang", state.lang);
  applyLanguage();
});
$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (await signIn($("token").value.trim())) {
    $("token").value = "";
    start();
  }
});
$("logout").addEventListener("click", async () => {
  await api("/agent/logout", { method: "POST" });
  state.me = null;
  if (state.ws) state.ws.close();
  showLogin(null);
});
$("pause").addEventListener("click", () => control("/api/agent/pause", { reason: $("reason").value }));
$("unpause").addEventListener("click", () => control("/api/agent/unpause"));
$("wrapup-end").addEventListener("click", () => control("/api/agent/wrapup/end"));
$("kind-info").addEventListener("change", onKindChange);
$("kind-request").addEventListener("change", onKindChange);
$("disposition").addEventListener("submit", submitDisposition);
applyLanguage();
start();
