// lockerhub console: a small single-page app over /console/api. No
// external request; every text in Chinese and English.
"use strict";

const T = {
  en: {
    "skip": "Skip to content", "nav.fleet": "Fleet", "nav.orders": "Orders", "nav.circulation": "Circulation", "nav.audit": "Audit log",
    "signout": "Sign out", "signin.title": "Sign in to lockerhub", "signin.user": "User name", "signin.password": "Password", "signin.go": "Sign in",
    "fleet.title": "Fleet", "fleet.filter": "Filter lockers", "col.locker": "Locker", "col.online": "Online", "col.last_seen": "Last seen",
    "col.lag": "Outbox lag", "col.alarms": "Open alarms", "col.free": "Free by size", "col.order": "Order", "col.status": "Status",
    "col.compartment": "Compartment", "col.patron": "Patron", "col.items": "Items", "col.actions": "Actions", "col.kind": "Kind",
    "col.item": "Item", "col.state": "State", "col.message": "Message", "col.when": "When", "col.who": "Who", "col.from": "From",
    "col.what": "What", "col.detail": "Detail", "locker.title": "Locker", "locker.cabinet": "Cabinet",
    "locker.legend": "Green: free · blue: assigned or ready · red: door open · grey, dashed: out of service",
    "locker.open": "Remote open", "locker.compartment": "Compartment", "locker.reason": "Reason (required, audited)", "locker.open.go": "Open door",
    "locker.service": "Out of service / back in service", "locker.alarms": "Open alarms", "locker.orders": "Orders here", "locker.events": "Recent events",
    "orders.title": "Orders", "orders.search": "Order id, patron or item barcode", "orders.find": "Search", "orders.new": "New order",
    "orders.items": "Item barcodes (comma-separated)", "orders.create": "Create", "circ.title": "Circulation (library system)", "circ.state": "State",
    "circ.all": "all", "audit.title": "Audit log", "no": "Cancel", "yes": "Yes",
    "online": "online", "offline": "offline", "never": "never", "ack": "Acknowledge", "resolve": "Resolve", "retry": "Retry", "cancel": "Cancel order",
    "acknowledged": "acknowledged", "open": "open", "confirm.open": "Open door {c} of {l}? Reason: {r}", "confirm.cancel": "Cancel order {o}?",
    "opened": "Door open sent ({id})", "note": "Note (what was done)", "created": "Order {o} created. Pickup code: {c}",
    "none": "Nothing here.", "no_telemetry": "No compartment report yet from this locker.", "service.which": "Compartment to take out of or put back in service",
    "nav.readers": "Readers", "readers.title": "Readers' orders", "pull.title": "To pull and load", "col.source": "From", "col.deliver": "Deliver to",
    "col.to": "To", "hold.title": "A held item at the desk", "hold.card": "Reader's card from the hold slip (when asked)", "hold.go": "Look up the hold",
    "hold.made": "Order {o} for the hold: load it at {l}.", "hold.refused": "Not ordered ({r}): {m}", "notices.title": "What readers were told", "more": "More",
    "source.reader": "reader (order page)", "source.hold": "hold (staff scan)", "source.staff": "staff or system", "delivery": "home delivery",
  },
  zh: {
    "skip": "跳到正文", "nav.fleet": "柜机总览", "nav.orders": "订单", "nav.circulation": "借还记录", "nav.audit": "审计日志",
    "signout": "退出", "signin.title": "登录 lockerhub", "signin.user": "用户名", "signin.password": "密码", "signin.go": "登录",
    "fleet.title": "柜机总览", "fleet.filter": "筛选柜机", "col.locker": "柜机", "col.online": "在线", "col.last_seen": "最后联系",
    "col.lag": "待上传事件", "col.alarms": "未处理告警", "col.free": "空闲格口（按尺寸）", "col.order": "订单", "col.status": "状态",
    "col.compartment": "格口", "col.patron": "读者证号", "col.items": "图书", "col.actions": "操作", "col.kind": "类型",
    "col.item": "图书条码", "col.state": "状态", "col.message": "信息", "col.when": "时间", "col.who": "操作人", "col.from": "来源",
    "col.what": "操作", "col.detail": "详情", "locker.title": "柜机", "locker.cabinet": "柜体",
    "locker.legend": "绿色：空闲 · 蓝色：已分配或待取 · 红色：门开着 · 灰色虚线：停用",
    "locker.open": "远程开门", "locker.compartment": "格口", "locker.reason": "原因（必填，将记入审计日志）", "locker.open.go": "开门",
    "locker.service": "停用 / 恢复格口", "locker.alarms": "未处理告警", "locker.orders": "本柜订单", "locker.events": "最近事件",
    "orders.title": "订单", "orders.search": "订单号、读者证号或图书条码", "orders.find": "搜索", "orders.new": "新建订单",
    "orders.items": "图书条码（逗号分隔）", "orders.create": "创建", "circ.title": "借还记录（图书馆系统）", "circ.state": "状态",
    "circ.all": "全部", "audit.title": "审计日志", "no": "取消", "yes": "确定",
    "online": "在线", "offline": "离线", "never": "从未", "ack": "确认", "resolve": "处理完毕", "retry": "重试", "cancel": "取消订单",
    "acknowledged": "已确认", "open": "未处理", "confirm.open": "确定打开 {l} 的 {c} 号格口？原因：{r}", "confirm.cancel": "确定取消订单 {o}？",
    "opened": "已发送开门指令（{id}）", "note": "备注（处理情况）", "created": "订单 {o} 已创建。取件码：{c}",
    "none": "暂无。", "no_telemetry": "该柜机尚未上报格口状态。", "service.which": "要停用或恢复的格口",
    "nav.readers": "读者服务", "readers.title": "读者订单", "pull.title": "待备书装柜", "col.source": "来源", "col.deliver": "送达地址",
    "col.to": "发送至", "hold.title": "在服务台扫描预约图书", "hold.card": "预约条上的读者证号（系统要求时填写）", "hold.go": "查询预约",
    "hold.made": "已为该预约生成订单 {o}：请送到 {l} 装柜。", "hold.refused": "未生成订单（{r}）：{m}", "notices.title": "读者通知记录", "more": "更多",
    "source.reader": "读者（网上下单）", "source.hold": "预约（工作人员扫描）", "source.staff": "工作人员或系统", "delivery": "送书到家",
  },
};

let lang = localStorage.getItem("lockerhub.lang") || (navigator.language.startsWith("zh") ? "zh" : "en");
let me = null; // {user, role, csrf}
let timer = null;
let fleetSort = { key: "id", dir: 1 };

const $ = (s, el = document) => el.querySelector(s);
const t = (k, vars = {}) => (T[lang][k] || T.en[k] || k).replace(/\{(\w+)\}/g, (_, v) => vars[v] ?? "");
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") e.textContent = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k);
  return e;
};
const when = (s) => !s || s.startsWith("0001") ? t("never") : new Date(s).toLocaleString(lang === "zh" ? "zh-CN" : "en-GB");

function applyLang() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-i18n]").forEach((e) => { e.textContent = t(e.dataset.i18n); });
  $("#lang").textContent = lang === "zh" ? "English" : "中文";
}

async function api(method, path, body) {
  const opts = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
  if (method !== "GET" && me) opts.headers["X-CSRF-Token"] = me.csrf;
  const r = await fetch("/console/api/" + path, opts);
  const data = await r.json().catch(() => ({}));
  if (r.status === 401 && path !== "signin") { me = null; route(); }
  if (!r.ok) throw new Error(data.error || r.statusText);
  return data;
}

function toast(msg) {
  const e = $("#toast"); e.textContent = msg; e.classList.add("show");
  setTimeout(() => e.classList.remove("show"), 4000);
}

function confirmBox(text) {
  return new Promise((resolve) => {
    const d = $("#confirm");
    $("#confirm-text").textContent = text;
    d.addEventListener("close", () => resolve(d.returnValue === "yes"), { once: true });
    d.showModal();
    $("#confirm-yes").focus();
  });
}

function show(view) {
  document.body.dataset.view = view;
  document.querySelectorAll("main > section").forEach((s) => { s.hidden = s.id !== "view-" + view; });
  document.querySelectorAll("#nav a").forEach((a) => {
    if (a.getAttribute("href") === "#/" + view) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  });
  const signed = !!me;
  $("#nav").hidden = !signed; $("#signout").hidden = !signed;
  $("#user").textContent = signed ? `${me.user} (${me.role})` : "";
  document.querySelectorAll("[data-role]").forEach((e) => {
    const need = e.dataset.role, order = ["viewer", "staff", "admin"];
    e.hidden = !signed || order.indexOf(me.role) < order.indexOf(need);
  });
}

async function route() {
  clearInterval(timer);
  if (!me) {
    try { me = await api("GET", "session"); } catch { me = null; }
  }
  if (!me) {
    show("signin");
    if (document.activeElement === document.body || !document.activeElement) $("#signin-user").focus();
    return;
  }
  const h = location.hash || "#/fleet";
  const [, view, arg] = h.split("/");
  if (view === "locker" && arg) { show("locker"); await lockerView(decodeURIComponent(arg)); timer = setInterval(() => lockerView(decodeURIComponent(arg)), 2000); return; }
  if (view === "orders") { show("orders"); await ordersView(); return; }
  if (view === "circulation") { show("circulation"); await circView(); return; }
  if (view === "readers") { show("readers"); noticesAfter = 0; $("#notices-table tbody").replaceChildren(); await readersView(); return; }
  if (view === "audit") { show("audit"); await auditView(); return; }
  show("fleet"); await fleetView(); timer = setInterval(fleetView, 2000);
}

async function fleetView() {
  let rows;
  try { rows = await api("GET", "fleet"); } catch (e) { toast(e.message); return; }
  const f = $("#fleet-filter").value.trim().toLowerCase();
  rows = rows.filter((r) => !f || r.id.toLowerCase().includes(f));
  rows.sort((a, b) => (a[fleetSort.key] > b[fleetSort.key] ? 1 : a[fleetSort.key] < b[fleetSort.key] ? -1 : 0) * fleetSort.dir);
  const tb = $("#fleet-table tbody"); tb.replaceChildren();
  for (const r of rows) {
    const free = Object.entries(r.free || {}).sort().map(([s, n]) => `${s}: ${n}`).join("  ");
    tb.append(el("tr", { "data-locker": r.id, "data-online": String(r.online) },
      el("td", { "data-label": t("col.locker") }, el("a", { href: "#/locker/" + encodeURIComponent(r.id), text: r.id })),
      el("td", { "data-label": t("col.online"), class: r.online ? "online" : "offline", text: r.online ? "● " + t("online") : "○ " + t("offline") }),
      el("td", { "data-label": t("col.last_seen"), text: when(r.last_seen) }),
      el("td", { "data-label": t("col.lag"), text: String(r.outbox_lag) }),
      el("td", { "data-label": t("col.alarms"), class: r.critical ? "critical" : "", text: String(r.alarms) }),
      el("td", { "data-label": t("col.free"), text: free || "—" })));
  }
}

let lockerComps = [];
async function lockerView(id) {
  let d;
  try { d = await api("GET", "lockers/" + encodeURIComponent(id)); } catch (e) { toast(e.message); return; }
  $("#locker-id").textContent = id;
  const st = $("#locker-state");
  st.textContent = d.locker.online ? t("online") : t("offline");
  st.className = "badge " + (d.locker.online ? "online" : "offline");
  const cab = $("#cabinet"); cab.replaceChildren();
  lockerComps = d.compartments || [];
  if (!lockerComps.length) cab.append(el("p", { text: t("no_telemetry") }));
  for (const c of lockerComps) {
    const cls = ["comp", c.out_of_service ? "oos" : c.state !== "free" ? "used" : "", c.door_open ? "dooropen" : ""].join(" ");
    cab.append(el("div", { class: cls, role: "listitem", "data-comp": c.id, "data-size": c.size,
      "aria-label": `${c.id} ${c.size} ${c.state}${c.door_open ? " door open" : ""}${c.out_of_service ? " out of service" : ""}` },
      el("b", { text: c.id }), `${c.size} · ${c.state}${c.door_open ? " · ⚠" : ""}`));
  }
  const sel = $("#open-comp");
  const keep = sel.value;
  sel.replaceChildren(...lockerComps.map((c) => el("option", { value: c.id, text: `${c.id} (${c.size}, ${c.state})` })));
  if (keep) sel.value = keep;
  $("#open-form").hidden = !d.can_act;
  const al = $("#locker-alarms"); al.replaceChildren();
  if (!d.alarms.length) al.append(el("li", { text: t("none") }));
  for (const a of d.alarms) {
    const li = el("li", { class: a.severity, "data-alarm": a.seq, "data-state": a.state },
      el("strong", { text: `${a.type}${a.compartment ? " · " + a.compartment : ""}` }),
      ` (${a.severity}, ${t(a.state || "open")}, ×${a.count || 1}) — ${a.detail} — ${when(a.at)} … ${when(a.last_seen)} `);
    if (d.can_act) {
      if (a.state !== "acknowledged") li.append(el("button", { type: "button", class: "secondary", "data-action": "ack", text: t("ack"), onclick: () => alarmAct(a.seq, "ack", id) }), " ");
      li.append(el("button", { type: "button", class: "secondary", "data-action": "resolve", text: t("resolve"), onclick: () => alarmAct(a.seq, "resolve", id) }));
    }
    al.append(li);
  }
  const ob = $("#locker-orders tbody"); ob.replaceChildren();
  for (const o of d.orders) {
    ob.append(el("tr", {}, el("td", { text: o.id, "data-label": t("col.order") }), el("td", { text: o.status, "data-label": t("col.status") }),
      el("td", { text: (o.compartments || [o.compartment || ""]).join(","), "data-label": t("col.compartment") }), el("td", { text: o.patron || "", "data-label": t("col.patron") })));
  }
  const ev = $("#locker-events"); ev.replaceChildren();
  for (const e of d.events) ev.append(el("li", { text: `${when(e.ts)} ${e.type} ${JSON.stringify(e.data)}` }));
  $("#view-locker").dataset.renderedFor = me ? me.user : "";
}

async function alarmAct(seq, action, lockerID) {
  let note = "";
  if (action === "resolve") { note = prompt(t("note")) ?? ""; }
  try { await api("POST", `alarms/${seq}/${action}`, { Note: note }); } catch (e) { toast(e.message); }
  lockerView(lockerID);
}

async function ordersView(q) {
  q = q ?? $("#orders-q").value.trim();
  let rows = [];
  try { rows = await api("GET", "orders?q=" + encodeURIComponent(q)); } catch (e) { toast(e.message); return; }
  const tb = $("#orders-table tbody"); tb.replaceChildren();
  const staff = ["staff", "admin"].includes(me.role);
  for (const o of rows) {
    const tr = el("tr", { "data-order": o.id },
      el("td", { text: o.id, "data-label": t("col.order") }), el("td", { text: o.locker, "data-label": t("col.locker") }),
      el("td", { text: o.status, "data-label": t("col.status") }), el("td", { text: o.patron || "", "data-label": t("col.patron") }),
      el("td", { text: (o.items || []).map((i) => i.barcode + (i.title ? " " + i.title : "")).join(", "), "data-label": t("col.items") }), el("td"));
    if (staff && (o.status === "assigned" || o.status === "ready")) {
      tr.lastChild.append(el("button", { type: "button", class: "secondary", text: t("cancel"), onclick: async () => {
        if (!(await confirmBox(t("confirm.cancel", { o: o.id })))) return;
        try { await api("POST", "orders/cancel", { Locker: o.locker, Order: o.id }); } catch (e) { toast(e.message); }
        ordersView();
      } }));
    }
    tb.append(tr);
  }
}

let noticesAfter = 0;

async function readersView() {
  let rows = [];
  try { rows = await api("GET", "pull"); } catch (e) { toast(e.message); return; }
  const tb = $("#pull-table tbody"); tb.replaceChildren();
  if (!rows.length) tb.append(el("tr", {}, el("td", { colspan: "6", text: t("none") })));
  for (const p of rows) {
    tb.append(el("tr", { "data-pull": p.order },
      el("td", { text: p.locker, "data-label": t("col.locker") }), el("td", { text: p.order, "data-label": t("col.order") }),
      el("td", { text: t("source." + p.source), "data-label": t("col.source") }), el("td", { text: p.patron || "", "data-label": t("col.patron") }),
      el("td", { text: (p.items || []).map((i) => i.barcode + (i.title ? " " + i.title : "")).join(", "), "data-label": t("col.items") }),
      el("td", { text: p.delivery ? t("delivery") + ": " + (p.address || "") : "", "data-label": t("col.deliver") })));
  }
  await noticesView();
}

async function noticesView(more) {
  const order = $("#notices-order").value.trim();
  let rows = [];
  try { rows = await api("GET", "notices?order=" + encodeURIComponent(order) + "&after=" + (order ? 0 : noticesAfter)); } catch (e) { toast(e.message); return; }
  const tb = $("#notices-table tbody");
  if (!more) tb.replaceChildren();
  for (const n of rows) {
    noticesAfter = Math.max(noticesAfter, n.id);
    tb.append(el("tr", { "data-notice": n.id }, el("td", { text: String(n.id) }), el("td", { text: n.order, "data-label": t("col.order") }),
      el("td", { text: n.kind + " · " + n.channel, "data-label": t("col.kind") }), el("td", { text: n.to, "data-label": t("col.to") }),
      el("td", { text: n.state + (n.attempts > 1 ? " ×" + n.attempts : ""), "data-label": t("col.state") }),
      el("td", { text: when(n.sent || n.created), "data-label": t("col.when") }), el("td", { text: n.error || "", "data-label": t("col.message") })));
  }
  $("#notices-more").hidden = !!order || rows.length < 200;
}

async function circView() {
  let rows = [];
  try { rows = await api("GET", "circulation?state=" + encodeURIComponent($("#circ-state").value)); } catch (e) { toast(e.message); return; }
  const tb = $("#circ-table tbody"); tb.replaceChildren();
  const staff = ["staff", "admin"].includes(me.role);
  for (const c of rows) {
    const tr = el("tr", { "data-circ": c.id },
      el("td", { text: String(c.id) }), el("td", { text: c.locker, "data-label": t("col.locker") }), el("td", { text: c.kind, "data-label": t("col.kind") }),
      el("td", { text: c.patron || "", "data-label": t("col.patron") }), el("td", { text: c.item, "data-label": t("col.item") }),
      el("td", { text: c.state, "data-label": t("col.state") }), el("td", { text: [c.alert_type, c.screen, c.last_error, c.due].filter(Boolean).join(" · "), "data-label": t("col.message") }), el("td"));
    if (staff && (c.state === "refused" || c.state === "exception")) {
      if (!c.alert) tr.lastChild.append(el("button", { type: "button", class: "secondary", text: t("retry"), onclick: () => circAct(c.id, "retry") }), " ");
      tr.lastChild.append(el("button", { type: "button", class: "secondary", text: t("resolve"), onclick: () => circAct(c.id, "resolve") }));
    }
    tb.append(tr);
  }
}

async function circAct(id, action) {
  let note = "";
  if (action === "resolve") { note = prompt(t("note")) ?? ""; if (!note) return; }
  try { await api("POST", `circulation/${id}/${action}`, { Note: note }); } catch (e) { toast(e.message); }
  circView();
}

async function auditView() {
  let rows = [];
  try { rows = await api("GET", "audit"); } catch (e) { toast(e.message); return; }
  const tb = $("#audit-table tbody"); tb.replaceChildren();
  for (const a of rows.reverse()) {
    tb.append(el("tr", { "data-audit": a.seq }, el("td", { text: String(a.seq) }), el("td", { text: when(a.at), "data-label": t("col.when") }),
      el("td", { text: a.who, "data-label": t("col.who") }), el("td", { text: a.from, "data-label": t("col.from") }),
      el("td", { text: a.action + (a.target ? " " + a.target : "") + " → " + a.status, "data-label": t("col.what") }), el("td", { text: a.detail || "", "data-label": t("col.detail") })));
  }
}

document.addEventListener("DOMContentLoaded", () => {
  applyLang();
  $("#lang").addEventListener("click", () => { lang = lang === "zh" ? "en" : "zh"; localStorage.setItem("lockerhub.lang", lang); applyLang(); route(); });
  $("#signin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("#signin-error").textContent = "";
    try {
      me = await api("POST", "signin", { User: $("#signin-user").value, Password: $("#signin-password").value });
      $("#signin-password").value = "";
      if (!location.hash || location.hash === "#/signin") location.hash = "#/fleet"; else route();
    } catch (e) { $("#signin-error").textContent = e.message; }
  });
  $("#signout").addEventListener("click", async () => {
    try { await api("POST", "signout"); } catch {}
    // A fresh page: nothing of the last user's stays in it.
    location.replace("/console/#/signin");
    location.reload();
  });
  $("#fleet-filter").addEventListener("input", fleetView);
  document.querySelectorAll("#fleet-table th button").forEach((b) => b.addEventListener("click", () => {
    const k = b.dataset.sort; fleetSort = { key: k, dir: fleetSort.key === k ? -fleetSort.dir : 1 }; fleetView();
  }));
  $("#open-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const l = $("#locker-id").textContent, c = $("#open-comp").value, r = $("#open-reason").value.trim();
    $("#open-error").textContent = "";
    if (!r) { $("#open-error").textContent = t("locker.reason"); return; }
    if (!(await confirmBox(t("confirm.open", { l, c, r })))) return;
    try { const res = await api("POST", `lockers/${encodeURIComponent(l)}/open`, { Compartment: c, Reason: r }); toast(t("opened", { id: res.cmd_id })); $("#open-reason").value = ""; }
    catch (e) { $("#open-error").textContent = e.message; }
  });
  $("#service-toggle").addEventListener("click", async () => {
    const l = $("#locker-id").textContent, c = $("#open-comp").value;
    const comp = lockerComps.find((x) => x.id === c);
    try { await api("POST", `lockers/${encodeURIComponent(l)}/service`, { Compartment: c, InService: !!(comp && comp.out_of_service) }); } catch (e) { $("#open-error").textContent = e.message; }
  });
  $("#orders-search").addEventListener("submit", (ev) => { ev.preventDefault(); ordersView(); });
  $("#order-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const items = $("#order-items").value.split(",").map((s) => s.trim()).filter(Boolean).map((b) => ({ barcode: b }));
    try {
      const r = await api("POST", "orders", { locker: $("#order-locker").value.trim(), patron: $("#order-patron").value.trim(), items });
      $("#order-result").textContent = t("created", { o: r.order.id, c: r.code });
      ordersView("");
    } catch (e) { $("#order-result").textContent = e.message; }
  });
  $("#circ-state").addEventListener("change", circView);
  $("#notices-search").addEventListener("submit", (ev) => { ev.preventDefault(); noticesAfter = 0; noticesView(); });
  $("#notices-more").addEventListener("click", () => noticesView(true));
  $("#hold-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const l = $("#hold-locker").value.trim();
    try {
      const r = await api("POST", "holds", { Locker: l, Item: $("#hold-item").value.trim(), Card: $("#hold-card").value.trim() });
      $("#hold-result").textContent = r.ok ? t("hold.made", { o: r.order.id, l }) : t("hold.refused", { r: r.reason, m: r.message || "" });
      if (r.ok) { $("#hold-item").value = ""; $("#hold-card").value = ""; readersView(); }
    } catch (e) { $("#hold-result").textContent = e.message; }
  });
  window.addEventListener("hashchange", route);
  route();
});
