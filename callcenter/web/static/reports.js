// The report page: the period's table, the KPIs and four charts, from /api/reports.
// Plain SVG, no libraries (the machine has no internet). Turkish first, English on a click.
"use strict";

const TEXT = {
  tr: {
    title: "Çağrı Merkezi Raporu", from: "Başlangıç", to: "Bitiş", queue: "Kuyruk",
    allQueues: "Tüm kuyruklar", by: "Gruplama", byDay: "Gün", byHour: "Saat", byMonth: "Ay",
    byQueue: "Kuyruk", byAgent: "Temsilci", today: "Bugün", thisMonth: "Bu ay",
    thisYear: "Bu yıl", show: "Göster", csv: "CSV indir", token: "API anahtarı (süpervizör)",
    save: "Kaydet", summary: "Dönem özeti", calls: "Çağrı merkezine gelen çağrı",
    requests: "Birimlere iletilen talep", avgTalk: "Ortalama görüşme süresi",
    avgWait: "Ortalama bekleme süresi", chartHours: "Günün saatlerine göre çağrılar",
    chartSl: "Günlük hizmet seviyesi", chartWait: "Bekleme süresi dağılımı",
    chartCategories: "En çok talep edilen konular", footer: "Rakamların tanımları",
    datePattern: "GG.AA.YYYY", badDate: "Tarih GG.AA.YYYY biçiminde olmalı: {v}",
    expired: "Bu bağlantı kullanılmış ya da süresi dolmuş: yeni bir tek kullanımlık bağlantı isteyin ya da anahtarı girin.",
    noQueue: "Kuyruğa girmeyen", noQueueTip: "Hiç kuyruğa girmeyen çağrılar: yalnız sesli yanıtta (IVR) kalanlar, dolu kuyruktan dönenler",
    loading: "Yükleniyor…", loaded: "Hazır ({s} sn)", needToken: "Bu rapor için süpervizör API anahtarı gerekiyor.",
    forbidden: "Bu anahtarın rapor görme yetkisi yok.", failed: "Rapor alınamadı: {m}",
    noData: "Bu dönemde veri yok", groupsBy: "{by} bazında",
    kOffered: "Kuyruğa giren", kAnswered: "Cevaplanan", kAbandoned: "Vazgeçen",
    kShort: "Kısa vazgeçen", kTimeouts: "Zaman aşımı", kSl: "Hizmet seviyesi",
    kAbandonRate: "Vazgeçme oranı", kAsa: "Ort. cevaplama süresi", kAht: "Ort. işlem süresi",
    kMaxWait: "En uzun bekleme", kRequestRate: "Talep oranı", kHold: "Ort. beklemeye alma",
    cKey: "", cCalls: "Çağrı", cRequests: "Talep", cTalk: "Ort. görüşme", cWait: "Ort. bekleme",
    cOffered: "Kuyruğa giren", cAnswered: "Cevaplanan", cAbandoned: "Vazgeçen", cSl: "Hizmet seviyesi",
    cAsa: "Ort. cevaplama", cAht: "Ort. işlem", cMax: "En uzun bekleme", cRang: "Çaldı", cMissed: "Cevapsız",
    cLogged: "Oturum süresi", cPaused: "Mola süresi", cOcc: "Doluluk", target: "hedef",
    dCalls: "Dönemde başlayan bütün çağrılar (yalnız IVR'da kalanlar dahil)",
    dRequests: "Bu çağrılardan birimlere iletilen talepler",
    dTalk: "Cevaplanan çağrılarda açılıştan görüşmenin sonuna kadar (beklemeye alma dahil)",
    dWait: "Kuyruğa giren çağrıların cevaplanana ya da vazgeçene kadar beklediği süre",
    dOffered: "Kuyruğa giren vatandaşlar", dAnswered: "Bir temsilcinin cevapladıkları",
    dAbandoned: "En az 5 sn bekleyip kapatanlar", dShort: "5 sn'den önce kapatanlar (hizmet seviyesine girmez)",
    dTimeouts: "Kuyruğun süre sınırı dolunca yönlendirilenler",
    dSl: "Hedef sürede (20 sn) cevaplananların, kısa vazgeçenler dışındaki bütün gelenlere oranı",
    dAbandonRate: "Vazgeçen / (giren − kısa vazgeçen)",
    dAsa: "Ortalama cevaplama süresi: cevaplananların ortalama bekleme süresi",
    dAht: "Ortalama işlem süresi: görüşme + çağrı sonrası işlem, cevaplanan başına",
    dMax: "Dönemin en uzun beklemesi", dHold: "Cevaplanan başına beklemeye alma süresi",
    dRequestRate: "Talep / cevaplanan çağrı", dRang: "Kuyruğun temsilciyi çaldırdığı çağrılar",
    dMissed: "Süresinde açılmayan çalışlar", dLogged: "En az bir kuyrukta oturum açık geçen süre",
    dPaused: "Molada geçen süre", dOcc: "(Görüşme + çağrı sonrası) / (oturum − mola)",
  },
  en: {
    title: "Call Center Report", from: "From", to: "To", queue: "Queue",
    allQueues: "All queues", by: "Group by", byDay: "Day", byHour: "Hour", byMonth: "Month",
    byQueue: "Queue", byAgent: "Agent", today: "Today", thisMonth: "This month",
    thisYear: "This year", show: "Show", csv: "Download CSV", token: "API token (supervisor)",
    save: "Save", summary: "Period summary", calls: "Calls to the call center",
    requests: "Requests forwarded to departments", avgTalk: "Average talk time",
    avgWait: "Average wait time", chartHours: "Calls by hour of the day",
    chartSl: "Service level per day", chartWait: "Wait time distribution",
    chartCategories: "Top request categories", footer: "Definitions of the figures",
    datePattern: "DD/MM/YYYY", badDate: "Dates are written DD/MM/YYYY: {v}",
    expired: "This link was used already or has expired: ask for a new one-time link, or enter the token.",
    noQueue: "No queue", noQueueTip: "Calls that never reached a queue: IVR only, or turned away by a full queue",
    loading: "Loading…", loaded: "Ready ({s} s)", needToken: "This report needs a supervisor API token.",
    forbidden: "This token may not see reports.", failed: "The report failed: {m}",
    noData: "No data in this period", groupsBy: "By {by}",
    kOffered: "Offered", kAnswered: "Answered", kAbandoned: "Abandoned",
    kShort: "Short abandons", kTimeouts: "Timeouts", kSl: "Service level",
    kAbandonRate: "Abandon rate", kAsa: "Avg. speed of answer", kAht: "Avg. handling time", kMaxWait: "Longest wait",
    kRequestRate: "Request rate", kHold: "Average hold",
    cKey: "", cCalls: "Calls", cRequests: "Requests", cTalk: "Avg talk", cWait: "Avg wait",
    cOffered: "Offered", cAnswered: "Answered", cAbandoned: "Abandoned", cSl: "Service level",
    cAsa: "Avg. answer", cAht: "Avg. handling", cMax: "Longest wait", cRang: "Rang", cMissed: "Missed",
    cLogged: "Logged in", cPaused: "Paused", cOcc: "Occupancy", target: "target",
    dCalls: "Every call started in the period (IVR-only ones included)",
    dRequests: "Requests forwarded to departments from those calls",
    dTalk: "Answer to end of conversation, hold included, over answered calls",
    dWait: "Time callers waited in the queue until answered or they gave up",
    dOffered: "Callers who entered the queue", dAnswered: "Visits an agent answered",
    dAbandoned: "Hung up after waiting at least 5 s", dShort: "Hung up within 5 s (kept out of the service level)",
    dTimeouts: "Sent on by the queue's time limit",
    dSl: "Answered within the target (20 s) over every caller except short abandons",
    dAbandonRate: "Abandoned / (offered − short abandons)",
    dAsa: "Average speed of answer: mean wait of the answered calls",
    dAht: "Average handling time: talk + wrap-up per answered call",
    dMax: "The period's longest wait", dHold: "Hold time per answered call",
    dRequestRate: "Requests / answered calls", dRang: "Times the queue rang the agent",
    dMissed: "Rings not answered in time", dLogged: "Time logged in to at least one queue",
    dPaused: "Time paused", dOcc: "(Talk + wrap-up) / (logged in − paused)",
  },
};

let lang = localStorage.getItem("cc_lang") || "tr";
let token = new URLSearchParams(location.search).get("token") || localStorage.getItem("cc_token") || "";
let expiredLink = false; // came back from a used or expired one-time link
let last = null; // {main, hours, days} of the last load, re-rendered on a language switch

const $ = (sel) => document.querySelector(sel);
const t = (key, vars = {}) =>
  (TEXT[lang][key] ?? key).replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? ""));
const F = window.CCFormat;
const num = (v) => F.number(v, lang);
const compact = (v) => F.compact(v, lang);
const pct = (v) => F.percent(v, lang, 1);
const mmss = (s) => F.duration(s);
let today = null; // the floor's date (the server's clock: a simulator's in the demo)

// Dates are typed and shown as DD.MM.YYYY (DD/MM/YYYY in English), whatever the browser's
// locale; the API gets ISO dates.
function showDate(iso) { return iso ? F.shortDate(iso, lang) : ""; }
function isoOf(text) {
  const m = String(text).trim().match(/^(\d{1,2})[./-](\d{1,2})[./-](\d{4})$/);
  if (!m) {
    const iso = String(text).trim().match(/^(\d{4})-(\d{2})-(\d{2})$/);
    return iso ? iso[0] : null;
  }
  const [, d, mo, y] = m;
  const value = `${y}-${mo.padStart(2, "0")}-${d.padStart(2, "0")}`;
  const check = new Date(Date.UTC(+y, +mo - 1, +d));
  return check.getUTCMonth() === +mo - 1 && check.getUTCDate() === +d ? value : null;
}
function dates() {
  const f = $("#filters");
  const from = isoOf(f.from.value), to = isoOf(f.to.value);
  if (!from) throw new Error(t("badDate", { v: f.from.value }));
  if (!to) throw new Error(t("badDate", { v: f.to.value }));
  return { from, to };
}

function setRange(kind) {
  const base = today || F.isoDay(Date.now() / 1000);
  const [y, m] = base.split("-");
  const from = kind === "year" ? `${y}-01-01` : kind === "month" ? `${y}-${m}-01` : base;
  $("#filters").from.value = showDate(from);
  $("#filters").to.value = showDate(base);
}

function translate() {
  const f = $("#filters");
  const kept = [isoOf(f.from.value), isoOf(f.to.value)];
  document.documentElement.lang = lang;
  document.title = t("title");
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  document.querySelectorAll("[data-i18n-placeholder]").forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
  document.querySelectorAll("[data-tip]").forEach((el) => { el.title = t(el.dataset.tip); });
  if (kept[0]) f.from.value = showDate(kept[0]);
  if (kept[1]) f.to.value = showDate(kept[1]);
  $("#lang").textContent = lang === "tr" ? "English" : "Türkçe";
  if (last) render(last);
}

function status(text, state = "") {
  $("#status").textContent = text;
  $("#status").dataset.state = state;
}

function params(extra, allQueues = false) {
  const f = $("#filters");
  const p = new URLSearchParams(dates());
  if (f.queue.value && !allQueues) p.set("queue", f.queue.value);
  for (const [k, v] of Object.entries(extra)) if (v) p.set(k, v);
  return p;
}

async function api(extra, allQueues = false) {
  const res = await fetch("/api/reports?" + params(extra, allQueues), {
    headers: token ? { Authorization: "Bearer " + token } : {},
  });
  if (res.status === 401 || res.status === 403) {
    const err = new Error(res.status === 401 ? t("needToken") : t("forbidden"));
    err.auth = true;
    throw err;
  }
  const body = await res.json();
  if (!res.ok) throw new Error(body.error ? body.error.message : res.statusText);
  return body;
}

async function load() {
  const by = $("#filters").by.value;
  status(t("loading"));
  const began = performance.now();
  try {
    const [main, hours, days] = await Promise.all([
      api({ by }),
      by === "hour" ? null : api({ by: "hour" }),
      by === "day" ? null : api({ by: "day" }),
    ]);
    last = { main, hours: hours || main, days: days || main };
    $("#auth").hidden = true;
    render(last);
    fillQueues(main);
    status(t("loaded", { s: ((performance.now() - began) / 1000).toFixed(1) }), "ok");
  } catch (err) {
    if (err.auth) $("#auth").hidden = false;
    const why = err.auth && expiredLink ? t("expired") : err.message;
    status(err.auth ? why : t("failed", { m: err.message }), "error");
  }
}

// The CSV comes through fetch with the token in a header: no link carries the token.
async function downloadCsv() {
  try {
    const by = $("#filters").by.value;
    const res = await fetch("/api/reports?" + params({ by, format: "csv" }), {
      headers: token ? { Authorization: "Bearer " + token } : {},
    });
    if (!res.ok) throw new Error(res.statusText);
    const blob = await res.blob();
    const name = (res.headers.get("Content-Disposition") || "").match(/filename="([^"]+)"/);
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = name ? name[1] : "rapor.csv";
    document.body.append(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  } catch (err) {
    status(t("failed", { m: err.message }), "error");
  }
}

async function fillQueues(main) {
  // The queue list comes from a by-queue report of the same period (once per load).
  const select = $("#filters").queue;
  try {
    const byQueue = main.by === "queue" && !main.queue ? main : await api({ by: "queue" }, true);
    const current = select.value;
    select.length = 1;
    for (const row of byQueue.rows) {
      if (!row.queue) continue;
      select.add(new Option(row.queue, row.queue, false, row.queue === current));
    }
  } catch (_) { /* the list is a convenience */ }
}

function render({ main, hours, days }) {
  $("#report").hidden = false;
  $('#summary [data-field="calls"]').textContent = num(main.calls);
  $('#summary [data-field="requests"]').textContent = num(main.requests);
  $('#summary [data-field="avg_talk"]').textContent = mmss(main.avg_talk_s);
  $('#summary [data-field="avg_wait"]').textContent = mmss(main.avg_wait_s);
  renderKpis(main);
  const hourRows = new Map(hours.rows.map((r) => [r.hour, r.calls]));
  const hourLabels = Array.from({ length: 24 }, (_, h) => String(h).padStart(2, "0"));
  barChart($("#chart-hours"), hourLabels, hourLabels.map((h) => hourRows.get(h) || 0), num);
  lineChart($("#chart-sl"), days.rows.map((r) => r.day), days.rows.map((r) => r.service_level),
    main.from.slice(0, 4) === main.to.slice(0, 4));
  barChart($("#chart-wait"), main.wait_distribution.map((b) => b.bin + (lang === "en" ? " s" : " sn")),
    main.wait_distribution.map((b) => b.count), num);
  hbarChart($("#chart-categories"),
    main.top_categories.map((c) => (lang === "en" ? c.name_en : c.name) || c.category),
    main.top_categories.map((c) => c.requests));
  renderGroups(main);
}

function renderKpis(k) {
  const cards = [
    ["kSl", pct(k.service_level), "dSl"], ["kAbandonRate", pct(k.abandon_rate), "dAbandonRate"],
    ["kAsa", mmss(k.asa_s), "dAsa"], ["kAht", mmss(k.aht_s), "dAht"],
    ["kOffered", num(k.offered), "dOffered"], ["kAnswered", num(k.answered), "dAnswered"],
    ["kAbandoned", num(k.abandoned), "dAbandoned"], ["kShort", num(k.short_abandoned), "dShort"],
    ["kTimeouts", num(k.timeouts), "dTimeouts"], ["kMaxWait", mmss(k.max_wait_s), "dMax"],
    ["kHold", mmss(k.avg_hold_s), "dHold"], ["kRequestRate", pct(k.request_rate), "dRequestRate"],
  ];
  $("#kpis").replaceChildren(...cards.map(([key, value, tip]) => {
    const div = document.createElement("div");
    div.className = "kpi";
    div.dataset.kpi = key;
    div.title = t(tip);
    div.innerHTML = `<div class="label"></div><div class="value"></div>`;
    div.querySelector(".label").textContent = t(key);
    div.querySelector(".value").textContent = value;
    return div;
  }));
}

function renderGroups(main) {
  const by = main.by;
  $("#groups-title").textContent = t("groupsBy", { by: t("by" + by[0].toUpperCase() + by.slice(1)) });
  const agent = by === "agent";
  const key = (r) => {
    const v = r[by];
    if (by === "queue" && !v) return t("noQueue");
    if (by === "day") return showDate(v);
    if (by === "month") return F.date(v, lang);
    return v || "–";
  };
  const cols = [
    [by, "cKey", key, null], ["calls", "cCalls", (r) => num(r.calls), "dCalls"],
    ["requests", "cRequests", (r) => num(r.requests), "dRequests"],
    ["avg_talk_s", "cTalk", (r) => mmss(r.avg_talk_s), "dTalk"],
    ["avg_wait_s", "cWait", (r) => mmss(r.avg_wait_s), "dWait"],
    ...(agent ? [
      ["answered", "cAnswered", (r) => num(r.answered), "dAnswered"],
      ["asa_s", "cAsa", (r) => mmss(r.asa_s), "dAsa"],
      ["aht_s", "cAht", (r) => mmss(r.aht_s), "dAht"], ["rang", "cRang", (r) => num(r.rang), "dRang"],
      ["missed", "cMissed", (r) => num(r.missed), "dMissed"],
      ["logged_in_s", "cLogged", (r) => mmss(r.logged_in_s), "dLogged"],
      ["paused_s", "cPaused", (r) => mmss(r.paused_s), "dPaused"],
      ["occupancy", "cOcc", (r) => pct(r.occupancy), "dOcc"],
    ] : [
      ["offered", "cOffered", (r) => num(r.offered), "dOffered"],
      ["answered", "cAnswered", (r) => num(r.answered), "dAnswered"],
      ["abandoned", "cAbandoned", (r) => num(r.abandoned), "dAbandoned"],
      ["service_level", "cSl", (r) => pct(r.service_level), "dSl"],
      ["asa_s", "cAsa", (r) => mmss(r.asa_s), "dAsa"], ["aht_s", "cAht", (r) => mmss(r.aht_s), "dAht"],
      ["max_wait_s", "cMax", (r) => mmss(r.max_wait_s), "dMax"],
    ]),
  ];
  const head = document.createElement("tr");
  for (const [field, label, , tip] of cols) {
    const th = document.createElement("th");
    th.textContent = label === "cKey" ? t("by" + by[0].toUpperCase() + by.slice(1)) : t(label);
    th.dataset.field = field;
    if (tip) { th.title = t(tip); th.classList.add("tip"); }
    head.append(th);
  }
  $("#groups thead").replaceChildren(head);
  $("#groups tbody").replaceChildren(...main.rows.map((row) => {
    const tr = document.createElement("tr");
    tr.dataset.key = row[by] ?? "";
    if (by === "queue" && !row.queue) tr.title = t("noQueueTip");
    for (const [field, , show] of cols) {
      const td = document.createElement("td");
      td.dataset.field = field;
      td.textContent = show(row);
      tr.append(td);
    }
    return tr;
  }));
}

// ---- charts (plain SVG) -----------------------------------------------------------------

const SVG = "http://www.w3.org/2000/svg";

function el(name, attrs = {}, text = null) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text != null) node.textContent = text;
  return node;
}

function frame(svg) {
  const w = svg.clientWidth || 600, h = svg.clientHeight || 240;
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.replaceChildren();
  return { w, h, left: 48, right: 12, top: 12, bottom: 36 };
}

function empty(svg, f) {
  svg.append(el("text", { x: f.w / 2, y: f.h / 2, "text-anchor": "middle", class: "empty" }, t("noData")));
}

function yAxis(svg, f, max, format) {
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4, y = f.h - f.bottom - ((f.h - f.top - f.bottom) * i) / 4;
    svg.append(el("line", { x1: f.left, x2: f.w - f.right, y1: y, y2: y, class: "axis" }));
    svg.append(el("text", { x: f.left - 6, y: y + 4, "text-anchor": "end" }, format(v)));
  }
}

function barChart(svg, labels, values, format) {
  const f = frame(svg);
  const max = Math.max(0, ...values);
  if (!max) return empty(svg, f);
  yAxis(svg, f, max, compact);
  const step = (f.w - f.left - f.right) / values.length;
  const every = Math.ceil(labels.length / 12);
  values.forEach((v, i) => {
    const hgt = ((f.h - f.top - f.bottom) * v) / max;
    const x = f.left + i * step + step * 0.1;
    const rect = el("rect", { x, y: f.h - f.bottom - hgt, width: step * 0.8, height: hgt,
      class: "bar", "data-label": labels[i], "data-value": v });
    rect.append(el("title", {}, `${labels[i]}: ${format(v)}`));
    svg.append(rect);
    if (i % every === 0) {
      svg.append(el("text", { x: x + step * 0.4, y: f.h - f.bottom + 14, "text-anchor": "middle" }, labels[i]));
    }
  });
}

function lineChart(svg, labels, values, sameYear = true) {
  const f = frame(svg);
  const points = values.map((v, i) => [i, v]).filter(([, v]) => v != null);
  if (!points.length) return empty(svg, f);
  yAxis(svg, f, 1, (v) => F.percent(v, lang, 0));
  const span = Math.max(1, values.length - 1);
  const width = f.w - f.left - f.right;
  const x = (i) => f.left + (values.length === 1 ? width / 2 : (width * i) / span);
  const y = (v) => f.h - f.bottom - (f.h - f.top - f.bottom) * v;
  const target = y(0.8);
  svg.append(el("line", { x1: f.left, x2: f.w - f.right, y1: target, y2: target, class: "target" }));
  svg.append(el("text", { x: f.w - f.right, y: target - 4, "text-anchor": "end" }, `${t("target")} ${F.percent(0.8, lang, 0)}`));
  svg.append(el("polyline", { class: "line", points: points.map(([i, v]) => `${x(i)},${y(v)}`).join(" ") }));
  for (const [i, v] of points) {
    const dot = el("circle", { cx: x(i), cy: y(v), r: values.length > 60 ? 1.5 : 3, class: "dot",
      "data-label": labels[i], "data-value": v });
    dot.append(el("title", {}, `${showDate(labels[i])}: ${pct(v)}`));
    svg.append(dot);
  }
  const every = Math.ceil(labels.length / 8);
  labels.forEach((label, i) => {
    if (i % every === 0) svg.append(el("text", { x: x(i), y: f.h - f.bottom + 14, "text-anchor": "middle" },
      sameYear ? showDate(label).slice(0, 5) : showDate(label)));
  });
}

function hbarChart(svg, labels, values) {
  const f = frame(svg);
  const max = Math.max(0, ...values);
  if (!max) return empty(svg, f);
  // Room for the longest name (category names are long in Turkish), at most a third.
  const longest = Math.max(0, ...labels.map((l) => String(l).length));
  const left = Math.min(f.w / 3, Math.max(90, longest * 6.4 + 12));
  const rowH = (f.h - f.top) / Math.max(values.length, 5);
  values.forEach((v, i) => {
    const y = f.top + i * rowH;
    const wdt = ((f.w - left - 60) * v) / max;
    svg.append(el("text", { x: left - 6, y: y + rowH * 0.6, "text-anchor": "end" }, labels[i]));
    const rect = el("rect", { x: left, y: y + rowH * 0.15, width: wdt, height: rowH * 0.7, class: "bar",
      "data-label": labels[i], "data-value": v });
    rect.append(el("title", {}, `${labels[i]}: ${num(v)}`));
    svg.append(rect);
    svg.append(el("text", { x: left + wdt + 6, y: y + rowH * 0.6 }, num(v)));
  });
}

// ---- wiring ---------------------------------------------------------------------------

$("#filters").addEventListener("submit", (e) => { e.preventDefault(); load(); });
$("#auth").addEventListener("submit", (e) => {
  e.preventDefault();
  token = $("#auth").token.value.trim();
  localStorage.setItem("cc_token", token);
  load();
});
$("#csv").addEventListener("click", downloadCsv);
$("#lang").addEventListener("click", () => {
  lang = lang === "tr" ? "en" : "tr";
  localStorage.setItem("cc_lang", lang);
  translate();
});
document.querySelectorAll("[data-range]").forEach((b) =>
  b.addEventListener("click", () => { setRange(b.dataset.range); load(); }));

async function start() {
  const q = new URLSearchParams(location.search);
  // An old link with ?token=: keep it in this browser, not in the address bar.
  if (q.get("token")) {
    localStorage.setItem("cc_token", q.get("token"));
    q.delete("token");
    const rest = q.toString();
    history.replaceState(null, "", location.pathname + (rest ? "?" + rest : ""));
  }
  if (q.get("login") === "expired") {
    q.delete("login");
    const rest = q.toString();
    history.replaceState(null, "", location.pathname + (rest ? "?" + rest : ""));
    expiredLink = true;
  }
  try {
    const res = await fetch("/api/clock");
    if (res.ok) today = (await res.json()).today;
  } catch (_) { /* the browser's date will do */ }
  if (q.get("from")) {
    $("#filters").from.value = showDate(q.get("from"));
    $("#filters").to.value = showDate(q.get("to") || q.get("from"));
  } else {
    setRange("month");
  }
  if (q.get("by")) $("#filters").by.value = q.get("by");
  translate();
  load();
}
start();
