'use strict';
// common.js - what the browser tests share: Debian's Chromium with the flags the project's
// rule for browser tests sets, steps that are named and timed (a failure names its step), and
// the sandbox phone's sequence numbers.

// The rule for browser tests: Debian's Chromium, with these flags.
const CHROMIUM = '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];

// Steps of one test, logged as "<prefix>: ok   <name> (<ms> ms)". `current` is the step
// running now, for the report of a failure.
function steps(prefix) {
  const s = { current: 'start' };
  s.log = (msg) => console.log(prefix + ': ' + msg);
  // Runs one step; an error (a Playwright timeout included) is rethrown by the caller naming
  // s.current.
  s.step = async (name, fn) => {
    s.current = name;
    const t0 = Date.now();
    const out = await fn();
    s.log('ok   ' + name + ' (' + (Date.now() - t0) + ' ms)');
    return out;
  };
  return s;
}

function check(cond, what) {
  if (!cond) throw new Error(what);
}

// The highest sequence number the sandbox's page shows, chat lines and SMS alike (the sandbox
// numbers both from one counter): whatever comes after an action is above it.
function lastSeq(page) {
  return page.evaluate(() => Math.max(0, ...[...document.querySelectorAll(
    '#chat-log .msg[data-seq], #sms-list .sms[data-seq]')].map((e) => Number(e.dataset.seq) || 0)));
}

// Types text on the sandbox's phone, sends it, and waits (at most timeout ms) for it to show
// as the follower's bubble.
async function phoneSay(page, text, timeout) {
  const mine = await page.locator('#chat-log .msg[data-from="user"]').count();
  await page.fill('#chat-input', text);
  await page.click('#chat-send');
  await page.waitForFunction(([count, t]) => {
    const rows = document.querySelectorAll('#chat-log .msg[data-from="user"]');
    return rows.length > count && rows[rows.length - 1].textContent.includes(t);
  }, [mine, text], { timeout });
}

module.exports = { CHROMIUM, FLAGS, steps, check, lastSeq, phoneSay };
