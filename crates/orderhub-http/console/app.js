// orderhub console: a single-page app in plain JavaScript. It uses the public /v1 API with the
// operator's API key (kept in sessionStorage, sent as "Authorization: Bearer"), so it sees and may
// do exactly what that key may. Every text node is set with textContent: nothing from the API is
// ever parsed as HTML.
'use strict';

const I18N = {
  zh: {
    brand: '订单中台', 'nav.orders': '订单', 'nav.exceptions': '异常', 'nav.inventory': '库存',
    'nav.channels': '渠道与承运商', 'nav.live': '实时', logout: '退出',
    'login.title': '登录', 'login.key': 'API 密钥', 'login.submit': '登录',
    'login.hint': '密钥只保存在本标签页（sessionStorage），关闭即清除。', 'login.bad': '密钥无效或已吊销',
    'orders.title': '订单查询', q: '任意编号', external_order_id: '渠道订单号', buyer: '买家昵称/ID',
    status: '状态', channel: '渠道', shop: '店铺', exception: '异常', created_from: '创建时间起',
    created_to: '创建时间止', search: '查询', reset: '重置', any: '全部', any_exception: '任一异常',
    order_id: '订单号', created_at: '创建时间', updated_at: '更新时间', exceptions: '异常',
    next: '下一页', first: '第一页', no_results: '没有符合条件的订单', results: '结果',
    'detail.title': '订单详情', back: '返回', lines: '商品行', sku: 'SKU', title: '名称', quantity: '数量',
    unit_price: '单价', paid_amount: '实付', receiver: '收货人', name: '姓名', phone: '电话',
    address: '地址', masked: '已脱敏（需要 pii:read）', amounts: '金额', goods_total: '商品总额',
    shipping_fee: '运费', discount: '优惠', fulfillment: '履约', warehouse: '仓库', carrier: '承运商',
    tracking_no: '运单号', timeline: '时间线', step: '步骤', at: '时间', from_to: '状态变化',
    actor: '操作者', since_previous: '距上一步', since_created: '距创建', version: '版本',
    'timeline.chart': '各步骤耗时（毫秒）', hold_reason: '挂起原因', kind: '类型', none: '无',
    'exc.title': '异常看板', 'exc.since': '发生于', 'exc.age': '持续', 'exc.actions': '操作',
    'exc.empty': '没有未处理的异常', 'exc.legend': '红色：超过 30 分钟；黄色：30 分钟以内',
    'exc.truncated': '只显示最早的部分', open: '打开',
    approve: '放行', cancel: '取消订单', hold: '挂起', 'cancel.reason': '取消原因',
    retry: '重试', switch_carrier: '换承运商', 'carrier.prompt': '改用哪家承运商（编码，如 yto、sf、jt）',
    'action.done': '已执行', 'inv.title': '库存查询', 'inv.lookup': '查询', on_hand: '在库',
    reserved: '已占用', available: '可用', 'inv.per_warehouse': '按仓库', 'inv.per_channel': '按渠道',
    listed: '可售', closed: '已关闭', ledger: '流水', movement: '变动', reason: '原因', reference: '关联',
    on_hand_after: '变动后在库', reserved_after: '变动后占用', total: '合计', 'inv.none': '未找到该 SKU',
    'ch.title': '渠道与承运商', 'ch.cursors': '拉取游标', cursor: '游标', holder: '持有者',
    'ch.rejected': '被拒绝的渠道消息', received_at: '接收时间', rule: '规则', field: '字段',
    'ch.dead': '死信', event_type: '事件', attempts: '尝试次数', last_error: '最后错误', state: '状态',
    'ch.breakers': '承运商熔断器', breaker: '熔断器', 'ch.throttled': '渠道限流次数',
    'ch.consumers': '事件消费者积压', consumer: '消费者', lag: '积压',
    'ch.messages': '渠道消息', count: '数量', outcome: '结果', forbidden: '当前角色无权查看',
    'live.title': '实时', 'live.throughput': '每分钟订单数', 'live.latency': 'HTTP 延迟（毫秒）',
    'live.routes': '按接口', route: '接口', requests: '请求数', p50: 'P50', p95: 'P95', p99: 'P99',
    'live.refresh': '每 5 秒刷新', orders_per_min: '订单/分钟', error: '错误',
    breaker_closed: '闭合', breaker_open: '断开', breaker_half_open: '半开', unknown: '未知',
    token: '令牌', token_ok: '有效', token_expiring: '授权将到期', token_expired: '待续期', token_reauthorize: '需重新授权',
  },
  en: {
    brand: 'Order hub', 'nav.orders': 'Orders', 'nav.exceptions': 'Exceptions', 'nav.inventory': 'Inventory',
    'nav.channels': 'Channels & carriers', 'nav.live': 'Live', logout: 'Log out',
    'login.title': 'Log in', 'login.key': 'API key', 'login.submit': 'Log in',
    'login.hint': 'The key stays in this tab only (sessionStorage) and is gone when it closes.',
    'login.bad': 'Unknown or revoked API key',
    'orders.title': 'Order search', q: 'Any id', external_order_id: 'Channel order id', buyer: 'Buyer nick / id',
    status: 'Status', channel: 'Channel', shop: 'Shop', exception: 'Exception', created_from: 'Created from',
    created_to: 'Created to', search: 'Search', reset: 'Reset', any: 'All', any_exception: 'Any exception',
    order_id: 'Order id', created_at: 'Created', updated_at: 'Updated', exceptions: 'Exceptions',
    next: 'Next page', first: 'First page', no_results: 'No orders match', results: 'Results',
    'detail.title': 'Order', back: 'Back', lines: 'Lines', sku: 'SKU', title: 'Title', quantity: 'Qty',
    unit_price: 'Unit price', paid_amount: 'Paid', receiver: 'Receiver', name: 'Name', phone: 'Phone',
    address: 'Address', masked: 'masked (needs pii:read)', amounts: 'Amounts', goods_total: 'Goods total',
    shipping_fee: 'Shipping', discount: 'Discount', fulfillment: 'Fulfillment', warehouse: 'Warehouse',
    carrier: 'Carrier', tracking_no: 'Tracking no', timeline: 'Timeline', step: 'Step', at: 'At',
    from_to: 'Status', actor: 'Actor', since_previous: 'Since previous', since_created: 'Since created',
    version: 'Version', 'timeline.chart': 'Time per step (ms)', hold_reason: 'Hold reason', kind: 'Kind',
    none: 'none',
    'exc.title': 'Exception board', 'exc.since': 'Since', 'exc.age': 'Age', 'exc.actions': 'Actions',
    'exc.empty': 'No open exceptions', 'exc.legend': 'Red: older than 30 min; yellow: younger',
    'exc.truncated': 'Only the oldest are shown', open: 'Open',
    approve: 'Approve', cancel: 'Cancel order', hold: 'Hold', 'cancel.reason': 'Reason for cancelling',
    retry: 'Retry', switch_carrier: 'Switch carrier', 'carrier.prompt': 'Ship with which carrier (code, e.g. yto, sf, jt)?',
    'action.done': 'Done', 'inv.title': 'Inventory', 'inv.lookup': 'Look up', on_hand: 'On hand',
    reserved: 'Reserved', available: 'Available', 'inv.per_warehouse': 'Per warehouse',
    'inv.per_channel': 'Per channel', listed: 'Listed', closed: 'Closed', ledger: 'Ledger',
    movement: 'Movement', reason: 'Reason', reference: 'Reference', on_hand_after: 'On hand after',
    reserved_after: 'Reserved after', total: 'Total', 'inv.none': 'No such SKU',
    'ch.title': 'Channels & carriers', 'ch.cursors': 'Pull cursors', cursor: 'Cursor', holder: 'Holder',
    'ch.rejected': 'Rejected channel messages', received_at: 'Received', rule: 'Rule', field: 'Field',
    'ch.dead': 'Dead letters', event_type: 'Event', attempts: 'Attempts', last_error: 'Last error',
    state: 'State', 'ch.breakers': 'Carrier breakers', breaker: 'Breaker',
    'ch.throttled': 'Channel throttling', 'ch.consumers': 'Event consumer lag', consumer: 'Consumer',
    lag: 'Lag', 'ch.messages': 'Channel messages', count: 'Count', outcome: 'Outcome',
    forbidden: 'Your role may not see this',
    'live.title': 'Live', 'live.throughput': 'Orders per minute', 'live.latency': 'HTTP latency (ms)',
    'live.routes': 'By route', route: 'Route', requests: 'Requests', p50: 'P50', p95: 'P95', p99: 'P99',
    'live.refresh': 'Refreshed every 5 s', orders_per_min: 'orders/min', error: 'Error',
    breaker_closed: 'closed', breaker_open: 'open', breaker_half_open: 'half open', unknown: 'unknown',
    token: 'Token', token_ok: 'valid', token_expiring: 'authorize soon', token_expired: 'to renew', token_reauthorize: 'authorize again',
  },
};

const STATUSES = ['pending_payment', 'paid', 'on_hold', 'allocated', 'released', 'shipped',
  'in_transit', 'delivered', 'completed', 'cancelled'];
const STATUS_ZH = {
  pending_payment: '待付款', paid: '已付款', on_hold: '挂起', allocated: '已分仓', released: '已下发',
  shipped: '已发货', in_transit: '运输中', delivered: '已签收', completed: '已完成', cancelled: '已取消',
};
const KIND_ZH = {
  on_hold: '挂起待审', out_of_stock: '缺货', not_released: '未下发', no_waybill: '无运单',
  no_tracking: '无物流轨迹', writeback_failed: '回传失败', stop_shipment: '需拦截',
  after_sale: '售后', unknown_channel_status: '未知渠道状态',
};
const RED_AFTER_SECONDS = 30 * 60;
const LIVE_REFRESH_MS = 5000;

let lang = localStorage.getItem('orderhub.lang') || 'zh';
let me = null;
let timers = [];
let charts = [];

const t = (k) => (I18N[lang][k] ?? I18N.en[k] ?? k);
const statusLabel = (s) => (lang === 'zh' ? (STATUS_ZH[s] || s) : s.replace(/_/g, ' '));
const kindLabel = (k) => (lang === 'zh' && KIND_ZH[k] ? `${KIND_ZH[k]} (${k})` : k);

// h('tag', {attrs}, ...children): children are nodes or text.
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'testid') el.dataset.testid = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of kids.flat(Infinity)) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

function fmtTime(s) {
  if (!s) return '';
  const d = new Date(s);
  return d.toLocaleString(lang === 'zh' ? 'zh-CN' : 'en-GB', { hour12: false });
}
function fmtMs(ms) {
  if (ms == null) return '';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3600000) return `${(ms / 60000).toFixed(1)} min`;
  return `${(ms / 3600000).toFixed(1)} h`;
}

function toast(msg, isError) {
  const el = document.getElementById('toast');
  el.textContent = msg;
  el.className = isError ? 'toast error' : 'toast';
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, 4000);
}

class ApiError extends Error {
  constructor(status, body) {
    const e = body && body.error;
    super(e ? `${e.code}: ${e.message}${e.field ? ` (${e.field})` : ''}` : `HTTP ${status}`);
    this.status = status;
    this.code = e && e.code;
  }
}

async function api(path, opts = {}) {
  const key = sessionStorage.getItem('orderhub.key');
  const headers = { Authorization: `Bearer ${key}` };
  if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
  if (opts.idempotent) headers['Idempotency-Key'] = crypto.randomUUID();
  const r = await fetch(path, {
    method: opts.method || 'GET',
    headers,
    body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
  });
  const text = await r.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = null; }
  if (r.status === 401) { logout(); throw new ApiError(401, body); }
  if (!r.ok) throw new ApiError(r.status, body);
  return body;
}

// ---- shell -------------------------------------------------------------------------------------

function applyLang() {
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  document.getElementById('lang').textContent = lang === 'zh' ? 'English' : '中文';
  document.querySelectorAll('[data-i18n]').forEach((el) => { el.textContent = t(el.dataset.i18n); });
  showWho();
}

function showWho() {
  const el = document.getElementById('whoami');
  el.textContent = me ? `${me.tenant_id} · ${me.key_name} · ${me.role}${me.pii_read ? ' · pii:read' : ''}` : '';
}

function logout() {
  sessionStorage.removeItem('orderhub.key');
  me = null;
  showLogin();
}

function showLogin() {
  stopTimers();
  document.getElementById('nav').hidden = true;
  document.getElementById('logout').hidden = true;
  document.getElementById('login').hidden = false;
  document.getElementById('view').replaceChildren();
  showWho();
}

async function login(key) {
  sessionStorage.setItem('orderhub.key', key);
  try {
    me = await api('/v1/whoami');
  } catch (e) {
    sessionStorage.removeItem('orderhub.key');
    const err = document.getElementById('login-error');
    err.textContent = e.status === 401 ? t('login.bad') : e.message;
    err.hidden = false;
    return false;
  }
  document.getElementById('login').hidden = true;
  document.getElementById('login-error').hidden = true;
  document.getElementById('nav').hidden = false;
  document.getElementById('logout').hidden = false;
  showWho();
  return true;
}

function stopTimers() {
  timers.forEach(clearInterval);
  timers = [];
  charts.forEach((c) => c.destroy());
  charts = [];
}

function route() {
  if (!me) return;
  stopTimers();
  const hash = location.hash || '#/orders';
  const [, page, arg] = hash.split('/');
  document.querySelectorAll('#nav a').forEach((a) => {
    a.classList.toggle('active', a.getAttribute('href') === `#/${page}`);
  });
  const view = document.getElementById('view');
  view.replaceChildren();
  const pages = { orders: arg ? orderDetail : ordersPage, exceptions: exceptionsPage,
    inventory: inventoryPage, channels: channelsPage, live: livePage };
  (pages[page] || ordersPage)(view, arg ? decodeURIComponent(arg) : undefined)
    .catch((e) => view.append(h('p', { class: 'error', testid: 'page-error' }, e.message)));
}

// ---- orders --------------------------------------------------------------------------------

let lastSearch = {};

function localToIso(v) {
  if (!v) return undefined;
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) return undefined;
  return d.toISOString();
}

async function ordersPage(view, _arg, cursorStack = []) {
  const field = (name, input) => h('label', {}, t(name), input);
  const inp = (name, testid, type = 'text') => h('input', { name, type, testid, value: lastSearch[name] || '' });
  const statusSel = h('select', { name: 'status', testid: 'search-status' },
    h('option', { value: '' }, t('any')),
    STATUSES.map((s) => h('option', { value: s, selected: lastSearch.status === s }, statusLabel(s))));
  const form = h('form', { class: 'search card', testid: 'search-form' },
    field('q', inp('q', 'search-q')),
    field('external_order_id', inp('external_order_id', 'search-external')),
    field('buyer', inp('buyer', 'search-buyer')),
    field('status', statusSel),
    field('channel', inp('channel', 'search-channel')),
    field('shop', inp('shop', 'search-shop')),
    field('exception', h('input', { name: 'exception', testid: 'search-exception', list: 'exception-kinds',
      value: lastSearch.exception || '', placeholder: 'any / out_of_stock …' })),
    h('datalist', { id: 'exception-kinds' }, ['any', ...Object.keys(KIND_ZH).filter((k) => k !== 'on_hold')]
      .map((k) => h('option', { value: k }))),
    field('created_from', inp('created_from', 'search-from', 'datetime-local')),
    field('created_to', inp('created_to', 'search-to', 'datetime-local')),
    h('button', { type: 'submit', class: 'primary', testid: 'search-submit' }, t('search')),
    h('button', { type: 'button', testid: 'search-reset', onclick: () => { lastSearch = {}; route(); } }, t('reset')));
  const results = h('div', { class: 'card', testid: 'search-results' });
  view.append(h('h2', {}, t('orders.title')), form, results);

  const run = async (cursor) => {
    const params = new URLSearchParams();
    for (const k of ['q', 'external_order_id', 'buyer', 'status', 'channel', 'shop', 'exception']) {
      if (lastSearch[k]) params.set(k, lastSearch[k].trim());
    }
    const from = localToIso(lastSearch.created_from);
    const to = localToIso(lastSearch.created_to);
    if (from) params.set('created_from', from);
    if (to) params.set('created_to', to);
    params.set('limit', '50');
    if (cursor) params.set('cursor', cursor);
    results.replaceChildren(h('p', { class: 'muted' }, '…'));
    let page;
    try {
      page = await api(`/v1/orders?${params}`);
    } catch (e) {
      results.replaceChildren(h('p', { class: 'error', testid: 'search-error' }, e.message));
      return;
    }
    const rows = page.orders.map((o) => h('tr', {
      class: 'clickable', testid: 'order-row', 'data-order-id': o.order_id,
      onclick: () => { location.hash = `#/orders/${o.order_id}`; },
    },
    h('td', { class: 'mono' }, h('a', { href: `#/orders/${o.order_id}`, testid: 'order-link' }, o.order_id)),
    h('td', {}, o.external_order_id), h('td', {}, o.channel), h('td', {}, o.shop_id),
    h('td', { testid: 'order-status' }, statusLabel(o.status)),
    h('td', {}, o.buyer && (o.buyer.nick || o.buyer.id) || ''),
    h('td', {}, o.exceptions.map((x) => h('span', { class: 'badge exc' }, kindLabel(x)))),
    h('td', {}, fmtTime(o.created_at))));
    const table = h('table', { testid: 'orders-table' },
      h('thead', {}, h('tr', {}, ['order_id', 'external_order_id', 'channel', 'shop', 'status', 'buyer',
        'exceptions', 'created_at'].map((k) => h('th', {}, t(k))))),
      h('tbody', {}, rows));
    const pager = h('div', { class: 'pager' },
      cursor ? h('button', { type: 'button', testid: 'first-page', onclick: () => run(undefined) }, t('first')) : null,
      page.next_cursor ? h('button', { type: 'button', testid: 'next-page', onclick: () => run(page.next_cursor) }, t('next')) : null,
      h('span', { class: 'muted' }, `${t('results')}: ${page.orders.length}${page.next_cursor ? '+' : ''}`));
    results.replaceChildren(page.orders.length ? table : h('p', { class: 'muted', testid: 'no-results' }, t('no_results')), pager);
  };
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    lastSearch = Object.fromEntries(new FormData(form).entries());
    run(undefined);
  });
  run(cursorStack[0]);
}

async function orderDetail(view, id) {
  const [o, tl] = await Promise.all([api(`/v1/orders/${encodeURIComponent(id)}`),
    api(`/v1/orders/${encodeURIComponent(id)}/timeline`)]);
  const r = o.receiver || {};
  const maskNote = me.pii_read ? null : h('span', { class: 'muted', testid: 'pii-masked' }, ` (${t('masked')})`);
  const kv = (pairs) => h('dl', { class: 'kv' }, pairs.map(([k, v, tid]) => [h('dt', {}, t(k)), h('dd', { testid: tid }, v ?? '')]));
  const f = o.fulfillment || {};
  const a = o.amounts || {};
  const actions = detailActions(o, () => route());
  view.append(
    h('p', {}, h('a', { href: '#/orders', testid: 'back' }, `← ${t('back')}`)),
    h('div', { class: 'card', testid: 'order-detail', 'data-order-id': o.order_id },
      h('h2', {}, `${t('detail.title')} `, h('span', { class: 'mono' }, o.order_id)),
      h('div', { class: 'grid' },
        kv([['external_order_id', o.external_order_id, 'detail-external'], ['channel', o.channel], ['shop', o.shop_id],
          ['status', statusLabel(o.status), 'detail-status'], ['version', o.version],
          ['buyer', o.buyer && [o.buyer.nick, o.buyer.id].filter(Boolean).join(' / ')],
          ['created_at', fmtTime(o.created_at)], ['updated_at', fmtTime(o.updated_at)],
          ['hold_reason', o.hold_reason],
          ['exceptions', o.exceptions.length ? o.exceptions.map((x) => h('span', { class: 'badge exc' }, kindLabel(x))) : t('none'), 'detail-exceptions']]),
        h('div', {}, h('h2', {}, t('receiver'), maskNote),
          kv([['name', r.name, 'receiver-name'], ['phone', r.phone, 'receiver-phone'],
            ['address', [r.province, r.city, r.district, r.town, r.detail].filter(Boolean).join(' '), 'receiver-address']])),
        h('div', {}, h('h2', {}, t('amounts')),
          kv([['goods_total', a.goods_total], ['shipping_fee', a.shipping_fee], ['discount', a.discount],
            ['paid_amount', a.paid_amount]]),
          h('h2', {}, t('fulfillment')),
          kv([['warehouse', f.warehouse_id], ['carrier', f.carrier], ['tracking_no', f.tracking_no]]))),
      actions.length ? h('p', {}, actions) : null),
    h('div', { class: 'card' }, h('h2', {}, t('lines')),
      h('table', { testid: 'lines-table' },
        h('thead', {}, h('tr', {}, ['sku', 'title', 'quantity', 'unit_price', 'discount', 'paid_amount']
          .map((k) => h('th', { class: k === 'title' || k === 'sku' ? '' : 'num' }, t(k))))),
        h('tbody', {}, (o.lines || []).map((l) => h('tr', {},
          h('td', { class: 'mono' }, l.sku), h('td', {}, l.title), h('td', { class: 'num' }, l.quantity),
          h('td', { class: 'num' }, l.unit_price), h('td', { class: 'num' }, l.discount),
          h('td', { class: 'num' }, l.paid_amount)))))),
    timelineCard(tl));
}

function detailActions(o, after) {
  const allowed = new Set(me.transitions);
  const possible = { on_hold: ['approve', 'cancel'], paid: ['hold', 'cancel'], pending_payment: ['cancel'],
    allocated: ['cancel'], released: ['cancel'] }[o.status] || [];
  return possible.filter((k) => allowed.has(k)).map((k) => actionButton(o.order_id, k, after));
}

function actionButton(orderId, action, after) {
  return h('button', {
    type: 'button', class: action === 'cancel' ? 'danger' : 'primary', testid: `action-${action}`,
    'data-order-id': orderId,
    onclick: async (ev) => {
      const body = {};
      let path = action;
      if (action === 'cancel' || action === 'hold') {
        const reason = prompt(t('cancel.reason'), 'console');
        if (reason == null) return;
        body.reason = reason;
      } else if (action === 'switch_carrier') {
        const carrier = prompt(t('carrier.prompt'), 'yto');
        if (carrier == null || !carrier.trim()) return;
        body.carrier = carrier.trim();
        path = 'carrier';
      }
      ev.target.disabled = true;
      try {
        await api(`/v1/orders/${orderId}/${path}`, { method: 'POST', body, idempotent: true });
        toast(`${t(action)}: ${t('action.done')}`);
        after();
      } catch (e) {
        ev.target.disabled = false;
        toast(e.message, true);
      }
    },
  }, t(action));
}

function timelineCard(tl) {
  const canvas = h('canvas', { testid: 'timeline-chart' });
  const card = h('div', { class: 'card', testid: 'timeline' },
    h('h2', {}, t('timeline')),
    h('table', { testid: 'timeline-table' },
      h('thead', {}, h('tr', {}, ['step', 'at', 'from_to', 'actor', 'since_previous', 'since_created']
        .map((k) => h('th', { class: k.startsWith('since') ? 'num' : '' }, t(k))))),
      h('tbody', {}, tl.steps.map((s) => h('tr', { testid: 'timeline-step' },
        h('td', {}, s.action), h('td', {}, fmtTime(s.at)),
        h('td', {}, `${s.from_status ? statusLabel(s.from_status) : '∅'} → ${statusLabel(s.to_status)}`),
        h('td', { class: 'mono' }, s.actor),
        h('td', { class: 'num' }, fmtMs(s.since_previous_ms)), h('td', { class: 'num' }, fmtMs(s.since_created_ms)))))),
    h('h2', {}, t('timeline.chart')),
    h('div', { class: 'chart-box small' }, canvas));
  if (window.Chart) {
    charts.push(new window.Chart(canvas, {
      type: 'bar',
      data: { labels: tl.steps.map((s) => s.action),
        datasets: [{ label: t('since_previous'), data: tl.steps.map((s) => s.since_previous_ms), backgroundColor: '#1f4e79' }] },
      options: { indexAxis: 'y', animation: false, maintainAspectRatio: false, plugins: { legend: { display: false } } },
    }));
  }
  return card;
}

// ---- exceptions --------------------------------------------------------------------------------

async function exceptionsPage(view) {
  const board = await api('/v1/exceptions?limit=500');
  const reload = () => route();
  const chips = h('div', { class: 'chips', testid: 'exception-counts' },
    Object.entries(board.counts).map(([k, n]) => h('span', { class: 'chip', testid: `exception-count-${k}` }, kindLabel(k), h('b', {}, n))));
  view.append(h('h2', {}, t('exc.title')), h('p', { class: 'muted' }, t('exc.legend')), chips);
  if (board.truncated) view.append(h('p', { class: 'muted' }, t('exc.truncated')));
  if (!board.exceptions.length) {
    view.append(h('p', { class: 'card muted', testid: 'exceptions-empty' }, t('exc.empty')));
    return;
  }
  const groups = new Map();
  for (const e of board.exceptions) {
    if (!groups.has(e.kind)) groups.set(e.kind, []);
    groups.get(e.kind).push(e);
  }
  for (const [kind, list] of groups) {
    view.append(h('div', { class: 'card', testid: `exception-group-${kind}` },
      h('h2', {}, kindLabel(kind), ' ', h('span', { class: 'muted' }, `(${board.counts[kind] ?? list.length})`)),
      h('table', { testid: 'exceptions-table' },
        h('thead', {}, h('tr', {}, ['order_id', 'external_order_id', 'channel', 'shop', 'status', 'exc.since', 'exc.age', 'exc.actions']
          .map((k) => h('th', {}, t(k))))),
        h('tbody', {}, list.map((e) => h('tr', {
          class: (e.age_seconds ?? 0) > RED_AFTER_SECONDS ? 'age-red' : 'age-yellow',
          testid: 'exception-row', 'data-order-id': e.order_id, 'data-kind': e.kind,
        },
        h('td', { class: 'mono' }, h('a', { href: `#/orders/${e.order_id}`, testid: 'exception-order-link' }, e.order_id)),
        h('td', {}, e.external_order_id), h('td', {}, e.channel), h('td', {}, e.shop_id),
        h('td', {}, statusLabel(e.status)), h('td', {}, fmtTime(e.since)),
        h('td', { testid: 'exception-age' }, fmtMs((e.age_seconds ?? 0) * 1000)),
        h('td', {}, e.actions.map((a) => actionButton(e.order_id, a, reload)))))))));
  }
}

// ---- inventory ---------------------------------------------------------------------------------

async function inventoryPage(view, sku) {
  const input = h('input', { name: 'sku', testid: 'inv-sku', value: sku || '', required: true });
  const form = h('form', { class: 'search card', testid: 'inv-form' },
    h('label', {}, t('sku'), input), h('button', { type: 'submit', class: 'primary', testid: 'inv-submit' }, t('inv.lookup')));
  const out = h('div', { testid: 'inv-result' });
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    location.hash = `#/inventory/${encodeURIComponent(input.value.trim())}`;
  });
  view.append(h('h2', {}, t('inv.title')), form, out);
  if (!sku) return;
  let inv;
  try {
    inv = await api(`/v1/inventory/${encodeURIComponent(sku)}`);
  } catch (e) {
    out.append(h('p', { class: 'card error', testid: 'inv-error' }, e.status === 404 ? t('inv.none') : e.message));
    return;
  }
  const ledger = await api(`/v1/inventory/${encodeURIComponent(sku)}/ledger?limit=200`);
  const num = (v) => h('td', { class: 'num' }, v);
  out.append(
    h('div', { class: 'grid' },
      h('div', { class: 'card' }, h('h2', {}, `${inv.sku} · ${inv.title}`),
        h('h2', {}, t('inv.per_warehouse')),
        h('table', { testid: 'inv-warehouses' },
          h('thead', {}, h('tr', {}, h('th', {}, t('warehouse')), ['on_hand', 'reserved', 'available'].map((k) => h('th', { class: 'num' }, t(k))))),
          h('tbody', {}, inv.warehouses.map((w) => h('tr', {}, h('td', {}, w.warehouse_id), num(w.on_hand), num(w.reserved), num(w.available))),
            h('tr', {}, h('th', {}, t('total')), num(inv.on_hand), num(inv.reserved), num(inv.available))))),
      h('div', { class: 'card' }, h('h2', {}, t('inv.per_channel')),
        inv.channels.length ? h('table', { testid: 'inv-channels' },
          h('thead', {}, h('tr', {}, h('th', {}, t('channel')), h('th', { class: 'num' }, t('listed')), h('th', {}, t('state')))),
          h('tbody', {}, inv.channels.map((c) => h('tr', {}, h('td', {}, c.channel), num(c.listed),
            h('td', { class: c.closed ? 'state-open' : 'state-closed' }, c.closed ? t('closed') : '✓')))))
          : h('p', { class: 'muted' }, t('none')))),
    h('div', { class: 'card' }, h('h2', {}, t('ledger')),
      h('table', { testid: 'inv-ledger' },
        h('thead', {}, h('tr', {}, ['at', 'warehouse', 'movement', 'quantity', 'reason', 'reference', 'on_hand_after', 'reserved_after']
          .map((k) => h('th', { class: ['quantity', 'on_hand_after', 'reserved_after'].includes(k) ? 'num' : '' }, t(k))))),
        h('tbody', {}, ledger.entries.slice().reverse().map((e) => h('tr', {},
          h('td', {}, fmtTime(e.at)), h('td', {}, e.warehouse_id), h('td', {}, e.movement), num(e.quantity),
          h('td', {}, e.reason || ''), h('td', { class: 'mono' }, e.reference || ''), num(e.on_hand_after), num(e.reserved_after)))))));
}

// ---- metrics (Prometheus text) -----------------------------------------------------------------

// Parses Prometheus text into [{name, labels, value}].
function parseProm(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/);
    if (!m) continue;
    const labels = {};
    if (m[3]) for (const p of m[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[p[1]] = p[2];
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

async function metrics() {
  const r = await fetch('/metrics');
  return parseProm(await r.text());
}

// Quantile from cumulative histogram buckets [(le, count)] (linear inside a bucket).
function quantile(buckets, q) {
  const total = buckets.length ? buckets[buckets.length - 1][1] : 0;
  if (!total) return null;
  const want = q * total;
  let prevLe = 0; let prevC = 0;
  for (const [le, c] of buckets) {
    if (c >= want) {
      if (!Number.isFinite(le)) return prevLe;
      return prevLe + (le - prevLe) * ((want - prevC) / Math.max(c - prevC, 1));
    }
    prevLe = le; prevC = c;
  }
  return prevLe;
}

// Latency buckets per route from the request-duration histogram, optionally minus an earlier read.
function latencyByRoute(ms, prev) {
  const by = new Map();
  for (const m of ms) {
    if (m.name !== 'orderhub_http_request_duration_seconds_bucket') continue;
    const key = `${m.labels.method} ${m.labels.route}`;
    if (!by.has(key)) by.set(key, new Map());
    const le = m.labels.le === '+Inf' ? Infinity : Number(m.labels.le);
    const before = prev && prev.get(key) && prev.get(key).get(le) || 0;
    by.get(key).set(le, m.value - before);
  }
  return by;
}

function sortedBuckets(map) {
  return [...map.entries()].sort((a, b) => a[0] - b[0]);
}

function sectionCard(title, testid, body) {
  return h('div', { class: 'card', testid }, h('h2', {}, title), body);
}

async function guarded(fn) {
  try { return await fn(); } catch (e) {
    return h('p', { class: e.status === 403 ? 'muted' : 'error' }, e.status === 403 ? t('forbidden') : e.message);
  }
}

// ---- channels & carriers -----------------------------------------------------------------------

async function channelsPage(view) {
  const [stats, ms] = await Promise.all([api('/v1/stats'), metrics()]);
  const breakerName = (v) => ({ 0: 'closed', 1: 'open', 2: 'half_open' }[v] || 'unknown');
  const breakers = ms.filter((m) => m.name === 'orderhub_carrier_breaker_state');
  const throttled = ms.filter((m) => m.name === 'orderhub_channel_throttled_total');
  const messages = ms.filter((m) => m.name === 'orderhub_channel_messages_total');
  const simple = (heads, rows, testid) => h('table', { testid },
    h('thead', {}, h('tr', {}, heads.map((k) => h('th', {}, t(k))))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c) => (c instanceof Node ? c : h('td', {}, c ?? '')))))));
  view.append(h('h2', {}, t('ch.title')));
  view.append(h('div', { class: 'grid' },
    sectionCard(t('ch.cursors'), 'pull-cursors', stats.pull_cursors.length
      ? simple(['channel', 'shop', 'cursor', 'holder', 'token'], stats.pull_cursors.map((c) => [c.channel, c.shop_id, fmtTime(c.cursor), c.holder,
        // The token's state (never the token); on hover, why a renewal was refused, or until
        // when the seller's authorization lasts (expiring), or the access token's expiry.
        h('td', { class: `token-${c.token_state}`, title: c.token_problem
          || (c.token_state === 'expiring' && c.refresh_token_expires_at ? fmtTime(c.refresh_token_expires_at)
            : (c.token_expires_at ? fmtTime(c.token_expires_at) : '')) }, t(`token_${c.token_state}`))]), 'pull-cursors-table')
      : h('p', { class: 'muted' }, t('none'))),
    sectionCard(t('ch.breakers'), 'breakers', breakers.length
      ? simple(['carrier', 'breaker'], breakers.map((b) => [b.labels.carrier,
        h('td', { class: `state-${breakerName(b.value)}` }, t(`breaker_${breakerName(b.value)}`))]), 'breakers-table')
      : h('p', { class: 'muted' }, t('none'))),
    sectionCard(t('ch.messages'), 'channel-metrics', simple(['channel', 'outcome', 'count'],
      [...messages.map((m) => [m.labels.channel, m.labels.outcome, m.value]),
        ...throttled.map((m) => [m.labels.channel, t('ch.throttled'), m.value])], 'channel-metrics-table')),
    sectionCard(t('ch.consumers'), 'consumers', simple(['consumer', 'lag'],
      [...stats.consumers.map((c) => [c.consumer, c.lag]), [t('ch.dead'), stats.dead_letters]], 'consumers-table'))));
  const rejected = await guarded(async () => {
    const list = await api('/v1/channel-messages?state=rejected&limit=100');
    return list.length ? simple(['received_at', 'channel', 'shop', 'rule', 'field', 'reason'],
      list.map((m) => [fmtTime(m.received_at), m.channel, m.shop_id, m.rule, m.field, m.reason]), 'rejected-table')
      : h('p', { class: 'muted' }, t('none'));
  });
  const dead = await guarded(async () => {
    const page = await api('/v1/dead-letters?limit=100');
    return page.dead_letters.length ? simple(['created_at', 'event_type', 'attempts', 'state', 'last_error'],
      page.dead_letters.map((d) => [fmtTime(d.created_at), d.event_type, d.attempts, d.state, d.last_error]), 'dead-table')
      : h('p', { class: 'muted' }, t('none'));
  });
  view.append(sectionCard(t('ch.rejected'), 'rejected-messages', rejected), sectionCard(t('ch.dead'), 'dead-letters', dead));
}

// ---- live --------------------------------------------------------------------------------------

async function livePage(view) {
  if (!window.Chart) throw new Error('chart.js did not load');
  const tput = h('canvas', { testid: 'chart-throughput' });
  const lat = h('canvas', { testid: 'chart-latency' });
  const routes = h('div', { testid: 'latency-routes' });
  view.append(h('h2', {}, t('live.title'), ' ', h('span', { class: 'muted' }, t('live.refresh'))),
    h('div', { class: 'grid' },
      sectionCard(t('live.throughput'), 'live-throughput', h('div', { class: 'chart-box' }, tput)),
      sectionCard(t('live.latency'), 'live-latency', h('div', { class: 'chart-box' }, lat))),
    sectionCard(t('live.routes'), 'live-routes', routes));
  const tChart = new window.Chart(tput, {
    type: 'bar', data: { labels: [], datasets: [{ label: t('orders_per_min'), data: [], backgroundColor: '#1f4e79' }] },
    options: { animation: false, maintainAspectRatio: false, plugins: { legend: { display: false } } },
  });
  const lChart = new window.Chart(lat, {
    type: 'line',
    data: { labels: [], datasets: ['p50', 'p95', 'p99'].map((q, i) => ({ label: t(q), data: [], borderColor: ['#2e7d32', '#e0b000', '#c62828'][i], tension: 0.2 })) },
    options: { animation: false, maintainAspectRatio: false },
  });
  charts.push(tChart, lChart);
  let prev = null;
  const tick = async () => {
    const [stats, ms] = await Promise.all([api('/v1/stats'), metrics()]);
    tChart.data.labels = stats.orders_per_minute.map((m) => new Date(m.minute).toLocaleTimeString(lang === 'zh' ? 'zh-CN' : 'en-GB', { hour: '2-digit', minute: '2-digit', hour12: false }));
    tChart.data.datasets[0].data = stats.orders_per_minute.map((m) => m.orders);
    tChart.update();
    // Latency over the last interval, all routes together (first tick: since the start).
    const now = latencyByRoute(ms);
    const delta = latencyByRoute(ms, prev);
    prev = now;
    const all = new Map();
    for (const b of delta.values()) for (const [le, c] of b) all.set(le, (all.get(le) || 0) + c);
    const buckets = sortedBuckets(all);
    const label = new Date().toLocaleTimeString(lang === 'zh' ? 'zh-CN' : 'en-GB', { hour12: false });
    lChart.data.labels.push(label);
    [0.5, 0.95, 0.99].forEach((q, i) => {
      const v = quantile(buckets, q);
      lChart.data.datasets[i].data.push(v == null ? null : Math.round(v * 1000 * 10) / 10);
    });
    if (lChart.data.labels.length > 60) {
      lChart.data.labels.shift();
      lChart.data.datasets.forEach((d) => d.data.shift());
    }
    lChart.update();
    const rows = [...now.entries()].map(([k, b]) => {
      const s = sortedBuckets(b);
      return [k, s.length ? s[s.length - 1][1] : 0, ...[0.5, 0.95, 0.99].map((q) => {
        const v = quantile(s, q);
        return v == null ? '' : (v * 1000).toFixed(1);
      })];
    }).sort((a, b) => b[1] - a[1]);
    routes.replaceChildren(h('table', { testid: 'latency-table' },
      h('thead', {}, h('tr', {}, ['route', 'requests', 'p50', 'p95', 'p99'].map((k) => h('th', { class: k === 'route' ? '' : 'num' }, t(k))))),
      h('tbody', {}, rows.map((r) => h('tr', {}, h('td', { class: 'mono' }, r[0]), r.slice(1).map((c) => h('td', { class: 'num' }, c)))))));
  };
  await tick();
  timers.push(setInterval(() => tick().catch((e) => toast(e.message, true)), LIVE_REFRESH_MS));
}

// ---- start -------------------------------------------------------------------------------------

document.addEventListener('DOMContentLoaded', async () => {
  document.getElementById('lang').addEventListener('click', () => {
    lang = lang === 'zh' ? 'en' : 'zh';
    localStorage.setItem('orderhub.lang', lang);
    applyLang();
    route();
  });
  document.getElementById('logout').addEventListener('click', logout);
  document.getElementById('login-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const key = document.getElementById('login-key').value.trim();
    if (key && await login(key)) {
      document.getElementById('login-key').value = '';
      route();
    }
  });
  window.addEventListener('hashchange', route);
  applyLang();
  const key = sessionStorage.getItem('orderhub.key');
  if (key && await login(key)) route(); else showLogin();
});
