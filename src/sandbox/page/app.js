/*
 * app.js - the sandbox page's behaviour: the follower picker, the phone (chat lines from
 * /sandbox/api/events, long-polled), the menu, the SMS phone (the SMS in the same events),
 * the POS terminal and the platform panel.
 *
 * Every text from the server goes into the page with textContent (links are built as
 * elements, http(s) only), so nothing a bank or a visitor sends can run as script here.
 */
"use strict";

(function () {
  const API = "api/";
  const SMS_SHOWN_MAX = 100; // as many as one events answer carries
  const state = {
    account: null,     // {name, id, mode, appid, api_base, webhook_url}
    followers: [],     // [{openid, nickname, following, refuses, last_seq}]
    selected: "",      // openid shown on the phone
    seq: 0,            // last sequence number applied
    followersSeq: -1,
    menuSeq: -1,
    menu: null,
    cards: [],
    seen: {},          // openid -> last seq read (unread marks)
    poll: null,        // AbortController of the running long poll
    builtinMedia: "",
    smsUnread: 0,      // SMS that came while the SMS tab was not shown
  };

  const $ = (id) => document.getElementById(id);

  // ---- helpers ------------------------------------------------------------------------------

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== undefined && v !== null) e.setAttribute(k, String(v));
    }
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  // An absolute http(s) URL as the browser parses it, or null: javascript:, data: and the
  // like never become a link or an image source.
  function safeUrl(u) {
    if (typeof u !== "string" || !/^https?:\/\//i.test(u)) return null;
    try {
      const p = new URL(u);
      return p.protocol === "http:" || p.protocol === "https:" ? p.href : null;
    } catch (e) {
      return null;
    }
  }

  // A link that opens beside the page, as WeChat opens links in its in-app browser, and tells
  // the opened page neither where it came from nor how to reach back.
  function link(href, text, cls) {
    return el("a", { class: cls, href, target: "_blank", rel: "noopener noreferrer" }, text);
  }

  let toastTimer = null;
  function toast(text) {
    const t = $("toast");
    t.textContent = text;
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, 3500);
  }

  async function call(path, body, signal) {
    const opts = body === undefined ? { signal } : {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      signal,
    };
    const r = await fetch(API + path, opts);
    let data = null;
    try { data = await r.json(); } catch (e) { data = null; }
    if (!r.ok) {
      const why = data && data.error ? data.error : "HTTP " + r.status;
      const err = new Error(why);
      err.status = r.status;
      throw err;
    }
    return data;
  }

  function follower(openid) {
    return state.followers.find((f) => f.openid === openid) || null;
  }

  // ---- text with links ----------------------------------------------------------------------

  // A bare URL: ASCII URL characters only, so that it ends at the Chinese text or punctuation
  // around it ("链接：https://x/y，5分钟内有效" links https://x/y).
  const BARE_URL = /https?:\/\/[A-Za-z0-9\-._~:/?#[\]@!$&()*+,;=%]+/gi;

  // Appends text with its http(s) URLs as links; trailing sentence punctuation stays text,
  // as does a ")" the URL did not open.
  function appendLinked(parent, text) {
    let last = 0;
    let m;
    BARE_URL.lastIndex = 0;
    while ((m = BARE_URL.exec(text)) !== null) {
      let url = m[0].replace(/[.,;:!?]+$/, "");
      while (url.endsWith(")") && url.split("(").length < url.split(")").length) {
        url = url.slice(0, -1).replace(/[.,;:!?]+$/, "");
      }
      const href = safeUrl(url);
      if (!href) continue;
      if (m.index > last) parent.appendChild(document.createTextNode(text.slice(last, m.index)));
      parent.appendChild(link(href, url));
      last = m.index + url.length;
      BARE_URL.lastIndex = last;
    }
    if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
  }

  // WeChat text messages may also carry <a href="...">label</a>, shown as the label linked;
  // any other markup, and a link to anything but http(s), stays text as it came.
  function appendRichText(parent, text) {
    const re = /<a\s+href=(["'])(.*?)\1\s*>(.*?)<\/a>/gi;
    let last = 0;
    let m;
    while ((m = re.exec(text)) !== null) {
      const href = safeUrl(m[2]);
      if (!href) continue;
      appendLinked(parent, text.slice(last, m.index));
      parent.appendChild(link(href, m[3]));
      last = re.lastIndex;
    }
    appendLinked(parent, text.slice(last));
  }

  // ---- chat lines ---------------------------------------------------------------------------

  function avatar(from) {
    const a = el("span", { class: "avatar", "aria-hidden": "true" });
    a.textContent = from === "user" ? "我" : (state.account ? state.account.name.slice(0, 1) : "公");
    return a;
  }

  function eventText(m) {
    switch (m.event) {
      case "subscribe": return "你关注了该公众号 · followed" + (m.key ? " (scene " + m.key + ")" : "");
      case "SCAN": return "扫描了二维码 · scanned " + (m.key || "");
      case "unsubscribe": return "你取消了关注 · unfollowed";
      case "CLICK": return "点击了菜单 · menu " + (m.key || "");
      case "VIEW": return "打开了链接 · opened " + (m.url || "");
      default: return m.event || "event";
    }
  }

  function bubbleFor(m) {
    const b = el("div", { class: "bubble" });
    if (m.type === "text") {
      appendRichText(b, m.content || "");
    } else if (m.type === "image") {
      b.appendChild(el("img", { src: "media/" + encodeURIComponent(m.media_id), alt: "image" }));
    } else if (m.type === "location") {
      b.textContent = "[位置 Location] " + (m.label || "") + " (" + Number(m.lat).toFixed(4) +
        ", " + Number(m.lng).toFixed(4) + ")";
    } else {
      b.textContent = "[" + m.type + "]";
    }
    return b;
  }

  function templateCard(m) {
    const c = el("div", { class: "card", "data-template-id": m.template_id });
    c.appendChild(el("h3", {}, "模板消息 · Template message"));
    const rows = el("div", { class: "rows" });
    for (const r of m.rows || []) {
      const row = el("div", { class: "kv-row" });
      row.appendChild(el("span", { class: "k" }, r.key));
      row.appendChild(el("span", { class: "v" }, r.value));
      rows.appendChild(row);
    }
    c.appendChild(rows);
    const url = safeUrl(m.url);
    if (url) c.appendChild(link(url, "详情 · Details ›", "more"));
    return c;
  }

  function newsCard(m) {
    const url = safeUrl(m.url);
    const c = url ? link(url, undefined, "card") : el("div", { class: "card" });
    const pic = safeUrl(m.pic_url);
    if (pic) c.appendChild(el("img", { class: "cover", src: pic, alt: "" }));
    c.appendChild(el("h3", {}, m.title || ""));
    if (m.description) c.appendChild(el("div", { class: "desc" }, m.description));
    return c;
  }

  function renderLine(m) {
    const log = $("chat-log");
    if (m.type === "status") {
      const target = log.querySelector('.msg[data-seq="' + m.ref + '"]');
      if (!target) return;
      let s = target.querySelector(".status");
      if (m.status === "delivered") { if (s) s.remove(); return; }
      if (!s) { s = el("span", { class: "status" }); target.appendChild(s); }
      s.setAttribute("data-status", m.status);
      s.textContent = m.status === "failed" ? "!" : "重试 " + m.attempt + "/" + m.attempts;
      s.title = m.status === "failed" ? "没有应答 · no answer" : "retrying";
      return;
    }
    const row = el("div", {
      class: "msg", "data-from": m.from, "data-type": m.type, "data-seq": m.seq,
      "data-via": m.via, "data-msg-id": m.msg_id,
    });
    row.title = new Date(m.time).toLocaleString();
    if (m.from === "system" || m.type === "event") {
      const text = m.type === "event" ? eventText(m) : m.content;
      const s = el("span", { class: "sys" }, text);
      if (m.detail) s.title = m.detail;
      row.appendChild(s);
    } else {
      row.appendChild(avatar(m.from));
      if (m.type === "template") row.appendChild(templateCard(m));
      else if (m.type === "news") row.appendChild(newsCard(m));
      else row.appendChild(bubbleFor(m));
    }
    log.appendChild(row);
  }

  function applyMessages(messages, openid) {
    if (openid !== state.selected) return;
    const log = $("chat-log");
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 60;
    for (const m of messages) {
      if (log.querySelector('.msg[data-seq="' + m.seq + '"]')) continue;
      renderLine(m);
      state.seen[openid] = Math.max(state.seen[openid] || 0, m.seq);
    }
    if (atBottom || messages.length) log.scrollTop = log.scrollHeight;
  }

  // ---- SMS: the cardholder's phone ---------------------------------------------------------

  function smsItem(m) {
    const li = el("li", {
      class: "sms", "data-seq": m.seq, "data-id": m.id, "data-ref": m.ref,
      "data-repeat": String(!!m.repeat), "data-auth": String(!!m.auth),
    });
    const head = el("div", { class: "sms-head" });
    head.appendChild(el("span", { class: "sms-to" }, m.mobile));
    const when = new Date(m.time);
    head.appendChild(el("time", { class: "sms-time", datetime: when.toISOString() },
      when.toLocaleString()));
    li.appendChild(head);
    const text = el("div", { class: "sms-text" });
    appendLinked(text, m.text || ""); // phones link the URLs in an SMS too
    li.appendChild(text);
    if (m.repeat) {
      li.appendChild(el("span", { class: "sms-repeat", title: "ref " + m.ref }, "重复 · ref seen before"));
    }
    return li;
  }

  // Shows SMS (oldest first in `list`) newest on top; `fresh` ones mark the tab when hidden.
  function applySms(list, fresh) {
    const box = $("sms-list");
    for (const m of list || []) {
      if (box.querySelector('.sms[data-seq="' + m.seq + '"]')) continue;
      box.insertBefore(smsItem(m), box.firstChild);
      if (fresh && $("panel-sms").hidden) state.smsUnread++;
    }
    while (box.children.length > SMS_SHOWN_MAX) box.removeChild(box.lastChild);
    $("sms-empty").hidden = box.children.length > 0;
    const badge = $("sms-badge");
    badge.hidden = state.smsUnread === 0;
    badge.textContent = state.smsUnread > 99 ? "99+" : String(state.smsUnread);
  }

  function clearSms() {
    $("sms-list").textContent = "";
    state.smsUnread = 0;
    applySms([], false);
  }

  // ---- followers -----------------------------------------------------------------------------

  let followersShown = "";
  function renderFollowers() {
    const sel = $("follower-select");
    // Rebuild the options only when they change: an open drop-down stays open.
    const sig = JSON.stringify([state.selected, state.followers, state.seen]);
    renderFollowerControls();
    if (sig === followersShown) return;
    followersShown = sig;
    sel.textContent = "";
    if (!state.followers.length) {
      sel.appendChild(el("option", { value: "" }, "（无 · none yet: press New follower）"));
    }
    for (const f of state.followers) {
      const unread = f.openid !== state.selected && f.last_seq > (state.seen[f.openid] || 0);
      const label = (unread ? "● " : "") + f.nickname + (f.following ? "" : " (未关注 not following)") +
        " · " + f.openid.slice(0, 8) + "…";
      const o = el("option", { value: f.openid, "data-following": f.following }, label);
      if (f.openid === state.selected) o.selected = true;
      sel.appendChild(o);
    }
  }

  function renderFollowerControls() {
    const f = follower(state.selected);
    const toggle = $("follow-toggle");
    toggle.disabled = !f;
    toggle.textContent = "";
    toggle.appendChild(document.createTextNode(f && f.following ? "取消关注 " : "关注 "));
    toggle.appendChild(el("small", {}, f && f.following ? "Unfollow" : "Follow"));
    toggle.setAttribute("data-following", f ? String(f.following) : "");
    $("refuse-switch").disabled = !f;
    $("refuse-switch").checked = !!(f && f.refuses);
    const following = !!(f && f.following);
    $("chat-input").disabled = !following;
    $("chat-send").disabled = !following;
    $("chat-image").disabled = !following;
    $("chat-location").disabled = !following;
    $("not-following").hidden = !f || following;
    $("chat-log").setAttribute("data-openid", state.selected);
    $("phone").setAttribute("data-following", String(following));
  }

  async function selectFollower(openid) {
    state.selected = openid;
    $("chat-log").textContent = "";
    renderFollowers();
    if (!openid) {
      restartPoll();
      return;
    }
    try {
      await call("select", { openid });
      const ev = await call("events?after=0&wait=0&openid=" + encodeURIComponent(openid));
      applyMessages(ev.messages, openid);
      applySms(ev.sms, false);
      renderFollowers();
    } catch (e) {
      toast(e.message);
    }
    restartPoll();
  }

  // ---- state, menu, long poll -----------------------------------------------------------------

  async function loadState() {
    const s = await call("state");
    state.account = s.account;
    state.followers = s.followers;
    state.menu = s.menu;
    state.cards = s.cards;
    state.builtinMedia = s.builtin_media_id;
    state.followersSeq = s.followers_seq;
    state.menuSeq = s.menu_seq;
    $("account-name").textContent = s.account.name;
    $("sms-url").textContent = s.account.api_base + "/sms/send";
    document.title = s.account.name + " · 微信沙箱";
    renderMenu();
    renderCards(s.pos);
    renderAccount();
    if (state.selected && !follower(state.selected)) state.selected = "";
    return s;
  }

  async function pollLoop(controller) {
    while (!controller.signal.aborted) {
      const openid = state.selected;
      const q = "events?after=" + state.seq + (openid ? "&openid=" + encodeURIComponent(openid) : "");
      try {
        const ev = await call(q, undefined, controller.signal);
        if (controller.signal.aborted) return;
        if (ev.seq < state.seq) {
          // The sandbox restarted: start over.
          state.seq = 0;
          state.seen = {};
          clearSms();
          await loadState();
          await selectFollower(state.followers.length ? state.followers[0].openid : "");
          return;
        }
        const moved = ev.seq !== state.seq;
        state.seq = ev.seq;
        applyMessages(ev.messages, openid);
        applySms(ev.sms, true);
        // Something happened elsewhere (another follower's chat, the list, the menu): the
        // state call brings the unread marks, the follower list and the menu up to date.
        if (ev.followers_seq !== state.followersSeq || ev.menu_seq !== state.menuSeq ||
            (moved && !ev.messages.length)) {
          await loadState();
        }
        renderFollowers();
      } catch (e) {
        if (controller.signal.aborted) return;
        await new Promise((r) => setTimeout(r, 2000));
        if (e.status === 400 && !controller.signal.aborted) {
          // The follower is gone (a restarted sandbox): start over with what exists now.
          try {
            state.seq = 0;
            clearSms();
            await loadState();
            await selectFollower(state.followers.length ? state.followers[0].openid : "");
            return;
          } catch (e2) {
            // Still unreachable: keep polling.
          }
        }
      }
    }
  }

  function restartPoll() {
    if (state.poll) state.poll.abort();
    state.poll = new AbortController();
    pollLoop(state.poll);
  }

  function renderMenu() {
    const nav = $("menu");
    nav.textContent = "";
    $("submenu").hidden = true;
    const buttons = state.menu && Array.isArray(state.menu.button) ? state.menu.button : [];
    nav.setAttribute("data-empty", String(buttons.length === 0));
    buttons.forEach((b, i) => {
      const subs = Array.isArray(b.sub_button) && b.sub_button.length ? b.sub_button : null;
      const btn = el("button", {
        type: "button", "data-index": i, "data-has-sub": String(!!subs), "data-type": b.type,
        "data-key": b.key, "data-name": b.name,
      }, b.name);
      btn.addEventListener("click", () => (subs ? toggleSubmenu(btn, subs) : pressMenu(b)));
      nav.appendChild(btn);
    });
  }

  function toggleSubmenu(btn, subs) {
    const box = $("submenu");
    if (!box.hidden && box.getAttribute("data-for") === btn.getAttribute("data-index")) {
      box.hidden = true;
      return;
    }
    box.textContent = "";
    box.setAttribute("data-for", btn.getAttribute("data-index"));
    for (const s of subs) {
      const b = el("button", { type: "button", "data-type": s.type, "data-key": s.key, "data-name": s.name }, s.name);
      b.addEventListener("click", () => { box.hidden = true; pressMenu(s); });
      box.appendChild(b);
    }
    box.style.left = btn.offsetLeft + "px";
    box.style.minWidth = btn.offsetWidth + "px";
    box.hidden = false;
  }

  async function pressMenu(b) {
    if (!state.selected) return toast("先选择关注者 · pick a follower first");
    if (b.type === "view") {
      const url = safeUrl(b.url);
      if (url) window.open(url, "_blank", "noopener,noreferrer");
      return send({ type: "view", url: b.url });
    }
    if (b.key) return send({ type: "click", key: b.key });
    toast("沙箱不支持此菜单类型 · menu type " + b.type + " is not emulated");
  }

  // ---- actions ---------------------------------------------------------------------------------

  async function send(body) {
    try {
      await call("send", Object.assign({ openid: state.selected }, body));
    } catch (e) {
      toast(e.message);
      return false;
    }
    return true;
  }

  async function newFollower() {
    const nickname = $("new-follower-name").value.trim();
    try {
      const r = await call("followers", nickname ? { nickname } : {});
      $("new-follower-name").value = "";
      await loadState();
      await selectFollower(r.follower.openid);
    } catch (e) {
      toast(e.message);
    }
  }

  async function toggleFollow() {
    const f = follower(state.selected);
    if (!f) return;
    try {
      await call("follow", { openid: f.openid, follow: !f.following });
      f.following = !f.following;
      renderFollowers();
    } catch (e) {
      toast(e.message);
    }
  }

  async function setRefuses() {
    const f = follower(state.selected);
    if (!f) return;
    try {
      const r = await call("refuse", { openid: f.openid, refuses: $("refuse-switch").checked });
      f.refuses = r.follower.refuses;
    } catch (e) {
      toast(e.message);
    }
    renderFollowerControls();
  }

  // ---- POS -------------------------------------------------------------------------------------

  function renderCards(posOn) {
    const sel = $("pos-card");
    const prev = sel.value;
    sel.textContent = "";
    for (const c of state.cards) {
      sel.appendChild(el("option", { value: c.index, "data-masked": c.masked }, c.label + " · " + c.masked));
    }
    if (prev) sel.value = prev;
    $("pos-off").hidden = posOn;
    $("pos-no-cards").hidden = !posOn || state.cards.length > 0;
    $("pos-pay").disabled = !posOn || !state.cards.length;
    $("pos-balance").disabled = !posOn || !state.cards.length;
  }

  function showPosResult(r, error) {
    const box = $("pos-result");
    box.textContent = "";
    if (error) {
      box.setAttribute("data-code", "");
      box.setAttribute("data-approved", "false");
      box.appendChild(el("div", { class: "error" }, "失败 · failed: " + error));
      return;
    }
    box.setAttribute("data-code", r.code);
    box.setAttribute("data-approved", String(r.approved));
    const head = el("div");
    head.appendChild(el("span", { class: "code" }, r.code));
    head.appendChild(el("span", { class: "meaning" }, r.meaning));
    box.appendChild(head);
    const dl = el("dl");
    const rows = [["卡号 Card", r.card], ["金额 Amount", r.amount + " " + r.currency],
      ["授权码 Approval", r.approval || "—"], ["流水号 STAN", r.stan], ["参考号 RRN", r.rrn]];
    if (r.available !== null && r.available !== undefined) rows.push(["可用额度 Available", r.available + " CNY"]);
    for (const [k, v] of rows) {
      dl.appendChild(el("dt", {}, k));
      dl.appendChild(el("dd", { "data-field": k.split(" ")[1].toLowerCase() }, v));
    }
    box.appendChild(dl);
  }

  async function pos(kind) {
    const body = {
      card: Number($("pos-card").value),
      kind,
      amount: $("pos-amount").value.trim(),
      merchant: $("pos-merchant").value.trim(),
      mcc: $("pos-mcc").value.trim(),
      cross_border: $("pos-cross-border").checked,
    };
    $("pos-pay").disabled = $("pos-balance").disabled = true;
    $("pos-result").setAttribute("data-code", "");
    $("pos-result").textContent = "处理中 · processing…";
    try {
      showPosResult(await call("pos", body));
    } catch (e) {
      showPosResult(null, e.message);
    }
    $("pos-pay").disabled = $("pos-balance").disabled = false;
  }

  // ---- platform panel -------------------------------------------------------------------------

  function renderAccount() {
    const a = state.account;
    const dl = $("account-info");
    dl.textContent = "";
    const rows = [["名称 Name", a.name], ["原始 ID", a.id], ["AppID", a.appid],
      ["消息模式 Mode", a.mode], ["wechat.api_base", a.api_base], ["Webhook", a.webhook_url]];
    for (const [k, v] of rows) {
      dl.appendChild(el("dt", {}, k));
      dl.appendChild(el("dd", {}, v));
    }
  }

  async function refreshStats() {
    try {
      $("stats").textContent = JSON.stringify(await call("stats"), null, 2);
    } catch (e) {
      toast(e.message);
    }
  }

  async function setFault() {
    const body = { kind: $("fault-kind").value, count: Number($("fault-count").value) };
    if ($("fault-endpoint").value) body.endpoint = $("fault-endpoint").value;
    if (body.kind === "slow") body.delay_ms = Number($("fault-delay").value);
    try {
      const r = await call("fault", body);
      toast("下 " + r.count + " 次调用 · next " + r.count + " call(s): " + r.kind +
        (r.endpoint ? " @ " + r.endpoint : "") + (r.delay_ms !== undefined ? " " + r.delay_ms + " ms" : ""));
      refreshStats();
    } catch (e) {
      toast(e.message);
    }
  }

  // ---- wiring ---------------------------------------------------------------------------------

  function showTab(btn) {
    for (const t of document.querySelectorAll(".tab")) {
      const on = t === btn;
      t.setAttribute("aria-selected", String(on));
      $(t.getAttribute("data-panel")).hidden = !on;
    }
    if (btn.id === "tab-dev") refreshStats();
    if (btn.id === "tab-sms") {
      state.smsUnread = 0;
      applySms([], false);
    }
  }

  function wire() {
    for (const t of document.querySelectorAll(".tab")) t.addEventListener("click", () => showTab(t));
    $("follower-select").addEventListener("change", (e) => selectFollower(e.target.value));
    $("new-follower").addEventListener("click", newFollower);
    $("follow-toggle").addEventListener("click", toggleFollow);
    $("follow-big").addEventListener("click", toggleFollow);
    $("refuse-switch").addEventListener("change", setRefuses);
    $("chat-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const input = $("chat-input");
      const text = input.value;
      if (!text.trim()) return;
      if (await send({ type: "text", content: text })) input.value = "";
      input.focus();
    });
    $("chat-image").addEventListener("click", () => send({ type: "image", media_id: state.builtinMedia }));
    $("chat-location").addEventListener("click", () =>
      send({ type: "location", lat: 31.2304, lng: 121.4737, label: "上海市黄浦区人民广场" }));
    $("pos-pay").addEventListener("click", () => pos("purchase"));
    $("pos-balance").addEventListener("click", () => pos("balance"));
    $("pos-cross-border").addEventListener("change", (e) => {
      $("pos-currency").textContent = e.target.checked ? "USD" : "CNY";
    });
    $("fault-set").addEventListener("click", setFault);
    $("stats-refresh").addEventListener("click", refreshStats);
  }

  async function start() {
    try {
      const s = await loadState();
      state.seq = s.seq;
      applySms((await call("events?after=0&wait=0")).sms, false);
      const first = s.selected || (s.followers.length ? s.followers[0].openid : "");
      await selectFollower(first);
      document.body.setAttribute("data-ready", "true");
    } catch (e) {
      toast("无法连接沙箱 · cannot reach the sandbox: " + e.message);
      setTimeout(start, 3000);
    }
  }

  wire();
  start();
})();
