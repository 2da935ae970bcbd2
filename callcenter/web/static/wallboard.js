// Supervisor wallboard: renders the board the service pushes over /ws/wallboard.
// Waits and times in state tick here, every second, from the server's clock (offset-corrected).
"use strict";
(() => {
  const TEXT = {
    tr: {
      title: "Çağrı Merkezi — Canlı Pano",
      agents: "Temsilciler",
      agent: "Temsilci",
      state: "Durum",
      inState: "Süre",
      queuesCol: "Kuyruklar",
      total: "Tüm kuyruklar",
      waiting: "Bekleyen",
      oldest: "En uzun bekleme",
      offered: "Gelen",
      answered: "Cevaplanan",
      abandoned: "Kaçan",
      short: "kısa",
      unanswered: "Süre aşımı / diğer",
      sl: "Hizmet seviyesi",
      asa: "Ort. cevaplama",
      aht: "Ort. görüşme",
      today: "Bugün",
      available: "Müsait",
      ringing: "Çalıyor",
      on_call: "Görüşmede",
      wrapup: "Çağrı sonrası",
      paused: "Molada",
      unavailable: "Kapalı",
      connecting: "Bağlanıyor…",
      live: "Canlı",
      lost: "Bağlantı koptu, yeniden deneniyor…",
      noQueues: "Henüz kuyruk bilgisi yok",
      noAgents: "Oturum açmış temsilci yok",
      sec: "sn",
      switchTo: "EN",
    },
    en: {
      title: "Call Center — Live Wallboard",
      agents: "Agents",
      agent: "Agent",
      state: "State",
      inState: "Time in state",
      queuesCol: "Queues",
      total: "All queues",
      waiting: "Waiting",
      oldest: "Longest wait",
      offered: "Offered",
      answered: "Answered",
      abandoned: "Abandoned",
      short: "short",
      unanswered: "Timeout / other",
      sl: "Service level",
      asa: "ASA",
      aht: "AHT",
      today: "Today",
      available: "Available",
      ringing: "Ringing",
      on_call: "On call",
      wrapup: "Wrap-up",
      paused: "Paused",
      unavailable: "Unavailable",
      connecting: "Connecting…",
      live: "Live",
      lost: "Disconnected, retrying…",
      noQueues: "No queue data yet",
      noAgents: "No agents logged in",
      sec: "s",
      switchTo: "TR",
    },
  };
  const STATES = ["available", "ringing", "on_call", "wrapup", "paused", "unavailable"];

  const params = new URLSearchParams(location.search);
  let lang = params.get("lang") || localStorage.getItem("wallboard.lang") || "tr";
  if (!TEXT[lang]) lang = "tr";
  let board = null;
  let offset = 0; // local clock minus server clock, in seconds
  let connState = "connecting";
  let retryMs = 500;

  const t = (key) => TEXT[lang][key] ?? TEXT.tr[key] ?? key;
  const serverNow = () => Date.now() / 1000 - offset;
  const pad = (n) => String(n).padStart(2, "0");

  function duration(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    return h ? `${h}:${pad(m)}:${pad(s % 60)}` : `${pad(m)}:${pad(s % 60)}`;
  }
  function percent(x) {
    if (x === null || x === undefined) return "–";
    const n = Math.round(x * 100);
    return lang === "tr" ? `%${n}` : `${n}%`; // Turkish writes the sign first
  }
  function seconds(x) {
    return x === null || x === undefined ? "–" : `${Math.round(x)} ${t("sec")}`;
  }
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v !== null && v !== undefined) node.setAttribute(k, v);
    }
    for (const child of children) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  function stat(field, value, label, level) {
    return el(
      "div",
      { class: "stat", "data-field": field, "data-level": level },
      el("span", { class: "num" }, value),
      el("span", { class: "label" }, label),
    );
  }
  function waitLevel(entered, threshold) {
    if (!entered) return "ok";
    const age = serverNow() - entered;
    if (age >= threshold) return "alert";
    return age >= threshold / 2 ? "warn" : "ok";
  }
  function todayStats(day) {
    const abandoned = day.short_abandoned
      ? `${day.abandoned} (+${day.short_abandoned} ${t("short")})`
      : day.abandoned;
    return [
      stat("offered", day.offered, t("offered")),
      stat("answered", day.answered, t("answered")),
      stat("abandoned", abandoned, t("abandoned")),
      stat("unanswered", day.unanswered, t("unanswered")),
      stat("sl", percent(day.service_level), t("sl")),
      stat("asa", seconds(day.asa_s), t("asa")),
      stat("aht", seconds(day.aht_s), t("aht")),
    ];
  }

  function renderTotals(target) {
    const tot = board.totals;
    const oldest = tot.oldest_entered_at;
    target.replaceChildren(
      el("div", { class: "totals-title" }, `${t("total")} · ${t("today")}`),
      stat("waiting", tot.waiting, t("waiting")),
      stat("oldest", oldest ? duration(serverNow() - oldest) : "–", t("oldest")),
      ...todayStats(tot),
    );
  }
  function renderQueue(q) {
    const oldest = q.oldest_entered_at;
    const chips = STATES.map((s) =>
      el(
        "span",
        { class: "chip", "data-state": s, "data-field": `agents-${s}` },
        el("span", { class: "num" }, q.agents[s] ?? 0),
        ` ${t(s)}`,
      ),
    );
    return el(
      "article",
      { class: "queue", "data-queue": q.name },
      el("h2", {}, q.name),
      el(
        "div",
        { class: "live" },
        stat("waiting", q.waiting, t("waiting"), q.waiting ? "busy" : "ok"),
        stat(
          "oldest",
          oldest ? duration(serverNow() - oldest) : "–",
          t("oldest"),
          waitLevel(oldest, q.sl_threshold_s),
        ),
      ),
      el("div", { class: "chips" }, ...chips),
      el("div", { class: "today" }, ...todayStats(q.today)),
    );
  }
  function renderAgent(a) {
    const label = a.reason ? `${t(a.state)} · ${a.reason}` : t(a.state);
    return el(
      "tr",
      { "data-agent": a.name, "data-state": a.state },
      el("td", { class: "name" }, a.name),
      el("td", {}, el("span", { class: "badge", "data-state": a.state, "data-field": "state" }, label)),
      el("td", { class: "since", "data-field": "since" }, duration(serverNow() - a.since)),
      el("td", { class: "queues-col" }, a.queues.join(", ")),
    );
  }

  function render() {
    document.documentElement.lang = lang;
    document.title = t("title");
    for (const node of document.querySelectorAll("[data-i18n]")) {
      node.textContent = t(node.dataset.i18n);
    }
    document.getElementById("lang").textContent = t("switchTo");
    const conn = document.getElementById("conn");
    conn.dataset.state = connState;
    conn.textContent = t(connState);
    document.getElementById("clock").textContent = new Date(serverNow() * 1000)
      .toLocaleTimeString(lang === "tr" ? "tr-TR" : "en-GB");
    if (!board) return;
    renderTotals(document.getElementById("totals"));
    const queues = board.queues.map(renderQueue);
    document
      .getElementById("queues")
      .replaceChildren(...(queues.length ? queues : [el("p", { class: "empty" }, t("noQueues"))]));
    const rows = board.agents.map(renderAgent);
    if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: "4", class: "empty" }, t("noAgents"))));
    document.querySelector("#agents tbody").replaceChildren(...rows);
  }

  function connect() {
    const url = new URL("ws/wallboard", location.href);
    const token = new URLSearchParams(location.search).get("token");
    if (token) url.searchParams.set("token", token);  // a TV wallboard keeps its token in the URL
    const ws = new WebSocket(url.href.replace(/^http/, "ws"));
    ws.onopen = () => {
      connState = "live";
      retryMs = 500;
      render();
    };
    ws.onmessage = (msg) => {
      const data = JSON.parse(msg.data);
      if (data.type !== "snapshot") return;
      board = data;
      offset = Date.now() / 1000 - data.server_time;
      render();
    };
    ws.onclose = () => {
      connState = "lost";
      render();
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 10000);
    };
  }

  document.getElementById("lang").addEventListener("click", () => {
    lang = lang === "tr" ? "en" : "tr";
    localStorage.setItem("wallboard.lang", lang);
    render();
  });
  render();
  setInterval(render, 1000);
  connect();
})();
