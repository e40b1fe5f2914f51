'use strict';
// sandbox.test.js - the WeChat sandbox page in Debian's Chromium, as a visitor uses it: pick
// 张伟 (a follower bound to a cardholder of the demo bank), ask 余额 and read the available
// credit from the bank's reply, pay 88.00 CNY with 张伟's card on the POS tab (ISO 8583 to
// the bank) and see the bank's alert arrive in 张伟's chat (a template message naming 88.00
// and the card's last four digits) but no SMS for it on the 短信 tab (a domestic POS purchase
// under 300.00 goes by WeChat alone), ask again and see the credit drop by exactly 88.00;
// then pay 388.00 and see both the WeChat alert and the SMS to 张伟's phone, and press the
// menu's 额度查询 (click event BALANCE) and see the credit down by both purchases. Before all
// that, a follower of its own sends a text with links, and the gateway gets an SMS with a
// one-time link: both show their http(s) URLs as links that open in a new tab, and nothing
// else (a javascript: URL, markup) as anything but text. Ends with
// a screenshot of the phone, the last alert in the chat (the README's picture of the sandbox
// is taken this way).
//
//   node sandbox.test.js <page-url> [<screenshot.png>]
//
// tests/browser/run starts `wxbank demo` and runs this with NODE_PATH pointing at the
// playwright-core that scripts/browser-deps installs. Every wait is bounded (WX_BROWSER_WAIT_MS,
// default 20 s: the ASan build's server is slow); a timeout fails the test naming the step.
// Exit status 0 when every check holds, 1 otherwise.
const path = require('path');
const { chromium } = require('playwright-core');
const { CHROMIUM, FLAGS, steps, check, lastSeq, phoneSay } = require('./common');

const PAGE_URL = process.argv[2] || process.env.WX_SANDBOX_URL;
const SHOT = process.argv[3] || process.env.WX_SCREENSHOT ||
  path.join(process.env.WX_BUILD_DIR || '.', 'browser', 'sandbox.png');
const WAIT_MS = Number(process.env.WX_BROWSER_WAIT_MS) || 20000;
const HOLDER = '张伟';      // the demo's first cardholder, bound to the first follower
const HOLDER_MOBILE = '138****8000'; // 张伟's mobile as the SMS phone shows it (masked)
const PURCHASE = '88.00';   // CNY, paid on the POS tab: under 300.00, WeChat alone
const BIG_PURCHASE = '388.00'; // CNY: 300.00 or more, WeChat and SMS
const MERCHANT = 'WXBANK SANDBOX SHOP';
// How long the SMS phone must stay without an SMS for the small purchase once its WeChat
// alert has shown: both channels go out from the same alert, so an SMS would come within
// milliseconds of it (the bank's SMS fallback waits alerts.sms_fallback_s, 60 s).
const NO_SMS_WINDOW_MS = 1500;
// The links check: its own follower (张伟's chat stays as the bank left it) and a mobile that
// is no cardholder's.
const LINK_FOLLOWER = '链接测试';
const LINK_MOBILE = '13900000001';
const ONE_TIME = 'https://127.0.0.1:8443/m/go/' + '0123456789abcdef'.repeat(4);


const S = steps('sandbox.test');
const log = S.log;
const step = S.step;

let shownPage = null; // for the post-mortem of a failure
const pageErrors = [];

// The available credit in the bank's balance reply (src/chat/chat.c), in Chinese or, as the
// bank answers a menu key such as BALANCE today, in English.
const AVAILABLE = '(?:可用额度：¥|Available: CNY )(-?[\\d,]+)\\.(\\d{2})';

// "可用额度：¥19,962.00" -> 1996200 (fen): integer arithmetic, so the difference is exact.
function fenOf(text) {
  const m = new RegExp(AVAILABLE).exec(text);
  if (!m) return null;
  const sign = m[1].startsWith('-') ? -1 : 1;
  return sign * (Number(m[1].replace(/[-,]/g, '')) * 100 + Number(m[2]));
}

function yuanOf(fen) {
  return (fen / 100).toFixed(2);
}

function fenOfYuan(yuan) {
  return Math.round(Number(yuan) * 100);
}

function reEscape(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// An amount standing alone in a text: "88.00" in "88.00元" or "消费88.00元", not in "388.00" or
// "19,488.00".
function amountRe(yuan) {
  return '(?<![\\d.,])' + reEscape(yuan) + '(?![\\d])';
}

// A card's last four digits standing alone: "9864" in "信用卡尾号9864", not inside a date, a
// time or an amount.
function last4Re(last4) {
  return '(?<![\\d.,:*-])' + last4 + '(?![\\d.,:-])';
}

// The account's text replies that carry an available credit, in order.
function balanceReplies(page) {
  return page.$$eval('#chat-log .msg[data-from="account"][data-type="text"] .bubble',
    (bs, re) => bs.map((b) => b.textContent).filter((t) => new RegExp(re).test(t)), AVAILABLE);
}

// Waits for the (n+1)-th balance reply and returns the available credit in fen.
async function nextBalance(page, n) {
  await page.waitForFunction(([count, re]) => {
    const bubbles = document.querySelectorAll(
      '#chat-log .msg[data-from="account"][data-type="text"] .bubble');
    return [...bubbles].filter((b) => new RegExp(re).test(b.textContent)).length > count;
  }, [n, AVAILABLE], { timeout: WAIT_MS });
  const replies = await balanceReplies(page);
  const text = replies[n];
  const fen = fenOf(text);
  check(fen !== null, 'no available credit in the balance reply: ' + JSON.stringify(text));
  return fen;
}

// Types text on the phone, sends it, and waits for it to show as the follower's bubble.
function say(page, text) {
  return phoneSay(page, text, WAIT_MS);
}

// Asks 余额 on the phone and returns the available credit the bank answers, in fen.
async function askBalance(page) {
  const n = (await balanceReplies(page)).length;
  await say(page, '余额');
  return nextBalance(page, n);
}

async function showTab(page, tab, panel) {
  await page.click(tab);
  await page.waitForSelector(panel, { state: 'visible', timeout: WAIT_MS });
}

// Pays `amount` CNY with the holder's card on the POS tab; returns the card's last four
// digits as the result shows them (masked: 622588******9864) and the result's text.
async function payAtPos(page, amount) {
  await showTab(page, '#tab-pos', '#panel-pos');
  const card = await page.$eval('#pos-card', (sel, who) => {
    const o = [...sel.options].find((opt) => opt.textContent.startsWith(who + ' '));
    return o ? o.value : null;
  }, HOLDER);
  check(card !== null, 'no card of ' + HOLDER + ' in #pos-card');
  await page.selectOption('#pos-card', card);
  await page.fill('#pos-amount', amount);
  await page.fill('#pos-merchant', MERCHANT);
  const stanBefore = await page.$eval('#pos-result',
    (box) => { const d = box.querySelector('dd[data-field="stan"]'); return d ? d.textContent : ''; });
  await page.click('#pos-pay:enabled');
  // pos() empties data-code while it waits; a result sets it, a failure adds .error. The STAN
  // tells this purchase's result from the one before.
  await page.waitForFunction((stan) => {
    const box = document.getElementById('pos-result');
    if (box.querySelector('.error') !== null) return true;
    const d = box.querySelector('dd[data-field="stan"]');
    return box.getAttribute('data-code') !== '' && d !== null && d.textContent !== stan;
  }, stanBefore, { timeout: WAIT_MS });
  const code = await page.getAttribute('#pos-result', 'data-code');
  const approved = await page.getAttribute('#pos-result', 'data-approved');
  const text = (await page.textContent('#pos-result')).replace(/\s+/g, ' ');
  check(code === '00' && approved === 'true',
    'the purchase was not approved (data-code ' + JSON.stringify(code) + '): ' + text);
  const paid = await page.textContent('#pos-result dd[data-field="amount"]');
  check(new RegExp('^' + amountRe(amount) + ' CNY$').test(paid.trim()),
    'the POS result shows the amount ' + JSON.stringify(paid) + ', not ' + amount + ' CNY');
  const masked = (await page.textContent('#pos-result dd[data-field="card"]')).trim();
  const m = /^\d{6}\*+(\d{4})$/.exec(masked);
  check(m, 'the POS result shows the card as ' + JSON.stringify(masked) + ', not masked');
  return { last4: m[1], text };
}

// The bank's alert templates in the chat: a row per data key, key .k and value .v.
const ALERT = '#chat-log .msg[data-from="account"][data-type="template"]';

// Waits for a template message after seq whose rows name the amount and the card's last four
// digits; returns its sequence number and its rows.
async function waitForAlert(page, amount, last4, seq) {
  const handle = await page.waitForFunction(([sel, after, amt, card]) => {
    for (const msg of document.querySelectorAll(sel)) {
      if (Number(msg.dataset.seq) <= after) continue;
      const values = [...msg.querySelectorAll('.card[data-template-id] .kv-row .v')]
        .map((v) => v.textContent);
      if (values.some((v) => new RegExp(amt).test(v)) &&
          values.some((v) => new RegExp(card).test(v))) {
        return {
          seq: Number(msg.dataset.seq),
          rows: [...msg.querySelectorAll('.kv-row')].map((r) =>
            r.querySelector('.k').textContent + '=' + r.querySelector('.v').textContent),
        };
      }
    }
    return null;
  }, [ALERT, seq, amountRe(amount), last4Re(last4)], { timeout: WAIT_MS });
  const alert = await handle.jsonValue();
  await page.locator(ALERT + '[data-seq="' + alert.seq + '"] .card')
    .waitFor({ state: 'visible', timeout: WAIT_MS });
  return alert;
}

// The SMS the phone shows with text matching re: [{seq, to, text}], newest first.
function smsMatching(page, re) {
  return page.$$eval('#sms-list .sms', (items, r) => items.map((li) => ({
    seq: Number(li.dataset.seq),
    to: li.querySelector('.sms-to').textContent,
    text: li.querySelector('.sms-text').textContent,
  })).filter((m) => new RegExp(r).test(m.text)), re);
}

// The links a node shows: [{href, text, target, rel}].
function linksIn(locator) {
  return locator.evaluate((node) => [...node.querySelectorAll('a')].map((a) => ({
    href: a.getAttribute('href'), text: a.textContent, target: a.getAttribute('target'),
    rel: a.getAttribute('rel'),
  })));
}

function checkLink(got, href, where) {
  check(got && got.href === href && got.text === href,
    where + ': no link to ' + href + ' (got ' + JSON.stringify(got) + ')');
  check(got.target === '_blank' && got.rel === 'noopener noreferrer',
    where + ': the link to ' + href + ' does not open apart (' + JSON.stringify(got) + ')');
}

// A follower of its own types URLs among Chinese text: the http(s) ones become links that open
// in a new tab with no way back to the page, the rest stays text; then an SMS with a one-time
// link shows it linked on the SMS phone.
async function checkLinks(page) {
  const plain = new URL('app.css?from=link', PAGE_URL).href;
  const text = '请点击一次性安全链接（5分钟内有效）：' + ONE_TIME + '，或打开 ' + plain +
    '。 javascript:alert(1) <a href="javascript:alert(2)">x</a> <img src=x onerror=alert(3)>';
  const before = await page.getAttribute('#chat-log', 'data-openid');
  await page.fill('#new-follower-name', LINK_FOLLOWER);
  await page.click('#new-follower');
  await page.waitForFunction(([old, name]) => {
    const sel = document.getElementById('follower-select');
    const o = sel.options[sel.selectedIndex];
    return document.getElementById('chat-log').dataset.openid !== old && o &&
      o.textContent.includes(name);
  }, [before, LINK_FOLLOWER], { timeout: WAIT_MS });
  await page.waitForSelector('#chat-input:enabled', { timeout: WAIT_MS });
  await say(page, text);
  const bubble = page.locator('#chat-log .msg[data-from="user"] .bubble').last();
  const links = await linksIn(bubble);
  check(links.length === 2, 'the message shows ' + links.length + ' links, not 2: ' +
    JSON.stringify(links));
  checkLink(links[0], ONE_TIME, 'the message');
  checkLink(links[1], plain, 'the message');
  check(await bubble.textContent() === text, 'the message does not read as it was typed');
  check(await bubble.locator('img, b, script').count() === 0, 'markup in the message took effect');

  const [popup] = await Promise.all([
    page.context().waitForEvent('page', { timeout: WAIT_MS }),
    bubble.locator('a').nth(1).click(),
  ]);
  await popup.waitForURL(plain, { timeout: WAIT_MS });
  check(await popup.evaluate(() => window.opener === null && document.referrer === ''),
    'the opened tab can reach back to the page or knows where it came from');
  check(page.url() === PAGE_URL, 'the page itself went to ' + page.url());
  await popup.close();

  const sms = '【微信银行】请点击一次性安全链接完成验证：' + ONE_TIME + '，5分钟内有效，请勿转发。';
  const r = await page.request.post(new URL('sms/send', PAGE_URL).href, {
    data: { mobile: LINK_MOBILE, text: sms, ref: 'browser-link-1' }, timeout: WAIT_MS,
  });
  check(r.status() === 200, 'the SMS gateway answered HTTP ' + r.status());
  await showTab(page, '#tab-sms', '#panel-sms');
  const item = page.locator('#sms-list .sms[data-ref="browser-link-1"] .sms-text');
  await item.waitFor({ state: 'visible', timeout: WAIT_MS });
  const smsLinks = await linksIn(item);
  check(smsLinks.length === 1, 'the SMS shows ' + smsLinks.length + ' links, not 1');
  checkLink(smsLinks[0], ONE_TIME, 'the SMS');
  check(await item.textContent() === sms, 'the SMS does not read as it was sent');
  await showTab(page, '#tab-chat', '#panel-chat');
}

async function run(browser) {
  const context = await browser.newContext({
    viewport: { width: 420, height: 860 },
    deviceScaleFactor: 2,
    locale: 'zh-CN',
    isMobile: true,
    hasTouch: true,
  });
  const page = await context.newPage();
  shownPage = page;
  page.setDefaultTimeout(WAIT_MS);
  page.on('pageerror', (e) => pageErrors.push(e.message));

  await step('open the sandbox page', async () => {
    await page.goto(PAGE_URL, { timeout: WAIT_MS });
    await page.waitForSelector('body[data-ready="true"]', { timeout: WAIT_MS });
  });

  await step('links in a message and an SMS: http(s) only, opened in a new tab',
    () => checkLinks(page));

  const openid = await step('pick ' + HOLDER + "'s follower", async () => {
    const value = await page.$eval('#follower-select', (sel, who) => {
      const o = [...sel.options].find((opt) => opt.textContent.replace(/^● /, '').startsWith(who));
      return o ? o.value : null;
    }, HOLDER);
    check(value, 'no follower named ' + HOLDER + ' in #follower-select');
    await page.selectOption('#follower-select', value);
    await page.waitForSelector('#chat-log[data-openid="' + value + '"]', { timeout: WAIT_MS });
    await page.waitForSelector('#chat-input:enabled', { timeout: WAIT_MS });
    return value;
  });

  const before = await step('send 余额 and read the reply', () => askBalance(page));
  log('     available before: ¥' + yuanOf(before));

  const seq88 = await lastSeq(page);
  const { last4 } = await step('pay ' + PURCHASE + ' CNY on the POS tab with ' + HOLDER + "'s card",
    async () => {
      const r = await payAtPos(page, PURCHASE);
      log('     POS: ' + r.text);
      return r;
    });

  await step('back to the chat, same follower', async () => {
    await showTab(page, '#tab-chat', '#panel-chat');
    await page.waitForSelector('#chat-log[data-openid="' + openid + '"]', { timeout: WAIT_MS });
  });

  const alert88 = await step('the WeChat alert: ' + PURCHASE + ', card ending ' + last4,
    () => waitForAlert(page, PURCHASE, last4, seq88));
  const alert88At = Date.now();
  log('     alert: ' + alert88.rows.join(' | '));

  await step('no SMS for ' + PURCHASE + ' on the SMS tab (' + NO_SMS_WINDOW_MS +
    ' ms after the alert)', async () => {
    await showTab(page, '#tab-sms', '#panel-sms');
    const left = NO_SMS_WINDOW_MS - (Date.now() - alert88At);
    // The one fixed wait: an SMS that is not sent cannot be waited for.
    if (left > 0) await page.waitForTimeout(left);
    const sms = await smsMatching(page, amountRe(PURCHASE));
    check(sms.length === 0, 'an SMS names ' + PURCHASE + ': ' +
      sms.map((m) => m.to + ' ' + m.text).join(' | '));
  });

  await step('back to the chat, same follower', async () => {
    await showTab(page, '#tab-chat', '#panel-chat');
    await page.waitForSelector('#chat-log[data-openid="' + openid + '"]', { timeout: WAIT_MS });
  });

  const after = await step('send 余额 again: the credit dropped by ' + PURCHASE, async () => {
    const fen = await askBalance(page);
    check(before - fen === fenOfYuan(PURCHASE),
      'available credit went from ¥' + yuanOf(before) + ' to ¥' + yuanOf(fen) +
      ', not down by ' + PURCHASE);
    return fen;
  });
  log('     available after:  ¥' + yuanOf(after));

  const seq388 = await lastSeq(page);
  await step('pay ' + BIG_PURCHASE + ' CNY on the POS tab with ' + HOLDER + "'s card", async () => {
    const r = await payAtPos(page, BIG_PURCHASE);
    check(r.last4 === last4, 'the POS result shows another card: ending ' + r.last4);
    log('     POS: ' + r.text);
  });

  await step('back to the chat, same follower', async () => {
    await showTab(page, '#tab-chat', '#panel-chat');
    await page.waitForSelector('#chat-log[data-openid="' + openid + '"]', { timeout: WAIT_MS });
  });

  const alert388 = await step('the WeChat alert: ' + BIG_PURCHASE + ', card ending ' + last4,
    async () => {
      const alert = await waitForAlert(page, BIG_PURCHASE, last4, seq388);
      // A details URL, when the bank sends one, is a link that opens apart like any other.
      const more = await linksIn(page.locator(ALERT + '[data-seq="' + alert.seq + '"] .card'));
      for (const a of more) {
        check(/^https?:\/\//.test(a.href) && a.target === '_blank' &&
          a.rel === 'noopener noreferrer', 'the alert links as ' + JSON.stringify(a));
      }
      alert.links = more.length;
      return alert;
    });
  log('     alert: ' + alert388.rows.join(' | ') + (alert388.links ? ' | details link' : ''));

  await step('the SMS for ' + BIG_PURCHASE + ' on the SMS tab, to ' + HOLDER_MOBILE, async () => {
    await showTab(page, '#tab-sms', '#panel-sms');
    await page.waitForFunction(([after, amt, card, to]) =>
      [...document.querySelectorAll('#sms-list .sms')].some((li) =>
        Number(li.dataset.seq) > after &&
        li.querySelector('.sms-to').textContent === to &&
        new RegExp(amt).test(li.querySelector('.sms-text').textContent) &&
        new RegExp(card).test(li.querySelector('.sms-text').textContent)),
    [seq388, amountRe(BIG_PURCHASE), last4Re(last4), HOLDER_MOBILE], { timeout: WAIT_MS });
    const sms = (await smsMatching(page, amountRe(BIG_PURCHASE))).filter((m) => m.seq > seq388);
    await page.locator('#sms-list .sms[data-seq="' + sms[0].seq + '"]')
      .waitFor({ state: 'visible', timeout: WAIT_MS });
    log('     SMS: ' + sms[0].to + ' ' + sms[0].text);
    // Still none for the small purchase: the bank's SMS for the big one came, so the gateway
    // was reachable all along.
    const small = await smsMatching(page, amountRe(PURCHASE));
    check(small.length === 0, 'an SMS names ' + PURCHASE + ': ' +
      small.map((m) => m.to + ' ' + m.text).join(' | '));
  });

  await step('back to the chat, same follower', async () => {
    await showTab(page, '#tab-chat', '#panel-chat');
    await page.waitForSelector('#chat-log[data-openid="' + openid + '"]', { timeout: WAIT_MS });
  });

  await step('press the menu: 我的账户 › 额度查询 (BALANCE): down by ' + PURCHASE + ' and ' +
    BIG_PURCHASE, async () => {
    const n = (await balanceReplies(page)).length;
    // The bank pushes the menu at start-up (menu/create): wait for it to reach the page.
    await page.click('#menu button[data-name="我的账户"]', { timeout: WAIT_MS });
    await page.waitForSelector('#submenu:not([hidden])', { timeout: WAIT_MS });
    await page.click('#submenu button[data-key="BALANCE"]');
    const fen = await nextBalance(page, n);
    check(fen === after - fenOfYuan(BIG_PURCHASE), 'the menu reply says ¥' + yuanOf(fen) +
      ', not ¥' + yuanOf(after) + ' less ' + BIG_PURCHASE + ' (¥' +
      yuanOf(after - fenOfYuan(BIG_PURCHASE)) + ')');
    log('     available at the end: ¥' + yuanOf(fen));
  });

  await step('screenshot of the phone: ' + SHOT, async () => {
    // The conversation at the bottom of the phone, the phone at the bottom of the screen; the
    // last alert in view (scrolled to the top of the chat if the replies after it push it out).
    await page.$eval('#chat-log', (l) => { l.scrollTop = l.scrollHeight; });
    const inView = (seq) => page.$eval('#chat-log', (l, s) => {
      const card = l.querySelector('.msg[data-type="template"][data-seq="' + s + '"] .card');
      const a = card.getBoundingClientRect();
      const b = l.getBoundingClientRect();
      return a.top >= b.top && a.bottom <= b.bottom;
    }, seq);
    if (!(await inView(alert388.seq))) {
      await page.$eval(ALERT + '[data-seq="' + alert388.seq + '"]',
        (m) => m.scrollIntoView({ block: 'start' }));
    }
    await page.$eval('#phone', (p) => p.scrollIntoView({ block: 'end' }));
    await page.waitForTimeout(300); // let the last scroll and bubbles settle before the shot
    check(await inView(alert388.seq), 'the ' + BIG_PURCHASE + ' alert is not in view in the chat');
    await page.screenshot({ path: SHOT, type: 'png' });
  });

  check(pageErrors.length === 0, 'the page threw: ' + pageErrors.join(' | '));
  await context.close();
}

// What the page showed when a step failed: the last chat lines, the newest SMS and the POS
// result.
async function postMortem() {
  if (!shownPage) return;
  try {
    const seen = await shownPage.evaluate(() => ({
      chat: [...document.querySelectorAll('#chat-log .msg')].slice(-6)
        .map((m) => m.getAttribute('data-from') + ': ' + m.textContent.replace(/\s+/g, ' ')),
      sms: [...document.querySelectorAll('#sms-list .sms')].slice(0, 4)
        .map((m) => m.textContent.replace(/\s+/g, ' ')),
      pos: document.getElementById('pos-result').textContent.replace(/\s+/g, ' '),
      toast: document.getElementById('toast').hidden ? '' : document.getElementById('toast').textContent,
    }));
    for (const line of seen.chat) console.error('sandbox.test:   chat  ' + line);
    for (const line of seen.sms) console.error('sandbox.test:   sms   ' + line);
    if (seen.pos) console.error('sandbox.test:   pos   ' + seen.pos);
    if (seen.toast) console.error('sandbox.test:   toast ' + seen.toast);
  } catch (e) {
    console.error('sandbox.test:   (the page could not be read: ' + e.message.split('\n')[0] + ')');
  }
}

async function main() {
  if (!PAGE_URL) {
    console.error('usage: node sandbox.test.js <page-url> [<screenshot.png>]');
    return 2;
  }
  let browser = null;
  try {
    browser = await step('launch ' + CHROMIUM, () => chromium.launch({
      executablePath: CHROMIUM, headless: true, args: FLAGS, timeout: WAIT_MS,
    }));
    await run(browser);
    log('1 passed, 0 failed');
    return 0;
  } catch (e) {
    const why = e.name === 'TimeoutError' ? 'timed out after ' + WAIT_MS + ' ms: ' : '';
    console.error('sandbox.test: FAIL at "' + S.current + '": ' + why + e.message.split('\n')[0]);
    if (pageErrors.length) console.error('sandbox.test: the page threw: ' + pageErrors.join(' | '));
    await postMortem();
    log('0 passed, 1 failed');
    return 1;
  } finally {
    if (browser) await browser.close().catch(() => {});
  }
}

main().then((code) => process.exit(code));
