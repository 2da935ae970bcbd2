// Supervisor wallboard: renders the board the service pushes over /ws/wallboard.
// Waits and times in state tick here from the floor's clock: the server's time at the last
// board plus the wall time since, times the clock's rate (a simulator runs faster).
"use strict";
(() => {
  const F = window.CCFormat;
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
      needToken: "Bu pano için süpervizör anahtarı gerekiyor",
      needTokenHelp: "Yöneticinizden tek kullanımlık pano bağlantısı ya da bir süpervizör API anahtarı isteyin.",
      badToken: "Bu anahtar geçersiz ya da iptal edilmiş.",
      expired: "Bu bağlantı kullanılmış ya da süresi dolmuş: yeni bir tek kullanımlık bağlantı isteyin.",
      forbidden: "Bu anahtarın panoyu görme yetkisi yok (süpervizör gerekir).",
      tokenLabel: "Süpervizör API anahtarı",
      connect: "Bağlan",
      noAuth: "Anahtar gerekiyor",
      closed: "Mesai sona erdi — oturum açmış temsilci ve bekleyen yok. Günün rakamları aşağıda.",
      noQueues: "Henüz kuyruk bilgisi yok",
      noAgents: "Oturum açmış temsilci yok",
      slTitle: "Hizmet seviyesi: sarı %{a} altında, kırmızı %{r} altında",
      waitTitle: "En uzun bekleme: sarı {a} sn, kırmızı {r} sn üstünde",
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
      asa: "Avg. answer",
      aht: "Avg. handling",
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
      needToken: "This wallboard needs a supervisor token",
      needTokenHelp: "Ask your administrator for a one-time wallboard link or a supervisor API token.",
      badToken: "This token is unknown or revoked.",
      expired: "This link was used already or has expired: ask for a new one-time link.",
      forbidden: "This token may not see the wallboard (supervisor needed).",
      tokenLabel: "Supervisor API token",
      connect: "Connect",
      noAuth: "Token needed",
      closed: "The day is over — no agent logged in and nobody waiting. Today's figures below.",
      noQueues: "No queue data yet",
      noAgents: "No agents logged in",
      slTitle: "Service level: amber below {a}%, red below {r}%",
      waitTitle: "Longest wait: amber over {a} s, red over {r} s",
      switchTo: "TR",
    },
  };
  const STATES = ["available", "ringing", "on_call", "wrapup", "paused", "unavailable"];
  const LEVELS = ["ok", "amber", "red"];
  const TOKEN_KEY = "cc_token";

  const params = new URLSearchParams(location.search);
  // An old-style TV link (?token=…): keep the token in this browser, never in the address.
  if (params.get("token")) {
    localStorage.setItem(TOKEN_KEY, params.get("token"));
    params.delete("token");
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + (rest ? "?" + rest : "") + location.hash);
  }
  // A one-time link that could not be used comes back here with ?login=expired.
  const loginExpired = params.get("login") === "expired";
  if (loginExpired) {
    params.delete("login");
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + (rest ? "?" + rest : "") + location.hash);
  }
  let lang = params.get("lang") || localStorage.getItem("wallboard.lang") || "tr";
  if (!TEXT[lang]) lang = "tr";
  const forceCompact = params.get("compact");
  let board = null;
  let receivedAt = 0; // wall time (s) the last board arrived
  let connState = "connecting";
  let authError = "";
  let retryMs = 500;
  let fitCompact = false; // the tiles did not fit: compact until the queues or window change
  let lastQueueCount = -1;

  const t = (key, vars = {}) =>
    (TEXT[lang][key] ?? TEXT.tr[key] ?? key).replace(/\{(\w)\}/g, (_, k) => String(vars[k] ?? ""));
  // The floor's time now: the server's clock at the last board, advanced at its rate.
  const serverNow = () =>
    board ? board.server_time + (Date.now() / 1000 - receivedAt) * (board.clock_rate || 1) : Date.now() / 1000;
  const worst = (...levels) => LEVELS[Math.max(...levels.map((l) => LEVELS.indexOf(l)), 0)];

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
  function stat(field, value, label, level, title) {
    return el(
      "div",
      { class: "stat", "data-field": field, "data-level": level, title },
      el("span", { class: "num" }, value),
      el("span", { class: "label" }, label),
    );
  }
  function waitLevel(entered, alerts) {
    if (!entered || !alerts) return "ok";
    const age = serverNow() - entered;
    if (age >= alerts.wait_red_s) return "red";
    return age >= alerts.wait_amber_s ? "amber" : "ok";
  }
  function todayStats(day, q) {
    const abandoned = day.short_abandoned
      ? `${F.number(day.abandoned, lang)} (+${F.number(day.short_abandoned, lang)} ${t("short")})`
      : F.number(day.abandoned, lang);
    const slTitle = q ? t("slTitle", { a: F.number(q.alerts.sl_amber, lang), r: F.number(q.alerts.sl_red, lang) }) : null;
    return [
      stat("offered", F.number(day.offered, lang), t("offered")),
      stat("answered", F.number(day.answered, lang), t("answered")),
      stat("abandoned", abandoned, t("abandoned")),
      stat("unanswered", F.number(day.unanswered, lang), t("unanswered")),
      stat("sl", F.percent(day.service_level, lang, 0), t("sl"), q ? q.sl_level : null, slTitle),
      stat("asa", F.seconds(day.asa_s, lang), t("asa")),
      stat("aht", F.seconds(day.aht_s, lang), t("aht")),
    ];
  }

  function renderTotals(target) {
    const tot = board.totals;
    const oldest = tot.oldest_entered_at;
    target.replaceChildren(
      el("div", { class: "totals-title" }, `${t("total")} · ${t("today")}`),
      stat("waiting", F.number(tot.waiting, lang), t("waiting")),
      stat("oldest", oldest ? F.timer(serverNow() - oldest) : "–", t("oldest")),
      ...todayStats(tot, null),
    );
  }
  function renderQueue(q) {
    const oldest = q.oldest_entered_at;
    const wait = waitLevel(oldest, q.alerts);
    const level = worst(wait, q.sl_level || "ok");
    const chips = STATES.map((s) =>
      el(
        "span",
        { class: "chip", "data-state": s, "data-field": `agents-${s}` },
        el("span", { class: "num" }, F.number(q.agents[s] ?? 0, lang)),
        ` ${t(s)}`,
      ),
    );
    const waitTitle = t("waitTitle", { a: F.number(q.alerts.wait_amber_s, lang), r: F.number(q.alerts.wait_red_s, lang) });
    return el(
      "article",
      { class: "queue", "data-queue": q.name, "data-level": level },
      el("h2", {}, q.name),
      el(
        "div",
        { class: "live" },
        stat("waiting", F.number(q.waiting, lang), t("waiting"), q.waiting ? "busy" : "ok"),
        stat("oldest", oldest ? F.timer(serverNow() - oldest) : "–", t("oldest"), wait, waitTitle),
      ),
      el("div", { class: "chips" }, ...chips),
      el("div", { class: "today" }, ...todayStats(q.today, q)),
    );
  }
  function renderAgent(a) {
    const label = a.reason ? `${t(a.state)} · ${a.reason}` : t(a.state);
    return el(
      "tr",
      { "data-agent": a.name, "data-state": a.state },
      el("td", { class: "name", title: a.name }, a.name),
      el("td", { title: label }, el("span", { class: "badge", "data-state": a.state, "data-field": "state" }, label)),
      el("td", { class: "since", "data-field": "since" }, F.timer(serverNow() - a.since)),
      el("td", { class: "queues-col", title: a.queues.join(", ") }, a.queues.join(", ")),
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
    const auth = document.getElementById("auth");
    auth.hidden = connState !== "noAuth";
    document.getElementById("auth-error").textContent = authError ? t(authError) : "";
    document.getElementById("board").hidden = connState === "noAuth";
    document.getElementById("clock").textContent = F.clock(serverNow(), board ? board.timezone : undefined);
    document.getElementById("day").textContent = board && board.day ? F.date(board.day, lang, true) : "";
    if (!board) return;
    if (board.queues.length !== lastQueueCount) {
      lastQueueCount = board.queues.length;
      fitCompact = false;
    }
    const compact = forceCompact !== null
      ? forceCompact !== "0"
      : fitCompact || board.queues.length > (board.compact_above ?? 6);
    document.body.classList.toggle("compact", compact);
    const closed = document.getElementById("closed");
    closed.hidden = !board.closed;
    closed.textContent = t("closed");
    document.body.classList.toggle("is-closed", !!board.closed);
    renderTotals(document.getElementById("totals"));
    const queues = board.queues.map(renderQueue);
    document
      .getElementById("queues")
      .replaceChildren(...(queues.length ? queues : [el("p", { class: "empty" }, t("noQueues"))]));
    const rows = board.agents.map(renderAgent);
    if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: "4", class: "empty" }, t("noAgents"))));
    document.querySelector("#agents tbody").replaceChildren(...rows);
    // Tiles that do not fit the screen (a TV shows no scroll bar) go compact.
    const area = document.getElementById("queues");
    if (!compact && forceCompact === null && area.scrollHeight > area.clientHeight + 2) {
      fitCompact = true;
      render();
    }
  }

  // Why a socket closed before it opened: a missing or refused token, or the network.
  async function diagnose(url, token) {
    try {
      const res = await fetch(url, { headers: token ? { Authorization: "Bearer " + token } : {} });
      if (res.status === 401) return token ? "badToken" : "none";
      if (res.status === 403) return "forbidden";
    } catch (_) { /* the server is away: retry */ }
    return null;
  }

  function connect() {
    const url = new URL("ws/wallboard", location.href);
    const token = localStorage.getItem(TOKEN_KEY);
    // The token travels as a WebSocket subprotocol (or a login cookie), never in a URL.
    const protocols = token ? ["callcenter", "cc.token." + token] : undefined;
    const ws = new WebSocket(url.href.replace(/^http/, "ws"), protocols);
    let opened = false;
    ws.onopen = () => {
      opened = true;
      connState = "live";
      authError = "";
      retryMs = 500;
      render();
    };
    ws.onmessage = (msg) => {
      const data = JSON.parse(msg.data);
      if (data.type !== "snapshot") return;
      board = data;
      receivedAt = Date.now() / 1000;
      render();
    };
    ws.onclose = async () => {
      if (!opened) {
        const why = await diagnose(url.href, token);
        if (why) {
          connState = "noAuth";
          authError = why === "none" ? (loginExpired ? "expired" : "") : why;
          render();
          document.querySelector("#auth input").focus();
          return; // waits for a token
        }
      }
      connState = "lost";
      render();
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 10000);
    };
  }

  document.getElementById("auth").addEventListener("submit", (e) => {
    e.preventDefault();
    const value = e.target.token.value.trim();
    if (!value) return;
    localStorage.setItem(TOKEN_KEY, value);
    e.target.token.value = "";
    connState = "connecting";
    render();
    connect();
  });
  document.getElementById("lang").addEventListener("click", () => {
    lang = lang === "tr" ? "en" : "tr";
    localStorage.setItem("wallboard.lang", lang);
    render();
  });
  window.addEventListener("resize", () => {
    fitCompact = false;
    render();
  });
  render();
  setInterval(render, 1000);
  connect();
})();
