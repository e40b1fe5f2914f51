'use strict';
// bind.test.js - binding a WeChat to a credit card in Debian's Chromium, as a new follower
// does it: on the sandbox's phone pick 访客 Visitor (a follower bound to nobody), ask 余额 and
// be told the WeChat is not bound, send 绑定 and open the one-time link of the bank's reply in
// a new tab. It goes through the sandbox's OAuth to the bank's secure page "绑定信用卡" over
// HTTPS, with the session cookie HttpOnly, Secure and SameSite=Strict. A wrong picture code
// brings the form back with an error and a new picture; the right one, with Alice Chen's
// login name and password, binds the WeChat ("绑定成功"). Alice's phone gets the bank's SMS
// that a new WeChat was bound, and 余额 in the chat now answers with her card's credit. The
// secure pages must log nothing to the console: a Content-Security-Policy violation shows
// there. Takes a screenshot of the bind page at a phone's size, and one of its CAPTCHA row.
//
//   node bind.test.js <page-url> <secure-base-url> [<screenshot-dir>]
//
// page-url is the sandbox page (http://HOST:PORT/sandbox/), secure-base-url the bank's secure
// pages (https://HOST:PORT, a self-signed certificate). The server must be wxbank_test: the
// test reads each CAPTCHA's answer at GET <secure-base-url>/m/test/captcha/<id>, a route
// wxbank itself does not have. tests/browser/run starts the demo and runs this with NODE_PATH
// pointing at the playwright-core that scripts/browser-deps installs. Every wait is bounded
// (WX_BROWSER_WAIT_MS, default 20 s: the ASan build's server is slow); a timeout fails the
// test naming the step. Exit status 0 when every check holds, 1 otherwise.
const fs = require('fs');
const path = require('path');
const { chromium, request } = require('playwright-core');
const { CHROMIUM, FLAGS, steps, check, lastSeq, phoneSay } = require('./common');

const PAGE_URL = process.argv[2] || process.env.WX_SANDBOX_URL;
const SECURE = process.argv[3] || process.env.WX_SECURE_URL;
const SHOT_DIR = process.argv[4] ||
  path.join(process.env.WX_BUILD_DIR || '.', 'browser');
const BIND_SHOT = path.join(SHOT_DIR, 'bind.png');
const CAPTCHA_SHOT = path.join(SHOT_DIR, 'captcha.png');
const SHOT_MAX_BYTES = 300 * 1024; // the bind page's picture goes into the docs: keep it small
const WAIT_MS = Number(process.env.WX_BROWSER_WAIT_MS) || 20000;

// The demo's follower bound to nobody, and the cardholder it binds to (cmd_demo.c). Every demo
// cardholder has the same login password (README).
const VISITOR = '访客 Visitor';
const VISITOR_OPENID = 'oWXB_demo_visitor_000000004';
const LOGIN = 'K12345678';          // Alice Chen's ID number: her login name
const PASSWORD = 'Demo-2026-pass';
const MOBILE = '+85291234567';      // Alice's registered mobile
const MOBILE_SHOWN = '+85*****4567'; // as the SMS phone shows it (masked)
const CREDIT = '¥10,000.00';        // her card's available credit: nothing spent yet
const COOKIE = '__Host-wxs';        // the secure pages' session cookie
const CAPTCHA_ALPHABET = 'ACEFHJKMNPRTWXY349'; // src/web/web.h: WX_CAPTCHA_ALPHABET


const S = steps('bind.test');
const log = S.log;
const step = S.step;

let shownPage = null;  // the sandbox page, for the post-mortem of a failure
let securePage = null; // the bank's tab, likewise
const pageErrors = [];   // thrown on any page
const secureConsole = []; // console errors and warnings of the secure pages

// ---- the sandbox's phone ------------------------------------------------------------------

const ACCOUNT_TEXT = '#chat-log .msg[data-from="account"][data-type="text"]';

// Types text on the phone, sends it, and waits for it to show as the follower's bubble.
function say(page, text) {
  return phoneSay(page, text, WAIT_MS);
}

// Sends text and waits for the account's text reply after it that matches re; returns the
// reply's sequence number and text.
async function ask(page, text, re) {
  const after = await lastSeq(page);
  await say(page, text);
  const handle = await page.waitForFunction(([sel, seq, src]) => {
    for (const m of document.querySelectorAll(sel)) {
      const t = m.querySelector('.bubble').textContent;
      if (Number(m.dataset.seq) > seq && new RegExp(src).test(t)) {
        return { seq: Number(m.dataset.seq), text: t };
      }
    }
    return null;
  }, [ACCOUNT_TEXT, after, re.source], { timeout: WAIT_MS });
  return handle.jsonValue();
}

async function showTab(page, tab, panel) {
  await page.click(tab);
  await page.waitForSelector(panel, { state: 'visible', timeout: WAIT_MS });
}

// ---- the secure pages ---------------------------------------------------------------------

// The CAPTCHA picture's id (/m/captcha/<id>.png), once the browser has drawn it.
async function loadedCaptcha(page) {
  const img = page.locator('.captcha img');
  await img.waitFor({ state: 'visible', timeout: WAIT_MS });
  await page.waitForFunction(() => {
    const i = document.querySelector('.captcha img');
    return i !== null && i.complete && i.naturalWidth > 0;
  }, null, { timeout: WAIT_MS });
  const src = await img.getAttribute('src');
  const m = /^\/m\/captcha\/([0-9a-f]{16})\.png$/.exec(src);
  check(m, 'the CAPTCHA picture is at ' + JSON.stringify(src) + ', not /m/captcha/<16 hex>.png');
  return m[1];
}

// The answer to the CAPTCHA with this id, from wxbank_test's route (once per picture). Asked
// without the session's cookie: the route needs none, and a server without it (wxbank) then
// answers 401 rather than treat the request as the session's and draw it a new picture.
async function captchaAnswer(api, id) {
  const r = await api.get(SECURE + '/m/test/captcha/' + id, { timeout: WAIT_MS });
  check(r.status() === 200, 'GET /m/test/captcha/' + id + ' answered HTTP ' + r.status() +
    ' (is the server wxbank_test?)');
  const answer = (await r.text()).trim();
  check(new RegExp('^[' + CAPTCHA_ALPHABET + ']{5}$').test(answer),
    'the CAPTCHA answer is not 5 characters of the alphabet: ' + JSON.stringify(answer));
  return answer;
}

// Another answer of the same length from the same alphabet: surely wrong (the check ignores
// case only, and every character differs).
function wrongAnswer(answer) {
  return [...answer].map((c) =>
    CAPTCHA_ALPHABET[(CAPTCHA_ALPHABET.indexOf(c) + 1) % CAPTCHA_ALPHABET.length]).join('');
}

// Failed answers on the secure pages, as { status, method, url, type }.
const failedAnswers = [];

// Records what a secure page's tab throws, logs to the console and fails to load. Chromium
// reports each HTTP error answer on the console too ("Failed to load resource: the server
// responded with a status of 400"); those are judged by their answers instead, since the
// form with an error is itself a 400 by design.
function watchSecure(tab) {
  tab.on('pageerror', (e) => pageErrors.push('secure page: ' + e.message));
  tab.on('console', (m) => {
    if (m.type() !== 'error' && m.type() !== 'warning') return;
    if (/^Failed to load resource: the server responded with a status of \d+/.test(m.text())) {
      return;
    }
    secureConsole.push(m.type() + ': ' + m.text() + ' (' + (m.location().url || tab.url()) + ')');
  });
  tab.on('response', (r) => {
    if (r.status() >= 400) {
      failedAnswers.push({ status: r.status(), method: r.request().method(), url: r.url(),
        type: r.request().resourceType() });
    }
  });
}

// The icon Chromium asks every site for: the secure pages have none, and nothing links one.
function isFavicon(a) {
  return a.status === 404 && a.url === SECURE + '/favicon.ico';
}

// Fills the bind form and presses 验证并绑定.
async function submitBind(page, captcha) {
  await page.fill('#login', LOGIN);
  await page.fill('#password', PASSWORD);
  await page.fill('#captcha', captcha);
  await page.click('form button[type="submit"]:not([name="refresh"])');
}

async function run(browser, api) {
  const context = await browser.newContext({
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    locale: 'zh-CN',
    isMobile: true,
    hasTouch: true,
    ignoreHTTPSErrors: true, // the demo's certificate is self-signed
  });
  const page = await context.newPage();
  shownPage = page;
  page.setDefaultTimeout(WAIT_MS);
  page.on('pageerror', (e) => pageErrors.push('sandbox: ' + e.message));

  await step('open the sandbox page', async () => {
    await page.goto(PAGE_URL, { timeout: WAIT_MS });
    await page.waitForSelector('body[data-ready="true"]', { timeout: WAIT_MS });
  });

  await step('pick ' + VISITOR, async () => {
    const value = await page.$eval('#follower-select', (sel, who) => {
      const o = [...sel.options].find((opt) => opt.textContent.replace(/^● /, '').startsWith(who));
      return o ? o.value : null;
    }, VISITOR);
    check(value === VISITOR_OPENID, 'the follower ' + VISITOR + ' is ' + JSON.stringify(value) +
      ', not ' + VISITOR_OPENID);
    // Selecting also tells the sandbox who authorizes WeChat's OAuth in the next steps.
    await page.selectOption('#follower-select', value);
    await page.waitForSelector('#chat-log[data-openid="' + value + '"]', { timeout: WAIT_MS });
    await page.waitForSelector('#chat-input:enabled', { timeout: WAIT_MS });
  });

  await step('send 余额: the WeChat is not bound', async () => {
    const r = await ask(page, '余额', /未绑定|尚未绑定|可用额度/);
    check(/未绑定|尚未绑定/.test(r.text), 'an unbound WeChat got a balance: ' + r.text);
  });

  // Every tab the link opens is watched from its first request: the one-time link, the OAuth
  // hop and the meta refresh come before the bind form.
  context.on('page', (tab) => watchSecure(tab));

  const link = await step('send 绑定: a one-time link to the secure pages', async () => {
    const r = await ask(page, '绑定', /\/m\/go\/[0-9a-f]{64}/);
    const a = page.locator(ACCOUNT_TEXT + '[data-seq="' + r.seq + '"] .bubble a');
    check(await a.count() === 1, 'the reply shows ' + (await a.count()) + ' links, not 1');
    const l = await a.evaluate((e) => ({ href: e.href, target: e.target, rel: e.rel }));
    check(new RegExp('^' + SECURE.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') +
      '/m/go/[0-9a-f]{64}$').test(l.href), 'the link ' + l.href + ' is not ' + SECURE +
      '/m/go/<64 hex>');
    check(r.text.trimEnd().endsWith(l.href), 'the reply does not end with its link: ' + r.text);
    check(l.target === '_blank' && l.rel === 'noopener noreferrer',
      'the link opens as ' + JSON.stringify(l));
    log('     reply: ' + r.text.replace(/[0-9a-f]{64}/, '<64 hex>').replace(/\s+/g, ' '));
    return { seq: r.seq, href: l.href };
  });

  const bank = await step('open the link: OAuth, then the bind form in a new tab', async () => {
    const [tab] = await Promise.all([
      context.waitForEvent('page', { timeout: WAIT_MS }),
      page.click(ACCOUNT_TEXT + '[data-seq="' + link.seq + '"] .bubble a'),
    ]);
    securePage = tab;
    tab.setDefaultTimeout(WAIT_MS);
    await tab.waitForURL(SECURE + '/m/bind', { timeout: WAIT_MS });
    await tab.waitForSelector('#login', { state: 'visible', timeout: WAIT_MS });
    return tab;
  });

  await step('the bind form: in Chinese, as the phone asks', async () => {
    const seen = await bank.evaluate(() => ({
      lang: document.documentElement.lang,
      h1: document.querySelector('h1').textContent,
      title: document.title,
      fields: ['login', 'password', 'captcha'].map((id) => {
        const e = document.getElementById(id);
        return e ? e.type : null;
      }),
      buttons: [...document.querySelectorAll('form button')].map((b) => b.textContent),
      // the bank's own stylesheet, the one the Content-Security-Policy lets in, applied
      styled: [...document.styleSheets].some((sh) => sh.href === location.origin +
        '/m/static/app.css' && sh.cssRules.length > 0),
    }));
    check(seen.lang === 'zh-CN', 'the page\'s language is ' + JSON.stringify(seen.lang));
    check(seen.h1 === '绑定信用卡' && seen.title.startsWith('绑定信用卡'),
      'the page is ' + JSON.stringify(seen.h1) + ' / ' + JSON.stringify(seen.title));
    check(JSON.stringify(seen.fields) === '["text","password","text"]',
      'the form\'s fields are ' + JSON.stringify(seen.fields));
    check(seen.buttons.includes('验证并绑定') && seen.buttons.includes('看不清？换一张图'),
      'the form\'s buttons are ' + JSON.stringify(seen.buttons));
    check(seen.styled, 'the page\'s stylesheet /m/static/app.css did not load');
  });

  await step('the session cookie: HttpOnly, Secure, SameSite=Strict', async () => {
    const cookies = await context.cookies(SECURE);
    const c = cookies.find((x) => x.name === COOKIE);
    check(c, 'no ' + COOKIE + ' cookie for ' + SECURE + ' (cookies: ' +
      cookies.map((x) => x.name).join(', ') + ')');
    check(c.httpOnly && c.secure && c.sameSite === 'Strict' && c.path === '/',
      'the cookie is ' + JSON.stringify({ httpOnly: c.httpOnly, secure: c.secure,
        sameSite: c.sameSite, path: c.path }));
    check(/^[0-9a-f]{64}$/.test(c.value), 'the session id is not 64 hex digits');
    check(!(await bank.evaluate(() => document.cookie)).includes(COOKIE),
      'the page\'s script can read the session cookie');
  });

  const firstId = await step('the CAPTCHA picture has loaded', () => loadedCaptcha(bank));

  await step('screenshots: ' + BIND_SHOT + ' and ' + CAPTCHA_SHOT, async () => {
    fs.mkdirSync(SHOT_DIR, { recursive: true });
    await bank.screenshot({ path: BIND_SHOT, type: 'png' });
    await bank.locator('.captcha img').screenshot({ path: CAPTCHA_SHOT, type: 'png' });
    const size = fs.statSync(BIND_SHOT).size;
    check(size <= SHOT_MAX_BYTES, BIND_SHOT + ' is ' + size + ' bytes, over ' + SHOT_MAX_BYTES);
    log('     ' + BIND_SHOT + ': ' + size + ' bytes; ' + CAPTCHA_SHOT + ': ' +
      fs.statSync(CAPTCHA_SHOT).size + ' bytes');
  });

  const secondId = await step('a wrong picture code: the form again, an error, a new picture',
    async () => {
      await submitBind(bank, wrongAnswer(await captchaAnswer(api, firstId)));
      await bank.waitForSelector('p.error', { state: 'visible', timeout: WAIT_MS });
      const error = await bank.textContent('p.error');
      check(error.includes('图形验证码错误'), 'the error reads ' + JSON.stringify(error));
      check(await bank.textContent('h1') === '绑定信用卡', 'the page is no longer the bind form');
      // An ID or card number is never typed back into a page (only a mobile is).
      check(await bank.inputValue('#login') === '', 'the ID number was typed back into the page');
      check(await bank.inputValue('#password') === '', 'the password came back in the page');
      const id = await loadedCaptcha(bank);
      check(id !== firstId, 'the picture is the same one (' + id + ')');
      const refused = failedAnswers.filter((a) => !isFavicon(a));
      check(refused.length === 1 && refused[0].status === 400 && refused[0].method === 'POST' &&
        refused[0].url === SECURE + '/m/login' && refused[0].type === 'document',
      'the failed answers are ' + JSON.stringify(refused) + ', not the form\'s 400');
      failedAnswers.length = 0;
      return id;
    });

  await step('the right picture code with Alice Chen\'s login: 绑定成功', async () => {
    await submitBind(bank, await captchaAnswer(api, secondId));
    await bank.waitForSelector('h1:text-is("绑定成功")', { timeout: WAIT_MS });
    log('     page: ' + (await bank.innerText('main')).replace(/\s+/g, ' ').trim());
  });

  // Nothing on the secure pages may complain: a CSP violation, a blocked script or style, a
  // mixed-content warning all show on the console. Apart from the wrong code's form, every
  // answer was a success.
  check(secureConsole.length === 0, 'the secure pages logged: ' + secureConsole.join(' | '));
  check(failedAnswers.every(isFavicon), 'the secure pages failed to load: ' +
    JSON.stringify(failedAnswers.filter((a) => !isFavicon(a))));

  await step('back on the phone: the SMS to ' + MOBILE_SHOWN + ' that a new WeChat is bound',
    async () => {
      await page.bringToFront();
      await showTab(page, '#tab-sms', '#panel-sms');
      const sms = page.locator('#sms-list .sms', {
        has: page.locator('.sms-to', { hasText: MOBILE_SHOWN }),
      }).filter({ hasText: '绑定了一个新的微信' });
      await sms.first().waitFor({ state: 'visible', timeout: WAIT_MS });
      log('     SMS: ' + (await sms.first().locator('.sms-text').textContent()));
      // The masked number could be anybody's: the gateway's own record names Alice's in full.
      const r = await page.request.get(new URL('api/sms?mobile=' + encodeURIComponent(MOBILE),
        PAGE_URL).href, { timeout: WAIT_MS });
      check(r.status() === 200, 'GET /sandbox/api/sms answered HTTP ' + r.status());
      const got = (await r.json()).sms.filter((m) => m.text.includes('绑定了一个新的微信'));
      check(got.length === 1 && got[0].mobile === MOBILE, 'the gateway sent ' + got.length +
        ' binding SMS to ' + MOBILE + ', not 1');
      await showTab(page, '#tab-chat', '#panel-chat');
      await page.waitForSelector('#chat-log[data-openid="' + VISITOR_OPENID + '"]',
        { timeout: WAIT_MS });
    });

  await step('send 余额 again: Alice\'s card, ' + CREDIT + ' available', async () => {
    const r = await ask(page, '余额', /可用额度|未绑定/);
    check(r.text.includes('可用额度') && r.text.includes(CREDIT),
      'the balance reply is not ' + CREDIT + ' available: ' + r.text);
    log('     reply: ' + r.text.replace(/\s+/g, ' '));
  });

  check(pageErrors.length === 0, 'the pages threw: ' + pageErrors.join(' | '));
  check(secureConsole.length === 0, 'the secure pages logged: ' + secureConsole.join(' | '));
  await context.close();
}

// What the pages showed when a step failed: the last chat lines and the newest SMS on the
// phone, and the bank's tab.
async function postMortem() {
  if (shownPage) {
    try {
      const seen = await shownPage.evaluate(() => ({
        chat: [...document.querySelectorAll('#chat-log .msg')].slice(-6)
          .map((m) => m.getAttribute('data-from') + ': ' + m.textContent.replace(/\s+/g, ' ')),
        sms: [...document.querySelectorAll('#sms-list .sms')].slice(0, 4)
          .map((m) => m.textContent.replace(/\s+/g, ' ')),
      }));
      for (const line of seen.chat) console.error('bind.test:   chat  ' + line);
      for (const line of seen.sms) console.error('bind.test:   sms   ' + line);
    } catch (e) {
      console.error('bind.test:   (the phone could not be read: ' + e.message.split('\n')[0] + ')');
    }
  }
  if (securePage) {
    try {
      const main = await securePage.evaluate(() =>
        (document.querySelector('main') || document.body).innerText.replace(/\s+/g, ' '));
      console.error('bind.test:   bank  ' + securePage.url() + ': ' + main.slice(0, 300));
    } catch (e) {
      console.error('bind.test:   (the bank\'s tab could not be read: ' +
        e.message.split('\n')[0] + ')');
    }
  }
}

async function main() {
  if (!PAGE_URL || !SECURE || !/^https:\/\/[^/]+$/.test(SECURE)) {
    console.error('usage: node bind.test.js <page-url> <https://host:port> [<screenshot-dir>]');
    return 2;
  }
  let browser = null;
  let api = null;
  try {
    browser = await step('launch ' + CHROMIUM, () => chromium.launch({
      executablePath: CHROMIUM, headless: true, args: FLAGS, timeout: WAIT_MS,
    }));
    api = await request.newContext({ ignoreHTTPSErrors: true });
    await run(browser, api);
    log('1 passed, 0 failed');
    return 0;
  } catch (e) {
    const why = e.name === 'TimeoutError' ? 'timed out after ' + WAIT_MS + ' ms: ' : '';
    console.error('bind.test: FAIL at "' + S.current + '": ' + why + e.message.split('\n')[0]);
    if (pageErrors.length) console.error('bind.test: the pages threw: ' + pageErrors.join(' | '));
    if (secureConsole.length) {
      console.error('bind.test: the secure pages logged: ' + secureConsole.join(' | '));
    }
    await postMortem();
    log('0 passed, 1 failed');
    return 1;
  } finally {
    if (api) await api.dispose().catch(() => {});
    if (browser) await browser.close().catch(() => {});
  }
}

main().then((code) => process.exit(code));
