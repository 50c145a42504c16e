// The reader's screen. Every change of screen follows an answer or an
// event from lockerd; the page guesses nothing. A typed code is kept only
// while it is being typed: it is cleared on submit, on refusal and on idle.
"use strict";

const KEYS = "1234567890ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const MAX_CODE = 16;
const S = {
  cfg: null, lang: "zh-CN", strings: {}, code: "",
  open: new Set(),       // doors this reader was sent to
  idle: null, countdown: null, thanks: null, oosRetry: null,
};

const $ = (id) => document.getElementById(id);

function t(key, vars) {
  let s = (S.strings[S.lang] || {})[key] ?? (S.strings.en || {})[key] ?? key;
  for (const [k, v] of Object.entries(vars || {})) s = s.replaceAll("{" + k + "}", String(v));
  return s;
}

function applyLang() {
  document.documentElement.lang = S.lang;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  $("lang-toggle").textContent = t("lang.other");
  $("oos-help").textContent = S.cfg && S.cfg.help_text ? S.cfg.help_text : t("oos.help");
  if (document.body.dataset.screen === "door") setDoorTitle();
  if (document.body.dataset.screen === "refused" && S.refusal) showRefusal(S.refusal.reason, S.refusal.until);
  if (document.body.dataset.screen === "return" && S.returnResult) $("return-result").textContent = t(S.returnResult);
}

function show(screen) {
  document.body.dataset.screen = screen;
  armIdle();
}

function armIdle() {
  clearTimeout(S.idle);
  const ms = (S.cfg && S.cfg.idle_timeout_ms) || 30000;
  S.idle = setTimeout(welcome, ms);
}

function setCode(c) {
  S.code = c;
  $("code-display").textContent = c;
  $("code-hint").textContent = t("welcome.hint");
}

function welcome() {
  clearInterval(S.countdown);
  clearTimeout(S.thanks);
  S.open.clear();
  S.refusal = null;
  S.returnResult = null;
  setCode("");
  $("door-reminder").hidden = true;
  refreshState();
}

// While out of service the screen asks again every OOS_RETRY ms, so it
// comes back by itself when what was missing (the store, a lock board
// that was not answering yet) is there again.
const OOS_RETRY = 5000;

async function refreshState() {
  clearTimeout(S.oosRetry);
  let st;
  try {
    const r = await fetch("/kiosk/state", { cache: "no-store" });
    st = await r.json();
  } catch (e) {
    st = { serving: false };
  }
  if (!st.serving) {
    S.oosRetry = setTimeout(() => { if (document.body.dataset.screen === "oos") refreshState(); }, OOS_RETRY);
    return show("oos");
  }
  if (st.staff) return showStaff(st);
  show("welcome");
}

function buildKeypad() {
  const pad = $("keypad");
  for (const k of KEYS) {
    const b = document.createElement("button");
    b.textContent = k;
    b.dataset.key = k;
    b.addEventListener("click", () => { if (S.code.length < MAX_CODE) setCode(S.code + k); });
    pad.appendChild(b);
  }
  const del = document.createElement("button");
  del.id = "del"; del.className = "wide-key"; del.dataset.i18n = "keypad.del";
  del.addEventListener("click", () => setCode(S.code.slice(0, -1)));
  const ok = document.createElement("button");
  ok.id = "ok"; ok.className = "wide-key"; ok.dataset.i18n = "keypad.ok";
  ok.addEventListener("click", submit);
  pad.append(del, ok);
}

async function submit() {
  const code = S.code;
  setCode("");
  if (code.length < 4) { $("code-hint").textContent = t("code.short"); return; }
  let res;
  try {
    const r = await fetch("/kiosk/code", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ code }) });
    res = await r.json();
  } catch (e) { return show("oos"); }
  handleResult(res);
}

function handleResult(res) {
  switch (res.outcome) {
    case "opened": return showDoor(res.compartments || []);
    case "denied": return showRefusal(res.reason, res.until);
    case "jammed": return showRefusal("jammed");
    case "nothing":
      // Told to the staff: an order that fits no free compartment is
      // redirected by the central (load.no_space).
      $("staff-notice").textContent = (res.reason || "").startsWith("no free compartment") ? t("staff.no_space", { order: res.order_id || "" }) : "";
      return refreshState();
    case "staff_on": case "loading": case "retrieving": $("staff-notice").textContent = ""; return refreshState();
    case "staff_off": return welcome();
    case "error": return refreshState(); // out of service if the store cannot be written
    default: return showRefusal("error");
  }
}

function setDoorTitle() {
  $("door-title").textContent = t("door.open", { doors: [...S.open].join(", ") });
}

function showDoor(ids) {
  clearTimeout(S.thanks);
  for (const id of ids) S.open.add(id);
  setDoorTitle();
  for (const cell of $("cabinet").children) cell.classList.toggle("open", S.open.has(cell.dataset.id));
  $("door-reminder").hidden = true;
  show("door");
}

function doorClosed(id) {
  if (!S.open.delete(id)) return;
  for (const cell of $("cabinet").children) cell.classList.toggle("open", S.open.has(cell.dataset.id));
  if (S.open.size === 0 && document.body.dataset.screen === "door") {
    show("thanks");
    S.thanks = setTimeout(welcome, 4000);
  }
}

function showRefusal(reason, until) {
  clearInterval(S.countdown);
  S.refusal = { reason, until };
  const cd = $("countdown");
  cd.hidden = true;
  if (reason === "locked_out" && until) {
    const end = Date.parse(until);
    const tick = () => {
      const s = Math.max(0, Math.ceil((end - Date.now()) / 1000));
      $("refusal-text").textContent = t("refused.locked_out");
      cd.textContent = t("countdown", { s });
      cd.hidden = false;
      if (s === 0) { clearInterval(S.countdown); welcome(); }
    };
    tick();
    S.countdown = setInterval(tick, 500);
  } else {
    $("refusal-text").textContent = t("refused." + reason);
  }
  show("refused");
}

function showReturn(resultKey) {
  S.returnResult = resultKey;
  $("return-result").textContent = resultKey ? t(resultKey) : "";
  show("return");
}

function showStaff(st) {
  const fill = (ul, items, fmt) => {
    ul.replaceChildren();
    if (!items || items.length === 0) {
      const li = document.createElement("li"); li.textContent = t("staff.none"); ul.appendChild(li); return;
    }
    for (const it of items) { const li = document.createElement("li"); li.textContent = fmt(it); ul.appendChild(li); }
  };
  fill($("staff-load"), st.to_load, (it) => it.order_id + " · " + it.size + (it.compartment ? " → " + it.compartment : ""));
  fill($("staff-retrieve"), st.to_retrieve, (it) => it.compartment + " · " + it.order_id);
  show("staff");
}

function onEvent(e) {
  const d = e.data || {};
  const fromKeypad = d.scanner === "keypad"; // the keypad's own answers already drove the screen
  switch (e.type) {
    case "pickup.completed": if (!fromKeypad) showDoor(d.compartments || []); break;
    case "pickup.denied": if (!fromKeypad) showRefusal(d.reason, d.until); break;
    case "lockout.started":
      if (document.body.dataset.screen === "refused") showRefusal("locked_out", d.until);
      break;
    case "door.closed": doorClosed(d.compartment); break;
    case "door.left_open":
      if (S.open.has(d.compartment)) { showDoor([]); $("door-reminder").hidden = false; }
      break;
    case "item.returned": showReturn("return.accepted"); break;
    case "return.refused": showReturn("return." + d.reason); break;
    case "order.loaded": case "order.retrieved": case "compartment.service":
    case "hardware.fault": case "hardware.recovered":
      if (["staff", "oos", "welcome"].includes(document.body.dataset.screen)) refreshState();
      break;
  }
}

function connect() {
  const es = new EventSource("/kiosk/stream");
  es.addEventListener("evt", (m) => onEvent(JSON.parse(m.data)));
  es.addEventListener("notice", (m) => {
    const n = JSON.parse(m.data);
    if (n.type === "staff.session") n.data.on ? refreshState() : welcome();
    if (n.type === "store.health") refreshState();
  });
  es.onerror = () => { /* EventSource reconnects by itself */ };
}

async function init() {
  const [cfg, en, zh] = await Promise.all(["/kiosk/config", "/kiosk/assets/i18n/en.json", "/kiosk/assets/i18n/zh-CN.json"]
    .map((u) => fetch(u, { cache: "no-store" }).then((r) => r.json())));
  S.cfg = cfg; S.strings = { en, "zh-CN": zh }; S.lang = cfg.default_lang || "zh-CN";
  $("site").textContent = cfg.site || cfg.locker_id;
  if (cfg.has_order_qr) $("order-qr-img").src = "/kiosk/qr.png"; else $("order-qr").hidden = true;
  if (!cfg.has_return) $("return-btn").hidden = true;
  const cab = $("cabinet");
  cab.style.gridTemplateColumns = "repeat(" + cfg.columns + ", 1fr)";
  for (const c of cfg.cells) {
    const cell = document.createElement("div");
    cell.className = "cell"; cell.dataset.id = c.id; cell.textContent = c.id;
    cell.style.gridRow = c.row; cell.style.gridColumn = c.col;
    cab.appendChild(cell);
  }
  buildKeypad();
  $("lang-toggle").addEventListener("click", () => { S.lang = S.lang === "en" ? "zh-CN" : "en"; applyLang(); });
  $("return-btn").addEventListener("click", () => showReturn(null));
  $("return-back").addEventListener("click", welcome);
  $("refused-back").addEventListener("click", welcome);
  for (const ev of ["pointerdown", "keydown"]) document.addEventListener(ev, armIdle, { passive: true });
  applyLang();
  connect();
  welcome();
}

init();
