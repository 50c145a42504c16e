// The reader's screen. Every change of screen follows an answer or an
// event from lockerd; the page guesses nothing. A typed code is kept only
// while it is being typed: it is cleared on submit, on refusal and on idle.
"use strict";

const KEYS = "1234567890ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const MAX_CODE = 16;
const MAX_PIN = 16;
const VOICE_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const S = {
  cfg: null, lang: "zh-CN", strings: {}, code: "", pin: "",
  open: new Set(),       // doors this reader was sent to
  idle: null, countdown: null, thanks: null, oosRetry: null,
  a11y: false,           // accessibility mode: large keys, spoken prompts
  voice: null,           // voice/manifest.json: the embedded prompts
  audio: null, queue: [],
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

// show switches to screen; in accessibility mode a screen newly shown
// speaks its prompt (keys: catalogue keys, played one after the other).
function show(screen, keys) {
  const changed = document.body.dataset.screen !== screen;
  enter(screen);
  if (keys && changed) speak(keys);
}

// enter switches to screen: a pending "back to welcome" after the thank
// you is dropped (the reader went on), and the idle timer starts again.
function enter(screen) {
  if (screen !== "thanks") clearTimeout(S.thanks);
  document.body.dataset.screen = screen;
  armIdle();
}

// speak plays the prompts of keys in the current language, replacing
// whatever was being said. Only in accessibility mode.
function speak(keys) {
  if (!S.a11y || !S.voice) return;
  const clips = S.voice.langs[S.lang] || {};
  S.queue = keys.map((k) => clips[k]).filter(Boolean).map((c) => "/kiosk/assets/voice/" + c.file);
  S.audio.pause();
  playNext();
}

function playNext() {
  const src = S.queue.shift();
  if (!src) return;
  S.audio.src = src;
  S.audio.play().catch(() => { /* no audio device: the screen says it all */ });
}

// doorKeys names doors: "Door" A 0 3 "is open…".
function doorKeys(ids) {
  const keys = ["voice.door_prefix"];
  for (const id of ids) for (const ch of id.toUpperCase()) if (VOICE_CHARS.includes(ch)) keys.push("char." + ch);
  keys.push("voice.door_suffix");
  return keys;
}

function setA11y(on) {
  S.a11y = on;
  document.body.classList.toggle("a11y", on);
  $("a11y-toggle").setAttribute("aria-pressed", String(on));
  if (on) speak(["a11y.on"]); else { S.queue = []; S.audio.pause(); }
}

function armIdle() {
  clearTimeout(S.idle);
  const ms = (S.cfg && S.cfg.idle_timeout_ms) || 30000;
  // The next reader starts with the default screen.
  S.idle = setTimeout(() => { setA11y(false); welcome(); }, ms);
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
  S.leftIn = null;
  setCode("");
  setPIN("");
  $("door-reminder").hidden = true;
  $("items-left").hidden = true;
  refreshState();
}

// While out of service the screen asks again every OOS_RETRY ms, so it
// comes back by itself when what was missing (the store, a lock board
// that was not answering yet) is there again.
const OOS_RETRY = 5000;

async function refreshState() {
  clearTimeout(S.oosRetry);
  const before = document.body.dataset.screen;
  const asked = S.stateAsked = (S.stateAsked || 0) + 1;
  let st;
  try {
    const r = await fetch("/kiosk/state", { cache: "no-store" });
    st = await r.json();
  } catch (e) {
    st = { serving: false };
  }
  // A later question's answer, or something that moved the screen while
  // this one was asked (a card's PIN asked, a door opened), is newer than
  // this answer.
  if (asked !== S.stateAsked || document.body.dataset.screen !== before) return;
  if (!st.serving) {
    S.oosRetry = setTimeout(() => { if (document.body.dataset.screen === "oos") refreshState(); }, OOS_RETRY);
    return show("oos", ["oos.title"]);
  }
  if (st.staff) return showStaff(st);
  show("welcome", ["welcome.title"]);
}

function setPIN(p) {
  S.pin = p;
  $("pin-display").textContent = "•".repeat(p.length);
}

// The PIN pad: digits only; what is typed is shown as dots and kept only
// until it is sent (cleared on submit and on idle).
function buildPinKeypad() {
  const pad = $("pin-keypad");
  const key = (label, id, fn) => {
    const b = document.createElement("button");
    b.textContent = label;
    if (id) { b.id = id; b.className = "wide-key"; }
    b.addEventListener("click", fn);
    pad.appendChild(b);
    return b;
  };
  for (const k of "123456789") key(k, null, () => { if (S.pin.length < MAX_PIN) setPIN(S.pin + k); });
  key("", "pin-del", () => setPIN(S.pin.slice(0, -1))).dataset.i18n = "keypad.del";
  key("0", null, () => { if (S.pin.length < MAX_PIN) setPIN(S.pin + "0"); });
  key("", "pin-ok", submitPIN).dataset.i18n = "keypad.ok";
}

function showPIN() {
  setPIN("");
  show("pin", ["pin.title"]);
}

async function submitPIN() {
  const pin = S.pin;
  setPIN("");
  if (pin.length === 0) return;
  let res;
  try {
    const r = await fetch("/kiosk/pin", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ pin }) });
    res = await r.json();
  } catch (e) { return show("oos", ["oos.title"]); }
  handleResult(res);
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
    case "pin_needed": return showPIN();
    case "bin_open": case "bin_emptied": case "maintenance": return refreshState();
    case "denied": return showRefusal(res.reason, res.until);
    case "jammed": return showRefusal("jammed");
    case "nothing":
      // Told to the staff: an order that fits no free compartment is
      // redirected by the central (load.no_space).
      // A held item refused is told by its "hold" notice (onHold).
      if ((res.reason || "").startsWith("no free compartment")) $("staff-notice").textContent = t("staff.no_space", { order: res.order_id || "" });
      return refreshState();
    case "queued": case "card_needed": return refreshState(); // told by the "hold" notice
    case "staff_on": case "retrieving": $("staff-notice").textContent = ""; return refreshState();
    case "loading": return refreshState();
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
  const fresh = ids.filter((id) => !S.open.has(id));
  for (const id of ids) S.open.add(id);
  setDoorTitle();
  for (const cell of $("cabinet").children) cell.classList.toggle("open", S.open.has(cell.dataset.id));
  $("door-reminder").hidden = true;
  if (fresh.length > 0) $("items-left").hidden = true;
  show("door");
  if (fresh.length > 0) speak(doorKeys([...S.open]));
}

// itemsLeft: the reader closed a door with books still inside.
function itemsLeft(door) {
  clearTimeout(S.thanks);
  const p = $("items-left");
  S.leftIn = door;
  p.textContent = t("items.left", { door });
  p.hidden = false;
  $("door-title").textContent = "";
  for (const cell of $("cabinet").children) cell.classList.toggle("open", cell.dataset.id === door);
  enter("door");
  speak(["items.left_voice"]);
}

function doorClosed(id) {
  if (!S.open.delete(id)) return;
  for (const cell of $("cabinet").children) cell.classList.toggle("open", S.open.has(cell.dataset.id));
  if (S.open.size === 0 && document.body.dataset.screen === "door" && $("items-left").hidden) {
    show("thanks", ["thanks"]);
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
  enter("refused");
  speak(["refused." + reason]);
}

function showReturn(resultKey) {
  S.returnResult = resultKey;
  $("return-result").textContent = resultKey ? t(resultKey) : "";
  enter("return");
  speak([resultKey || "return.title"]);
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
  const bin = st.bin;
  $("staff-bin-box").hidden = !bin;
  if (bin) {
    $("staff-bin").textContent = t("staff.bin", { n: bin.count });
    const last = bin.last_emptied;
    $("staff-collected").textContent = last ? t("staff.collected", { n: last.count }) : "";
    const ul = $("staff-collected-list");
    ul.replaceChildren();
    for (const bc of (last && last.items) || []) { const li = document.createElement("li"); li.textContent = bc; ul.appendChild(li); }
  }
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
    case "door.opened":
      // The reader scanned again for the books left inside (a reopen
      // records no new pickup).
      if (d.commanded && d.compartment === S.leftIn) { S.leftIn = null; showDoor([d.compartment]); }
      break;
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

// onHold: what a staff scan of a held item came to (the central library
// looked up whose hold it is); the reason's words come from the central.
function onHold(d) {
  const key = { loading: "loading", queued: "queued", card_needed: "card_needed", nothing: "refused" }[d.outcome] || "error";
  $("staff-notice").textContent = t("staff.hold." + key, { item: d.item || "", door: d.compartment || "", message: d.message || d.reason || "" });
  if (d.outcome === "loading") refreshState();
}

// onItems: what an item sensor read when a door closed.
function onItems(d) {
  switch (d.what) {
    case "pickup_items_left": return itemsLeft(d.compartment);
    case "load_empty": $("staff-notice").textContent = t("staff.load_empty", { door: d.compartment, order: d.order_id }); return;
    case "retrieve_items_left": $("staff-notice").textContent = t("staff.retrieve_items_left", { door: d.compartment }); return;
  }
}

function connect() {
  const es = new EventSource("/kiosk/stream");
  es.addEventListener("evt", (m) => onEvent(JSON.parse(m.data)));
  es.addEventListener("notice", (m) => {
    const n = JSON.parse(m.data);
    if (n.type === "staff.session") n.data.on ? refreshState() : welcome();
    if (n.type === "store.health") refreshState();
    if (n.type === "card") showPIN();
    if (n.type === "items") onItems(n.data);
    if (n.type === "hold") onHold(n.data);
    if (n.type === "bin.emptied") {
      $("staff-notice").textContent = n.data.still_full ? t("staff.bin_still_full") : "";
      refreshState();
    }
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
  buildPinKeypad();
  S.audio = new Audio();
  S.audio.addEventListener("ended", playNext);
  try { S.voice = await fetch("/kiosk/assets/voice/manifest.json", { cache: "no-store" }).then((r) => r.json()); } catch (e) { S.voice = null; }
  $("a11y-toggle").addEventListener("click", () => setA11y(!S.a11y));
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
