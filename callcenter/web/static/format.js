// The one formatter of the wallboard and the reports: Turkish conventions first, English on
// the switch, never the browser's locale (a TV or a laptop set to English still reads
// "%60,7", "1.234" and "5 Aralık 2026" in Turkish).
"use strict";
(() => {
  const MONTHS = {
    tr: ["Ocak", "Şubat", "Mart", "Nisan", "Mayıs", "Haziran", "Temmuz", "Ağustos", "Eylül",
      "Ekim", "Kasım", "Aralık"],
    en: ["January", "February", "March", "April", "May", "June", "July", "August", "September",
      "October", "November", "December"],
  };
  const DAYS = {
    tr: ["Pazar", "Pazartesi", "Salı", "Çarşamba", "Perşembe", "Cuma", "Cumartesi"],
    en: ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"],
  };
  const pad = (n) => String(n).padStart(2, "0");
  const missing = (v) => v === null || v === undefined || Number.isNaN(v);

  // Digits grouped by threes ("1.234.567" in Turkish, "1,234,567" in English), by hand:
  // Intl would follow whatever locale data the browser has.
  function number(v, lang = "tr", decimals = 0) {
    if (missing(v)) return "–";
    const x = Number(v);
    const fixed = Math.abs(x).toFixed(decimals);
    const [whole, frac] = fixed.split(".");
    const group = lang === "en" ? "," : ".";
    const point = lang === "en" ? "." : ",";
    const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, group);
    const trimmed = frac ? frac.replace(/0+$/, "") : "";
    const sign = x < 0 && Number(fixed) !== 0 ? "-" : "";
    return sign + grouped + (trimmed ? point + trimmed : "");
  }
  // Axis labels: "12,3 B" / "1,2 Mn" in Turkish (bin, milyon), "12.3K" / "1.2M" in English.
  function compact(v, lang = "tr") {
    if (missing(v)) return "–";
    const x = Math.round(Number(v));
    const units = lang === "en" ? [[1e6, "M"], [1e3, "K"]] : [[1e6, " Mn"], [1e3, " B"]];
    for (const [size, unit] of units) {
      if (Math.abs(x) >= size) return number(x / size, lang, 1) + unit;
    }
    return number(x, lang);
  }
  // A fraction as a percentage: "%60,7" (Turkish writes the sign first), "60.7%" in English.
  function percent(fraction, lang = "tr", decimals = 1) {
    if (missing(fraction)) return "–";
    const n = number(100 * fraction, lang, decimals);
    return lang === "en" ? `${n}%` : `%${n}`;
  }
  // Seconds as m:ss, h:mm:ss from an hour (the municipality's way of writing durations).
  function duration(seconds) {
    if (missing(seconds)) return "–";
    const s = Math.max(0, Math.round(seconds));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return h ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
  }
  // A running timer: always mm:ss (h:mm:ss from an hour), for waits and time in state.
  function timer(seconds) {
    const s = Math.max(0, Math.floor(seconds || 0));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return h ? `${h}:${pad(m)}:${pad(s % 60)}` : `${pad(m)}:${pad(s % 60)}`;
  }
  function seconds(v, lang = "tr") {
    return missing(v) ? "–" : `${number(Math.round(v), lang)} ${lang === "en" ? "s" : "sn"}`;
  }
  // "2026-12-05" -> "5 Aralık 2026" (the date as written, no time zone games).
  function date(iso, lang = "tr", withDay = false) {
    if (!iso) return "–";
    const [y, mo, d] = iso.split("-").map(Number);
    if (!y || !mo) return iso;
    if (!d) return `${MONTHS[lang === "en" ? "en" : "tr"][mo - 1]} ${y}`;
    const names = MONTHS[lang === "en" ? "en" : "tr"];
    const text = `${d} ${names[mo - 1]} ${y}`;
    if (!withDay) return text;
    const dow = new Date(Date.UTC(y, mo - 1, d)).getUTCDay();
    return `${text} ${DAYS[lang === "en" ? "en" : "tr"][dow]}`;
  }
  // "2026-12-05" -> "05.12.2026" (short form for tables and axes), "05/12/2026" in English.
  function shortDate(iso, lang = "tr") {
    if (!iso) return "–";
    const [y, mo, d] = iso.split("-");
    if (!d) return lang === "en" ? `${mo}/${y}` : `${mo}.${y}`;
    return lang === "en" ? `${d}/${mo}/${y}` : `${d}.${mo}.${y}`;
  }
  // An epoch time in a time zone as HH:MM:SS (the floor's clock, not the viewer's).
  function clock(epochSeconds, timeZone = "Europe/Istanbul") {
    const parts = new Intl.DateTimeFormat("en-GB", {
      timeZone, hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
    }).formatToParts(new Date(epochSeconds * 1000));
    const get = (t) => (parts.find((p) => p.type === t) || {}).value || "00";
    return `${get("hour")}:${get("minute")}:${get("second")}`;
  }
  // The ISO date of an epoch time in a time zone ("today" on the floor's clock).
  function isoDay(epochSeconds, timeZone = "Europe/Istanbul") {
    const parts = new Intl.DateTimeFormat("en-GB", {
      timeZone, year: "numeric", month: "2-digit", day: "2-digit",
    }).formatToParts(new Date(epochSeconds * 1000));
    const get = (t) => (parts.find((p) => p.type === t) || {}).value;
    return `${get("year")}-${get("month")}-${get("day")}`;
  }
  window.CCFormat = { number, compact, percent, duration, timer, seconds, date, shortDate, clock, isoDay };
})();
