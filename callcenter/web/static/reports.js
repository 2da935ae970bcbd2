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
    chartCategories: "En çok talep edilen konular", footer: "Tanımlar: docs/kpis.md",
    loading: "Yükleniyor…", loaded: "Hazır ({s} sn)", needToken: "Bu rapor için süpervizör API anahtarı gerekiyor.",
    forbidden: "Bu anahtarın rapor görme yetkisi yok.", failed: "Rapor alınamadı: {m}",
    noData: "Bu dönemde veri yok", groupsBy: "{by} bazında",
    kOffered: "Kuyruğa giren", kAnswered: "Cevaplanan", kAbandoned: "Vazgeçen",
    kShort: "Kısa vazgeçen", kTimeouts: "Zaman aşımı", kSl: "Hizmet seviyesi",
    kAbandonRate: "Vazgeçme oranı", kAsa: "Ort. cevaplama süresi", kAht: "Ort. işlem süresi",
    kMaxWait: "En uzun bekleme", kRequestRate: "Talep oranı", kHold: "Ort. beklemeye alma",
    cKey: "", cCalls: "Çağrı", cRequests: "Talep", cTalk: "Ort. görüşme", cWait: "Ort. bekleme",
    cOffered: "Giren", cAnswered: "Cevaplanan", cAbandoned: "Vazgeçen", cSl: "HS",
    cAsa: "ACS", cAht: "AİS", cMax: "En uzun", cRang: "Çaldı", cMissed: "Cevapsız",
    cLogged: "Oturum", cPaused: "Mola", cOcc: "Doluluk", target: "hedef",
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
    chartCategories: "Top request categories", footer: "Definitions: docs/kpis.md",
    loading: "Loading…", loaded: "Ready ({s} s)", needToken: "This report needs a supervisor API token.",
    forbidden: "This token may not see reports.", failed: "The report failed: {m}",
    noData: "No data in this period", groupsBy: "By {by}",
    kOffered: "Offered", kAnswered: "Answered", kAbandoned: "Abandoned",
    kShort: "Short abandons", kTimeouts: "Timeouts", kSl: "Service level",
    kAbandonRate: "Abandon rate", kAsa: "ASA", kAht: "AHT", kMaxWait: "Longest wait",
    kRequestRate: "Request rate", kHold: "Average hold",
    cKey: "", cCalls: "Calls", cRequests: "Requests", cTalk: "Avg talk", cWait: "Avg wait",
    cOffered: "Offered", cAnswered: "Answered", cAbandoned: "Abandoned", cSl: "SL",
    cAsa: "ASA", cAht: "AHT", cMax: "Longest", cRang: "Rang", cMissed: "Missed",
    cLogged: "Logged in", cPaused: "Paused", cOcc: "Occupancy", target: "target",
  },
};

let lang = localStorage.getItem("cc_lang") || "tr";
let token = new URLSearchParams(location.search).get("token") || localStorage.getItem("cc_token") || "";
let last = null; // {main, hours, days} of the last load, re-rendered on a language switch

const $ = (sel) => document.querySelector(sel);
const t = (key, vars = {}) =>
  (TEXT[lang][key] ?? key).replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? ""));
const locale = () => (lang === "tr" ? "tr-TR" : "en-GB");
const num = (v) => (v == null ? "–" : Number(v).toLocaleString(locale()));
const compact = (v) => Math.round(v).toLocaleString(locale(), { notation: "compact", maximumFractionDigits: 1 });
const pct = (v) => (v == null ? "–" : (100 * v).toLocaleString(locale(), { maximumFractionDigits: 1 }) + " %");

function mmss(s) {
  if (s == null) return "–";
  const total = Math.round(s);
  const h = Math.floor(total / 3600), m = Math.floor((total % 3600) / 60), sec = total % 60;
  const pad = (n) => String(n).padStart(2, "0");
  return h ? `${h}:${pad(m)}:${pad(sec)}` : `${m}:${pad(sec)}`;
}

function isoDate(d) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

function setRange(kind) {
  const now = new Date();
  const from = kind === "year" ? new Date(now.getFullYear(), 0, 1)
    : kind === "month" ? new Date(now.getFullYear(), now.getMonth(), 1) : now;
  $("#filters").from.value = isoDate(from);
  $("#filters").to.value = isoDate(now);
}

function translate() {
  document.documentElement.lang = lang;
  document.title = t("title");
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  $("#lang").textContent = lang === "tr" ? "English" : "Türkçe";
  if (last) render(last);
}

function status(text, state = "") {
  $("#status").textContent = text;
  $("#status").dataset.state = state;
}

function params(extra, allQueues = false) {
  const f = $("#filters");
  const p = new URLSearchParams({ from: f.from.value, to: f.to.value });
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
    $("#csv").href = "/api/reports?" + params({ by, format: "csv", token });
    status(t("loaded", { s: ((performance.now() - began) / 1000).toFixed(1) }), "ok");
  } catch (err) {
    if (err.auth) $("#auth").hidden = false;
    status(err.auth ? err.message : t("failed", { m: err.message }), "error");
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
  lineChart($("#chart-sl"), days.rows.map((r) => r.day), days.rows.map((r) => r.service_level));
  barChart($("#chart-wait"), main.wait_distribution.map((b) => b.bin + " s"),
    main.wait_distribution.map((b) => b.count), num);
  hbarChart($("#chart-categories"), main.top_categories.map((c) => c.category),
    main.top_categories.map((c) => c.requests));
  renderGroups(main);
}

function renderKpis(k) {
  const cards = [
    ["kSl", pct(k.service_level)], ["kAbandonRate", pct(k.abandon_rate)],
    ["kAsa", mmss(k.asa_s)], ["kAht", mmss(k.aht_s)], ["kOffered", num(k.offered)],
    ["kAnswered", num(k.answered)], ["kAbandoned", num(k.abandoned)],
    ["kShort", num(k.short_abandoned)], ["kTimeouts", num(k.timeouts)],
    ["kMaxWait", mmss(k.max_wait_s)], ["kHold", mmss(k.avg_hold_s)],
    ["kRequestRate", pct(k.request_rate)],
  ];
  $("#kpis").replaceChildren(...cards.map(([key, value]) => {
    const div = document.createElement("div");
    div.className = "kpi";
    div.dataset.kpi = key;
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
  const cols = [
    [by, "cKey", (r) => r[by] || "–"], ["calls", "cCalls", (r) => num(r.calls)],
    ["requests", "cRequests", (r) => num(r.requests)],
    ["avg_talk_s", "cTalk", (r) => mmss(r.avg_talk_s)], ["avg_wait_s", "cWait", (r) => mmss(r.avg_wait_s)],
    ...(agent ? [
      ["answered", "cAnswered", (r) => num(r.answered)], ["asa_s", "cAsa", (r) => mmss(r.asa_s)],
      ["aht_s", "cAht", (r) => mmss(r.aht_s)], ["rang", "cRang", (r) => num(r.rang)],
      ["missed", "cMissed", (r) => num(r.missed)], ["logged_in_s", "cLogged", (r) => mmss(r.logged_in_s)],
      ["paused_s", "cPaused", (r) => mmss(r.paused_s)], ["occupancy", "cOcc", (r) => pct(r.occupancy)],
    ] : [
      ["offered", "cOffered", (r) => num(r.offered)], ["answered", "cAnswered", (r) => num(r.answered)],
      ["abandoned", "cAbandoned", (r) => num(r.abandoned)], ["service_level", "cSl", (r) => pct(r.service_level)],
      ["asa_s", "cAsa", (r) => mmss(r.asa_s)], ["aht_s", "cAht", (r) => mmss(r.aht_s)],
      ["max_wait_s", "cMax", (r) => mmss(r.max_wait_s)],
    ]),
  ];
  const head = document.createElement("tr");
  for (const [, key] of cols) {
    const th = document.createElement("th");
    th.textContent = key === "cKey" ? t("by" + by[0].toUpperCase() + by.slice(1)) : t(key);
    head.append(th);
  }
  $("#groups thead").replaceChildren(head);
  $("#groups tbody").replaceChildren(...main.rows.map((row) => {
    const tr = document.createElement("tr");
    tr.dataset.key = row[by] ?? "";
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

function lineChart(svg, labels, values) {
  const f = frame(svg);
  const points = values.map((v, i) => [i, v]).filter(([, v]) => v != null);
  if (!points.length) return empty(svg, f);
  yAxis(svg, f, 1, pct);
  const span = Math.max(1, values.length - 1);
  const width = f.w - f.left - f.right;
  const x = (i) => f.left + (values.length === 1 ? width / 2 : (width * i) / span);
  const y = (v) => f.h - f.bottom - (f.h - f.top - f.bottom) * v;
  const target = y(0.8);
  svg.append(el("line", { x1: f.left, x2: f.w - f.right, y1: target, y2: target, class: "target" }));
  svg.append(el("text", { x: f.w - f.right, y: target - 4, "text-anchor": "end" }, `${t("target")} 80 %`));
  svg.append(el("polyline", { class: "line", points: points.map(([i, v]) => `${x(i)},${y(v)}`).join(" ") }));
  for (const [i, v] of points) {
    const dot = el("circle", { cx: x(i), cy: y(v), r: values.length > 60 ? 1.5 : 3, class: "dot",
      "data-label": labels[i], "data-value": v });
    dot.append(el("title", {}, `${labels[i]}: ${pct(v)}`));
    svg.append(dot);
  }
  const every = Math.ceil(labels.length / 8);
  labels.forEach((label, i) => {
    if (i % every === 0) svg.append(el("text", { x: x(i), y: f.h - f.bottom + 14, "text-anchor": "middle" }, label.slice(5)));
  });
}

function hbarChart(svg, labels, values) {
  const f = frame(svg);
  const max = Math.max(0, ...values);
  if (!max) return empty(svg, f);
  const left = 130, rowH = (f.h - f.top) / Math.max(values.length, 5);
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
$("#lang").addEventListener("click", () => {
  lang = lang === "tr" ? "en" : "tr";
  localStorage.setItem("cc_lang", lang);
  translate();
});
document.querySelectorAll("[data-range]").forEach((b) =>
  b.addEventListener("click", () => { setRange(b.dataset.range); load(); }));

const q = new URLSearchParams(location.search);
if (q.get("from")) {
  $("#filters").from.value = q.get("from");
  $("#filters").to.value = q.get("to") || q.get("from");
} else {
  setRange("month");
}
if (q.get("by")) $("#filters").by.value = q.get("by");
translate();
load();
