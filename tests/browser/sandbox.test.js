'use strict';
// sandbox.test.js - the WeChat sandbox page in Debian's Chromium, as a visitor uses it: pick
// 张伟 (a follower bound to a cardholder of the demo bank), ask 余额 and read the available
// credit from the bank's reply, pay 88.00 CNY with 张伟's card on the POS tab (ISO 8583 to
// the bank), ask again and see the credit drop by exactly 88.00, then press the menu's
// 额度查询 (click event BALANCE) and see the same figure. Ends with a screenshot of the
// phone, which is also the README's picture of the sandbox.
//
//   node sandbox.test.js <page-url> [<screenshot.png>]
//
// tests/browser/run starts `wxbank demo` and runs this with NODE_PATH pointing at the
// playwright-core that scripts/browser-deps installs. Every wait is bounded (WX_BROWSER_WAIT_MS,
// default 20 s: the ASan build's server is slow); a timeout fails the test naming the step.
// Exit status 0 when every check holds, 1 otherwise.
const path = require('path');
const { chromium } = require('playwright-core');

const PAGE_URL = process.argv[2] || process.env.WX_SANDBOX_URL;
const SHOT = process.argv[3] || process.env.WX_SCREENSHOT ||
  path.join(process.env.WX_BUILD_DIR || '.', 'browser', 'sandbox.png');
const WAIT_MS = Number(process.env.WX_BROWSER_WAIT_MS) || 20000;
const HOLDER = '张伟';      // the demo's first cardholder, bound to the first follower
const PURCHASE = '88.00';   // CNY, paid on the POS tab
const MERCHANT = 'WXBANK SANDBOX SHOP';

// The rule for browser tests: Debian's Chromium, with these flags.
const CHROMIUM = '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];

let stepName = 'start';
let shownPage = null; // for the post-mortem of a failure
const pageErrors = [];

function log(msg) {
  console.log('sandbox.test: ' + msg);
}

// Runs one step; an error (a Playwright timeout included) is rethrown naming the step.
async function step(name, fn) {
  stepName = name;
  const t0 = Date.now();
  const out = await fn();
  log('ok   ' + name + ' (' + (Date.now() - t0) + ' ms)');
  return out;
}

function check(cond, what) {
  if (!cond) throw new Error(what);
}

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
async function say(page, text) {
  const mine = await page.locator('#chat-log .msg[data-from="user"]').count();
  await page.fill('#chat-input', text);
  await page.click('#chat-send');
  await page.waitForFunction(([count, t]) => {
    const rows = document.querySelectorAll('#chat-log .msg[data-from="user"]');
    return rows.length > count && rows[rows.length - 1].textContent.includes(t);
  }, [mine, text], { timeout: WAIT_MS });
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

  await step('pay ' + PURCHASE + ' CNY on the POS tab with ' + HOLDER + "'s card", async () => {
    await showTab(page, '#tab-pos', '#panel-pos');
    const card = await page.$eval('#pos-card', (sel, who) => {
      const o = [...sel.options].find((opt) => opt.textContent.startsWith(who + ' '));
      return o ? o.value : null;
    }, HOLDER);
    check(card !== null, 'no card of ' + HOLDER + ' in #pos-card');
    await page.selectOption('#pos-card', card);
    await page.fill('#pos-amount', PURCHASE);
    await page.fill('#pos-merchant', MERCHANT);
    await page.click('#pos-pay:enabled');
    // pos() empties data-code while it waits; a result sets it, a failure adds .error.
    await page.waitForFunction(() => {
      const box = document.getElementById('pos-result');
      return box.getAttribute('data-code') !== '' || box.querySelector('.error') !== null;
    }, null, { timeout: WAIT_MS });
    const code = await page.getAttribute('#pos-result', 'data-code');
    const approved = await page.getAttribute('#pos-result', 'data-approved');
    const text = (await page.textContent('#pos-result')).replace(/\s+/g, ' ');
    check(code === '00' && approved === 'true',
      'the purchase was not approved (data-code ' + JSON.stringify(code) + '): ' + text);
    log('     POS: ' + text);
  });

  await step('back to the chat, same follower', async () => {
    await showTab(page, '#tab-chat', '#panel-chat');
    await page.waitForSelector('#chat-log[data-openid="' + openid + '"]', { timeout: WAIT_MS });
  });

  const after = await step('send 余额 again: the credit dropped by ' + PURCHASE, async () => {
    const fen = await askBalance(page);
    check(before - fen === Math.round(Number(PURCHASE) * 100),
      'available credit went from ¥' + yuanOf(before) + ' to ¥' + yuanOf(fen) +
      ', not down by ' + PURCHASE);
    return fen;
  });
  log('     available after:  ¥' + yuanOf(after));

  await step('press the menu: 我的账户 › 额度查询 (BALANCE)', async () => {
    const n = (await balanceReplies(page)).length;
    // The bank pushes the menu at start-up (menu/create): wait for it to reach the page.
    await page.click('#menu button[data-name="我的账户"]', { timeout: WAIT_MS });
    await page.waitForSelector('#submenu:not([hidden])', { timeout: WAIT_MS });
    await page.click('#submenu button[data-key="BALANCE"]');
    const fen = await nextBalance(page, n);
    check(fen === after, 'the menu reply says ¥' + yuanOf(fen) + ', the chat said ¥' +
      yuanOf(after));
  });

  await step('screenshot of the phone: ' + SHOT, async () => {
    // The conversation at the bottom of the phone, the phone at the bottom of the screen.
    await page.$eval('#chat-log', (l) => { l.scrollTop = l.scrollHeight; });
    await page.$eval('#phone', (p) => p.scrollIntoView({ block: 'end' }));
    await page.waitForTimeout(300); // let the last scroll and bubbles settle before the shot
    await page.screenshot({ path: SHOT, type: 'png' });
  });

  check(pageErrors.length === 0, 'the page threw: ' + pageErrors.join(' | '));
  await context.close();
}

// What the page showed when a step failed: the last chat lines and the POS result.
async function postMortem() {
  if (!shownPage) return;
  try {
    const seen = await shownPage.evaluate(() => ({
      chat: [...document.querySelectorAll('#chat-log .msg')].slice(-6)
        .map((m) => m.getAttribute('data-from') + ': ' + m.textContent.replace(/\s+/g, ' ')),
      pos: document.getElementById('pos-result').textContent.replace(/\s+/g, ' '),
      toast: document.getElementById('toast').hidden ? '' : document.getElementById('toast').textContent,
    }));
    for (const line of seen.chat) console.error('sandbox.test:   chat  ' + line);
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
    console.error('sandbox.test: FAIL at "' + stepName + '": ' + why + e.message.split('\n')[0]);
    if (pageErrors.length) console.error('sandbox.test: the page threw: ' + pageErrors.join(' | '));
    await postMortem();
    log('0 passed, 1 failed');
    return 1;
  } finally {
    if (browser) await browser.close().catch(() => {});
  }
}

main().then((code) => process.exit(code));
