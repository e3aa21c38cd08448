// End-to-end test of the orderhub console in a real browser: Debian's chromium driven by
// playwright-core (no browser download). It needs a running hub and an API key that may create and
// move orders (role ops or admin):
//
//   ORDERHUB_E2E_URL=http://127.0.0.1:8080 ORDERHUB_E2E_KEY=… node e2e/console.test.mjs
//
// scripts/e2e.sh starts a fresh hub and runs this; against `orderhub demo`, pass the URL and key it
// prints. The test seeds its own orders through the API (ids unique per run), so it works on a hub
// with other data too. Screenshots go to e2e/screenshots/*.png.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';

const base = (process.env.ORDERHUB_E2E_URL || '').replace(/\/$/, '');
const key = process.env.ORDERHUB_E2E_KEY || '';
if (!base || !key) {
  console.error('set ORDERHUB_E2E_URL and ORDERHUB_E2E_KEY (scripts/e2e.sh does)');
  process.exit(2);
}
const executablePath = process.env.ORDERHUB_E2E_CHROMIUM || '/usr/bin/chromium';
// Against `orderhub demo` (which ships orders as soon as they are paid) the seeded orders buy a SKU
// the demo tracks without stock: they wait on backorder, so the held order stays held.
const sku = process.env.ORDERHUB_E2E_SKU || 'E2E-TEE';
const shots = join(dirname(fileURLToPath(import.meta.url)), 'screenshots');
mkdirSync(shots, { recursive: true });

async function api(method, path, body) {
  const r = await fetch(`${base}${path}`, {
    method,
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await r.json().catch(() => null);
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(json)}`);
  return json;
}

function order(external, nick) {
  return {
    shop_id: 'e2e-shop', channel: 'taobao', external_order_id: external, channel_status: 'WAIT_BUYER_PAY',
    buyer: { nick },
    receiver: { name: '王小明', phone: '13812345678', province: '浙江省', city: '杭州市', district: '西湖区', detail: '文三路100号' },
    lines: [{ sku, title: 'T恤', quantity: 2, unit_price: '49.90' },
      { sku: 'E2E-CAP', title: 'Cap', quantity: 1, unit_price: '20.00' }],
    amounts: { currency: 'CNY', shipping_fee: '8.00' },
  };
}

// Seed: three orders; one paid, one paid and held (the exception board's on_hold).
const run = Date.now().toString(36).toUpperCase();
const ext = (n) => `E2E-${run}-${n}`;
const created = [];
for (const n of [1, 2, 3]) created.push(await api('POST', '/v1/orders', order(ext(n), `e2e-buyer-${run}`)));
await api('POST', `/v1/orders/${created[0].order_id}/pay`, {});
await api('POST', `/v1/orders/${created[1].order_id}/pay`, {});
await api('POST', `/v1/orders/${created[1].order_id}/hold`, { reason: 'e2e: address check' });
const held = created[1].order_id;
const who = await api('GET', '/v1/whoami');

const browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-gpu'] });
const failures = [];
const page = await browser.newPage({ viewport: { width: 1400, height: 900 }, locale: 'zh-CN' });
// The wrong-key step's 401 is expected; any other error in the page fails the test.
page.on('console', (m) => {
  if (m.type() === 'error' && !/status of 401/.test(m.text())) failures.push(`console error: ${m.text()}`);
});
page.on('pageerror', (e) => failures.push(`page error: ${e.message}`));
const shot = (name) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
const tid = (id) => page.getByTestId(id);

async function step(name, fn) {
  process.stdout.write(`- ${name} … `);
  try {
    await fn();
    console.log('ok');
  } catch (e) {
    console.log('FAILED');
    await shot(`failed-${name.replace(/\W+/g, '-')}`).catch(() => {});
    throw e;
  }
}

try {
  await step('the console loads with its CSP and asks for a key', async () => {
    const resp = await page.goto(`${base}/`);
    assert.match(resp.headers()['content-security-policy'] || '', /default-src 'none'/);
    await tid('login-form').waitFor();
    await shot('01-login-zh');
  });

  await step('a wrong key is refused', async () => {
    await tid('login-key').fill('not-a-key');
    await tid('login-submit').click();
    await tid('login-error').waitFor();
  });

  await step('logging in shows the key', async () => {
    await tid('login-key').fill(key);
    await tid('login-submit').click();
    await tid('nav-orders').waitFor();
    assert.match(await tid('whoami').textContent(), new RegExp(who.role));
  });

  await step('search an order by its channel order id', async () => {
    await tid('search-external').fill(ext(1));
    await tid('search-submit').click();
    await page.locator(`[data-testid=order-row][data-order-id="${created[0].order_id}"]`).waitFor();
    assert.equal(await tid('order-row').count(), 1);
    await shot('02-search-zh');
  });

  await step('search by buyer finds all three', async () => {
    await tid('search-reset').click();
    await tid('search-buyer').fill(`e2e-buyer-${run}`);
    await tid('search-submit').click();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=order-row]').length === 3);
  });

  await step('open the order and its timeline', async () => {
    await page.locator(`[data-testid=order-row][data-order-id="${created[0].order_id}"] [data-testid=order-link]`).click();
    await tid('order-detail').waitFor();
    await tid('timeline-table').waitFor();
    // The SKU has no stock: paying puts the order on backorder, an exception of its own.
    assert.equal(await tid('timeline-step').count(), 3, 'create, pay, and out_of_stock raised');
    await tid('timeline-chart').waitFor();
    const phone = await tid('receiver-phone').textContent();
    if (!who.pii_read) {
      assert.ok(!phone.includes('13812345678'), `phone masked without pii:read, got ${phone}`);
      await tid('pii-masked').waitFor();
    }
    await shot('03-order-timeline-zh');
  });

  await step('the exception board shows the held order and approving it takes it off', async () => {
    await tid('nav-exceptions').click();
    const row = page.locator(`[data-testid=exception-row][data-order-id="${held}"][data-kind=on_hold]`);
    await row.waitFor();
    await shot('04-exceptions-zh');
    await row.getByTestId('action-approve').click();
    await row.waitFor({ state: 'detached' });
    const o = await api('GET', `/v1/orders/${held}`);
    assert.equal(o.status, 'paid');
  });

  await step('switching to English relabels the console', async () => {
    await tid('lang-toggle').click();
    await page.waitForFunction(() => document.documentElement.lang === 'en');
    assert.equal((await tid('nav-orders').textContent()).trim(), 'Orders');
    await shot('05-exceptions-en');
    await tid('nav-orders').click();
    await tid('search-external').fill(ext(1));
    await tid('search-submit').click();
    await tid('order-row').first().waitFor();
    await tid('order-link').first().click();
    await tid('timeline-table').waitFor();
    await shot('06-order-timeline-en');
  });

  await step('the channels and live pages render', async () => {
    await tid('nav-channels').click();
    await tid('consumers').waitFor();
    // Each shop's token state beside its pull cursor (the demo's tokens do not expire).
    const tokens = await page.locator('[data-testid="pull-cursors-table"] td.token-ok').count();
    assert.ok(tokens >= 7, `a valid token shown for each of the seven demo shops, got ${tokens}`);
    await shot('07-channels-en');
    await tid('nav-live').click();
    await tid('latency-table').waitFor();
    await shot('08-live-en');
    await tid('lang-toggle').click();
    await page.waitForFunction(() => document.documentElement.lang === 'zh-CN');
    await shot('09-live-zh');
  });

  assert.deepEqual(failures, [], 'no errors in the browser console');
  console.log(`all steps passed; screenshots in ${shots}`);
} finally {
  await browser.close();
}
