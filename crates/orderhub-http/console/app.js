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
    'ch.authorize': '授权店铺', 'ch.authorize_scope': '快手权限包（逗号分隔，如 merchant_order,merchant_item）',
    'ch.authorize_service': '抖店服务市场的服务 ID（service_id）', 'ch.authorize_opened': '已在新窗口打开授权页，卖家授权后店铺令牌自动保存',
    'live.title': '实时', 'live.throughput': '每分钟订单数', 'live.latency': 'HTTP 延迟（毫秒）',
    'live.routes': '按接口', route: '接口', requests: '请求数', p50: 'P50', p95: 'P95', p99: 'P99',
    'live.refresh': '每 5 秒刷新', orders_per_min: '订单/分钟', error: '错误',
    breaker_closed: '闭合', breaker_open: '断开', breaker_half_open: '半开', unknown: '未知',
    token: '令牌', token_ok: '有效', token_expiring: '授权将到期', token_expired: '待续期', token_reauthorize: '需重新授权',
    'nav.after_sales': '售后', 'as.title': '售后单', 'as.order_cases': '本订单的售后单', 'as.empty': '没有售后单',
    'as.refund_line': '退款', 'as.return_line': '退货退款', 'as.quantity': '退几件？', 'as.reason': '售后原因',
    case_id: '售后单号', effect: '处理方式', amount: '金额', source: '来源', 'as.state_filter': '状态',
    'as.approve': '同意', 'as.refuse': '拒绝', 'as.receive': '收货质检', 'as.refund': '已退款', 'as.close': '关闭',
    'as.qc_passed': '质检是否通过？（确定 = 通过，取消 = 不通过，入隔离库存）', 'as.refuse_reason': '拒绝原因',
    'as.effect_prompt': '订单状态已变化，处理方式变为 {effect}。仍然同意？',
    'nav.edits': '修改审批', 'edit.address': '修改地址', 'edit.submit': '提交修改', 'edit.reason': '修改原因',
    province: '省', city: '市', district: '区', detail: '详细地址', 'edit.applied': '已修改',
    'edit.pending': '已提交，等待另一人审批', 'edit.log': '修改记录', 'edits.title': '待审批的修改',
    'edits.empty': '没有待审批的修改', fields: '修改内容', requested_by: '申请人', approvals: '审批',
    'edit.approve': '批准', 'edit.reject': '驳回', 'edit.reject_reason': '驳回原因', 'edit.after': '修改后',
    'edit.failed': '未能应用', edit_state_pending: '待审批', edit_state_applied: '已应用',
    edit_state_rejected: '已驳回', edit_state_failed: '失败',
    'nav.health': '健康度', 'hl.title': '订单健康度', 'hl.dimension': '维度', 'hl.days': '天数', 'hl.compute': '计算今天',
    'hl.dim_shop': '店铺', 'hl.dim_channel': '渠道', 'hl.dim_warehouse': '仓库', 'hl.dim_carrier': '承运商', 'hl.dim_region': '地区（省）',
    'hl.grades': '每日等级（点击某天查看订单）', 'hl.trend': '趋势', 'hl.empty': '这段时间还没有计算过健康度',
    'hl.grade': '等级', 'hl.live': '此刻（最近支付的订单，每 5 秒刷新）', 'hl.window': '窗口', 'hl.live_empty': '窗口内没有已支付的订单', 'hl.orders_n': '订单', 'hl.score': '分数', 'hl.components': '各项（不合格/评估）',
    'hl.orders': '拖低分数的订单', 'hl.failing': '未达标项', 'hl.no_orders': '没有未达标的订单', 'hl.key': '对象',
    'hl.c_on_time': '按时发货', 'hl.c_exceptions': '异常', 'hl.c_exception_age': '异常超时', 'hl.c_refunds': '退款',
    'hl.c_sync_lag': '同步延迟', 'hl.c_write_back': '回传', 'hl.c_tracking': '物流轨迹',
    'nav.differences': '状态差异', 'sd.title': '与渠道的状态差异', 'sd.month': '月份', 'sd.by_channel': '按渠道（按类型堆叠）',
    'sd.carriers': '差异最多的承运商', 'sd.empty': '这个月没有发现状态差异',
    'sd.kind_paid_on_channel_only': '仅渠道已付款', 'sd.kind_shipped_on_channel_only': '仅渠道已发货',
    'sd.kind_not_shipped_on_channel': '已发货未回传渠道', 'sd.kind_closed_on_channel': '渠道已关闭',
    'sd.kind_delivered_by_carrier_only': '仅承运商已签收', 'sd.kind_problem_at_carrier': '承运商问题件/退件',
    'sd.kind_no_carrier_record': '承运商无运单记录', 'sd.kind_delivered_here_not_by_carrier': '已签收但承运商未签收',
    'nav.interventions': '人工干预', 'exc.assignee': '处理人', 'exc.due': '截止', 'exc.notes': '备注',
    'exc.overdue': '已超时', 'exc.escalated': '已升级', 'exc.take': '认领', 'exc.unassign': '放回',
    'exc.note': '写备注', 'exc.note_prompt': '备注内容', 'exc.filter_assignee': '处理人',
    'exc.mine': '我的', 'exc.unassigned': '未认领', 'exc.only_overdue': '只看超时', 'exc.sort_due': '按截止时间排序',
    'exc.work': '异常处理记录', 'exc.state_open': '处理中', 'exc.state_resolved': '已解决', 'exc.raised': '发生于',
    'iv.title': '人工干预看板', 'iv.days': '天数', 'iv.by_day': '每天的人工干预', 'iv.by_kind': '按类型',
    'iv.by_actor': '按操作者', 'iv.total': '合计', 'iv.kind_resolve': '手工解决异常', 'iv.kind_hold': '挂起',
    'iv.kind_approve': '放行', 'iv.kind_cancel': '取消', 'iv.kind_retry': '重试', 'iv.kind_switch_carrier': '换承运商',
    'iv.kind_edit': '改单', 'iv.kind_edit_approval': '改单审批', 'iv.kind_after_sale': '售后处理',
    'iv.kind_assign': '认领/分派', 'iv.kind_note': '备注', 'iv.empty': '这段时间没有人工干预',
    'bulk.approve': '批量放行', 'bulk.preview': '预览：以下订单将被放行或拒绝', 'bulk.confirm': '确认放行',
    'bulk.done': '批量操作完成', 'bulk.would_apply': '将放行', 'bulk.would_await_approval': '将等待审批',
    'bulk.refused': '不能执行', 'bulk.not_found': '未找到', 'bulk.done_row': '已完成', 'bulk.awaits_approval': '等待审批',
    'bulk.summary': '成功 {ok}，拒绝 {no}', 'bulk.cancel': '关闭',
    'merge.selected': '合并所选订单', 'merge.preview': '合并预览', 'merge.confirm': '确认合并',
    'merge.mergeable': '将合并为一个包裹', 'merge.refused': '不能合并', 'merge.none': '所选订单中不足两单可以合并',
    'nav.rules': '规则', 'rules.title': '规则集', 'rules.live': '生效中', 'rules.new': '新建草稿',
    'rules.name': '名称', 'rules.json': '规则（JSON，可从文件导入）', 'rules.save': '保存草稿',
    'rules.import': '从文件导入', 'rules.export': '导出为文件', 'rules.errors': '规则有误，未保存：',
    'rules.place': '位置', 'rules.condition': '条件', 'rules.action': '动作', 'rules.priority': '优先级',
    'rules.enabled': '启用', 'rules.submit': '提交审核', 'rules.approve': '审核通过', 'rules.publish': '发布',
    'rules.author': '作者', 'rules.approved_by': '审核人', 'rules.effective_at': '生效时间',
    'rules.copy': '以此为底新建草稿', 'rules.test': '用一个订单试算', 'rules.test_run': '试算',
    'rules.count': '规则数', 'rules.none': '还没有规则集', 'rules.saved': '草稿已保存',
    'rules.state_draft': '草稿', 'rules.state_submitted': '待审核', 'rules.state_approved': '已审核',
    'rules.state_published': '已发布', 'rules.live_none': '没有生效中的规则集',
    'rules.sandbox': '沙盘推演：用近期真实订单对比现行规则', 'rules.sandbox_run': '推演', 'rules.days': '天数',
    'sb.orders': '读取订单', 'sb.held_live': '现行规则挂起', 'sb.held_draft': '本规则集挂起',
    'sb.would_hold': '将新增挂起', 'sb.would_release': '将不再挂起', 'sb.hold_rule_changed': '挂起规则变化',
    'sb.carrier_changed': '承运商变化', 'sb.tags_changed': '标签变化', 'sb.deadline_changed': '发货时限变化',
    'sb.late_against_draft': '按本规则集超时', 'sb.late_against_live': '按现行规则超时',
    'sb.draft_errors': '规则无法求值', 'sb.carrier_mix': '承运商分布：现行 vs 本规则集', 'sb.sample': '样例订单',
    'sb.gifts_changed': '赠品变化', 'sb.gift_lines_live': '赠品行（现行）', 'sb.gift_lines_draft': '赠品行（本规则集）',
    'sb.warehouse_changed': '仓库路由变化', 'sb.warehouse_mix': '首选仓分布：现行 vs 本规则集',
    'sb.truncated': '订单过多，只推演了最早的部分', 'sb.export': '导出报告', 'sb.live': '现行', 'sb.draft': '本规则集',
    'sb.change': '变化',
    'merge.done': '已合并', 'merge.pick': '请先勾选至少两个订单', parcels: '包裹', parcel: '包裹号',
    shipment_group: '合并单', shipped_units: '已发', parcel_state_planned: '待发', parcel_state_waiting: '缺货等待',
    parcel_state_shipped: '已发出', 'merge.undo': '撤销合并', 'merge.undone': '已撤销合并',
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
    'ch.authorize': 'Authorize shop', 'ch.authorize_scope': 'Kuaishou permission groups (comma-separated, e.g. merchant_order,merchant_item)',
    'ch.authorize_service': 'Douyin service-market service id (service_id)', 'ch.authorize_opened': 'The authorization page opened in a new window; the shop\'s tokens are stored once the seller agrees',
    forbidden: 'Your role may not see this',
    'live.title': 'Live', 'live.throughput': 'Orders per minute', 'live.latency': 'HTTP latency (ms)',
    'live.routes': 'By route', route: 'Route', requests: 'Requests', p50: 'P50', p95: 'P95', p99: 'P99',
    'live.refresh': 'Refreshed every 5 s', orders_per_min: 'orders/min', error: 'Error',
    breaker_closed: 'closed', breaker_open: 'open', breaker_half_open: 'half open', unknown: 'unknown',
    token: 'Token', token_ok: 'valid', token_expiring: 'authorize soon', token_expired: 'to renew', token_reauthorize: 'authorize again',
    'nav.after_sales': 'After-sales', 'as.title': 'After-sales cases', 'as.order_cases': 'After-sales cases of this order',
    'as.empty': 'No after-sales cases', 'as.refund_line': 'Refund', 'as.return_line': 'Return & refund',
    'as.quantity': 'How many units?', 'as.reason': 'Why', case_id: 'Case', effect: 'Effect', amount: 'Amount',
    source: 'Source', 'as.state_filter': 'State', 'as.approve': 'Approve', 'as.refuse': 'Refuse',
    'as.receive': 'Receive + QC', 'as.refund': 'Refunded', 'as.close': 'Close',
    'as.qc_passed': 'Did QC pass? (OK = passed, Cancel = failed: into quarantine)', 'as.refuse_reason': 'Why refuse',
    'as.effect_prompt': 'The order moved on: approving now means {effect}. Approve anyway?',
    'nav.edits': 'Edit approvals', 'edit.address': 'Edit address', 'edit.submit': 'Submit edit',
    'edit.reason': 'Reason', province: 'Province', city: 'City', district: 'District', detail: 'Detail',
    'edit.applied': 'Edited', 'edit.pending': 'Submitted: waits for another person\'s approval',
    'edit.log': 'Change log', 'edits.title': 'Edits waiting for approval', 'edits.empty': 'No edits wait for approval',
    fields: 'Fields', requested_by: 'Requested by', approvals: 'Approvals', 'edit.approve': 'Approve',
    'edit.reject': 'Reject', 'edit.reject_reason': 'Why reject it?', 'edit.after': 'After',
    'edit.failed': 'Not applied', edit_state_pending: 'pending', edit_state_applied: 'applied',
    edit_state_rejected: 'rejected', edit_state_failed: 'failed',
    'nav.health': 'Health', 'hl.title': 'Order health', 'hl.dimension': 'Dimension', 'hl.days': 'Days', 'hl.compute': 'Compute today',
    'hl.dim_shop': 'Shop', 'hl.dim_channel': 'Channel', 'hl.dim_warehouse': 'Warehouse', 'hl.dim_carrier': 'Carrier', 'hl.dim_region': 'Region (province)',
    'hl.grades': 'Grades by day (click a day for its orders)', 'hl.trend': 'Trend', 'hl.empty': 'No health score computed in this range yet',
    'hl.grade': 'Grade', 'hl.live': 'Right now (orders paid in the window, refreshed every 5 s)', 'hl.window': 'Window', 'hl.live_empty': 'No order paid in the window', 'hl.orders_n': 'Orders', 'hl.score': 'Score', 'hl.components': 'Components (failing/judged)',
    'hl.orders': 'Orders behind the score', 'hl.failing': 'Fails', 'hl.no_orders': 'No failing order', 'hl.key': 'Key',
    'hl.c_on_time': 'On time', 'hl.c_exceptions': 'Exceptions', 'hl.c_exception_age': 'Exception age', 'hl.c_refunds': 'Refunds',
    'hl.c_sync_lag': 'Sync lag', 'hl.c_write_back': 'Write-back', 'hl.c_tracking': 'Tracking',
    'nav.differences': 'Status differences', 'sd.title': 'Status differences with the channels', 'sd.month': 'Month',
    'sd.by_channel': 'By channel (stacked by kind)', 'sd.carriers': 'Carriers with the most', 'sd.empty': 'No status difference found this month',
    'sd.kind_paid_on_channel_only': 'Paid only on the channel', 'sd.kind_shipped_on_channel_only': 'Shipped only on the channel',
    'sd.kind_not_shipped_on_channel': 'Shipped, not written back', 'sd.kind_closed_on_channel': 'Closed on the channel',
    'sd.kind_delivered_by_carrier_only': 'Delivered only by the carrier', 'sd.kind_problem_at_carrier': 'Problem at the carrier',
    'sd.kind_no_carrier_record': 'No record at the carrier', 'sd.kind_delivered_here_not_by_carrier': 'Delivered here, not by the carrier',
    'nav.interventions': 'Interventions', 'exc.assignee': 'Assignee', 'exc.due': 'Due', 'exc.notes': 'Notes',
    'exc.overdue': 'overdue', 'exc.escalated': 'escalated', 'exc.take': 'Take', 'exc.unassign': 'Release',
    'exc.note': 'Add note', 'exc.note_prompt': 'Note', 'exc.filter_assignee': 'Assignee',
    'exc.mine': 'Mine', 'exc.unassigned': 'Unassigned', 'exc.only_overdue': 'Overdue only', 'exc.sort_due': 'Sort by due time',
    'exc.work': 'Exception handling', 'exc.state_open': 'open', 'exc.state_resolved': 'resolved', 'exc.raised': 'Raised',
    'iv.title': 'Manual interventions', 'iv.days': 'Days', 'iv.by_day': 'Interventions per day', 'iv.by_kind': 'By kind',
    'iv.by_actor': 'By actor', 'iv.total': 'Total', 'iv.kind_resolve': 'Resolved by hand', 'iv.kind_hold': 'Hold',
    'iv.kind_approve': 'Approve', 'iv.kind_cancel': 'Cancel', 'iv.kind_retry': 'Retry', 'iv.kind_switch_carrier': 'Switch carrier',
    'iv.kind_edit': 'Edit', 'iv.kind_edit_approval': 'Edit approval', 'iv.kind_after_sale': 'After-sales step',
    'iv.kind_assign': 'Assign', 'iv.kind_note': 'Note', 'iv.empty': 'No interventions in this window',
    'bulk.approve': 'Bulk approve', 'bulk.preview': 'Preview: what approving would do to each order', 'bulk.confirm': 'Confirm approve',
    'bulk.done': 'Bulk action done', 'bulk.would_apply': 'would approve', 'bulk.would_await_approval': 'would wait for approval',
    'bulk.refused': 'refused', 'bulk.not_found': 'not found', 'bulk.done_row': 'done', 'bulk.awaits_approval': 'waits for approval',
    'bulk.summary': '{ok} succeeded, {no} refused', 'bulk.cancel': 'Close',
    'merge.selected': 'Merge selected orders', 'merge.preview': 'Merge preview', 'merge.confirm': 'Confirm merge',
    'merge.mergeable': 'Ship as one parcel', 'merge.refused': 'Cannot merge', 'merge.none': 'Fewer than two of the selected orders can merge',
    'nav.rules': 'Rules', 'rules.title': 'Rule sets', 'rules.live': 'live', 'rules.new': 'New draft',
    'rules.name': 'Name', 'rules.json': 'Rules (JSON; or import a file)', 'rules.save': 'Save draft',
    'rules.import': 'Import a file', 'rules.export': 'Export as a file', 'rules.errors': 'Refused, not saved:',
    'rules.place': 'Place', 'rules.condition': 'Condition', 'rules.action': 'Action', 'rules.priority': 'Priority',
    'rules.enabled': 'Enabled', 'rules.submit': 'Submit for approval', 'rules.approve': 'Approve', 'rules.publish': 'Publish',
    'rules.author': 'Author', 'rules.approved_by': 'Approved by', 'rules.effective_at': 'Effective at',
    'rules.copy': 'New draft from this set', 'rules.test': 'Test against one order', 'rules.test_run': 'Test',
    'rules.count': 'Rules', 'rules.none': 'No rule sets yet', 'rules.saved': 'Draft saved',
    'rules.state_draft': 'draft', 'rules.state_submitted': 'submitted', 'rules.state_approved': 'approved',
    'rules.state_published': 'published', 'rules.live_none': 'No rule set is live',
    'rules.sandbox': 'Sandbox: recent real orders against the live set', 'rules.sandbox_run': 'Run', 'rules.days': 'Days',
    'sb.orders': 'Orders read', 'sb.held_live': 'Held by the live set', 'sb.held_draft': 'Held by this set',
    'sb.would_hold': 'Would be held', 'sb.would_release': 'Would be released', 'sb.hold_rule_changed': 'Held by another rule',
    'sb.carrier_changed': 'Carrier changes', 'sb.tags_changed': 'Tags change', 'sb.deadline_changed': 'Ship-by changes',
    'sb.late_against_draft': 'Late against this set', 'sb.late_against_live': 'Late against the live set',
    'sb.draft_errors': 'Could not evaluate', 'sb.carrier_mix': 'Carrier mix: live vs this set', 'sb.sample': 'Sample orders',
    'sb.gifts_changed': 'Gift changes', 'sb.gift_lines_live': 'Gift lines (live)', 'sb.gift_lines_draft': 'Gift lines (this set)',
    'sb.warehouse_changed': 'Warehouse route changes', 'sb.warehouse_mix': 'First-choice warehouse: live vs this set',
    'sb.truncated': 'Too many orders: the oldest were read', 'sb.export': 'Export the report', 'sb.live': 'live', 'sb.draft': 'this set',
    'sb.change': 'Change',
    'merge.done': 'Merged', 'merge.pick': 'Tick at least two orders first', parcels: 'Parcels', parcel: 'Parcel',
    shipment_group: 'Merge', shipped_units: 'Shipped', parcel_state_planned: 'to ship', parcel_state_waiting: 'waits for stock',
    parcel_state_shipped: 'shipped', 'merge.undo': 'Undo merge', 'merge.undone': 'Merge undone',
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
  after_sale: '售后', unknown_channel_status: '未知渠道状态', ship_by_at_risk: '临近发货时限',
  status_mismatch: '与渠道状态不符', carrier_status_mismatch: '与承运商状态不符',
};
const CASE_STATES = ['requested', 'approved', 'refused', 'goods_returning', 'received', 'qc_passed',
  'qc_failed', 'refunded', 'closed'];
const CASE_STATE_ZH = {
  requested: '待审核', approved: '已同意', refused: '已拒绝', goods_returning: '退货中', received: '已收货',
  qc_passed: '质检通过', qc_failed: '质检不通过', refunded: '已退款', closed: '已关闭',
};
const RED_AFTER_SECONDS = 30 * 60;
const LIVE_REFRESH_MS = 5000;

let lang = localStorage.getItem('orderhub.lang') || 'zh';
let me = null;
let timers = [];
let charts = [];

const t = (k) => (I18N[lang][k] ?? I18N.en[k] ?? k);
const statusLabel = (s) => (lang === 'zh' ? (STATUS_ZH[s] || s) : s.replace(/_/g, ' '));
const caseStateLabel = (s) => (lang === 'zh' ? (CASE_STATE_ZH[s] || s) : s.replace(/_/g, ' '));
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
    this.body = body;
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
    edits: editsPage, inventory: inventoryPage, channels: channelsPage, live: livePage, 'after-sales': afterSalesPage,
    interventions: interventionsPage, rules: rulesPage, differences: differencesPage, health: healthPage };
  (pages[page] || ordersPage)(view, arg ? decodeURIComponent(arg) : undefined)
    .catch((e) => view.append(h('p', { class: 'error', testid: 'page-error' }, e.message)));
}

// ---- orders --------------------------------------------------------------------------------

let lastSearch = {};
// Each search run takes a number; an answer that arrives after a later run began (a reset's
// search, then the operator's own) is dropped, so the table always shows the latest search.
let searchRun = 0;

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
    const mine = ++searchRun;
    results.replaceChildren(h('p', { class: 'muted' }, '…'));
    let page;
    try {
      page = await api(`/v1/orders?${params}`);
    } catch (e) {
      if (mine === searchRun) results.replaceChildren(h('p', { class: 'error', testid: 'search-error' }, e.message));
      return;
    }
    if (mine !== searchRun) return;
    const combine = !!me.orders_combine;
    const pick = (o) => h('td', { onclick: (ev) => ev.stopPropagation() },
      h('input', { type: 'checkbox', testid: 'order-pick', 'data-order-id': o.order_id }));
    const rows = page.orders.map((o) => h('tr', {
      class: 'clickable', testid: 'order-row', 'data-order-id': o.order_id,
      onclick: () => { location.hash = `#/orders/${o.order_id}`; },
    },
    combine ? pick(o) : null,
    h('td', { class: 'mono' }, h('a', { href: `#/orders/${o.order_id}`, testid: 'order-link' }, o.order_id)),
    h('td', {}, o.external_order_id), h('td', {}, o.channel), h('td', {}, o.shop_id),
    h('td', { testid: 'order-status' }, statusLabel(o.status)),
    h('td', {}, o.buyer && (o.buyer.nick || o.buyer.id) || ''),
    h('td', {}, o.exceptions.map((x) => h('span', { class: 'badge exc' }, kindLabel(x)))),
    h('td', {}, fmtTime(o.created_at))));
    const table = h('table', { testid: 'orders-table' },
      h('thead', {}, h('tr', {}, combine ? h('th', {}, '') : null, ['order_id', 'external_order_id', 'channel', 'shop', 'status', 'buyer',
        'exceptions', 'created_at'].map((k) => h('th', {}, t(k))))),
      h('tbody', {}, rows));
    const mergeBox = h('div', { testid: 'merge-box' });
    const mergeButton = combine ? h('button', { type: 'button', testid: 'merge-selected',
      onclick: acting(() => mergePreview(table, mergeBox)) }, t('merge.selected')) : null;
    const pager = h('div', { class: 'pager' },
      cursor ? h('button', { type: 'button', testid: 'first-page', onclick: () => run(undefined) }, t('first')) : null,
      page.next_cursor ? h('button', { type: 'button', testid: 'next-page', onclick: () => run(page.next_cursor) }, t('next')) : null,
      h('span', { class: 'muted' }, `${t('results')}: ${page.orders.length}${page.next_cursor ? '+' : ''}`));
    results.replaceChildren(page.orders.length ? table : h('p', { class: 'muted', testid: 'no-results' }, t('no_results')), pager,
      page.orders.length ? bulkApproveCard(searchObject()) : null,
      page.orders.length && mergeButton ? h('p', {}, mergeButton) : null, mergeBox);
  };
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    lastSearch = Object.fromEntries(new FormData(form).entries());
    run(undefined);
  });
  run(cursorStack[0]);
}

// ---- merge and parcels -------------------------------------------------------------------------

// A click handler that tells the operator when the hub refuses (409 merge_refused, …).
const acting = (fn) => async () => { try { await fn(); } catch (e) { toast(e.message, true); } };

// Shows what merging the ticked orders would do (POST /v1/merges/preview): the orders that ship as
// one parcel and, for each other, why not; a confirm button merges them (POST /v1/merges).
async function mergePreview(table, box) {
  const ids = [...table.querySelectorAll('[data-testid="order-pick"]:checked')].map((c) => c.dataset.orderId);
  if (ids.length < 2) { toast(t('merge.pick'), true); return; }
  const p = await api('/v1/merges/preview', { method: 'POST', body: { order_ids: ids } });
  const refused = p.refused.map((r) => h('li', { testid: 'merge-refused' },
    h('span', { class: 'mono' }, r.order_id), ` — ${r.code}: ${r.message}`));
  const confirm = p.mergeable.length >= 2 ? h('button', { type: 'button', class: 'primary', testid: 'merge-confirm',
    onclick: acting(async () => {
      const m = await api('/v1/merges', { method: 'POST', body: { order_ids: p.mergeable } });
      toast(t('merge.done'));
      box.replaceChildren(h('p', { testid: 'merge-result', 'data-group-id': m.group.group_id },
        `${t('merge.done')}: ${m.group.group_id} (${m.group.members.length})`));
    }) }, t('merge.confirm')) : h('p', { class: 'muted' }, t('merge.none'));
  box.replaceChildren(h('div', { class: 'card', testid: 'merge-preview' },
    h('h2', {}, t('merge.preview')),
    h('p', {}, t('merge.mergeable')),
    h('ul', {}, p.mergeable.map((id) => h('li', { testid: 'merge-mergeable', class: 'mono' }, id))),
    refused.length ? [h('p', {}, t('merge.refused')), h('ul', {}, refused)] : null,
    confirm));
}

// An order's parcels (split or merged): state, lines, warehouse, waybill; the merge it ships in,
// with an undo for keys that may (before release).
function parcelsCard(o) {
  if (!o.parcels || !o.parcels.length) return null;
  const lines = (p) => p.lines.map((l) => `#${l.line_id}×${l.quantity}`).join(' ');
  const undo = o.shipment_group && me.orders_combine && ['paid', 'on_hold', 'allocated'].includes(o.status)
    ? h('button', { type: 'button', testid: 'merge-undo', onclick: acting(async () => {
      await api(`/v1/merges/${o.shipment_group}/undo`, { method: 'POST', body: {} });
      toast(t('merge.undone'));
      route();
    }) }, t('merge.undo')) : null;
  return h('div', { class: 'card', testid: 'parcels-card' },
    h('h2', {}, t('parcels')),
    o.shipment_group ? h('p', {}, `${t('shipment_group')}: `,
      h('span', { class: 'mono', testid: 'shipment-group' }, o.shipment_group), ' ', undo) : null,
    h('table', {},
      h('thead', {}, h('tr', {}, ['parcel', 'state', 'lines', 'warehouse', 'carrier', 'tracking_no']
        .map((k) => h('th', {}, t(k))))),
      h('tbody', {}, o.parcels.map((p) => h('tr', { testid: 'parcel-row', 'data-parcel-id': p.parcel_id },
        h('td', { class: 'mono' }, p.parcel_id), h('td', { testid: 'parcel-state' }, t(`parcel_state_${p.state}`)),
        h('td', {}, lines(p)), h('td', {}, p.warehouse_id || ''), h('td', {}, p.carrier || ''),
        h('td', { class: 'mono' }, p.tracking_no || ''))))));
}

async function orderDetail(view, id) {
  const [o, tl, log] = await Promise.all([api(`/v1/orders/${encodeURIComponent(id)}`),
    api(`/v1/orders/${encodeURIComponent(id)}/timeline`),
    api(`/v1/orders/${encodeURIComponent(id)}/edits?limit=200`)]);
  const r = o.receiver || {};
  const maskNote = me.pii_read ? null : h('span', { class: 'muted', testid: 'pii-masked' }, ` (${t('masked')})`);
  const kv = (pairs) => h('dl', { class: 'kv' }, pairs.map(([k, v, tid]) => [h('dt', {}, t(k)), h('dd', { testid: tid }, v ?? '')]));
  const f = o.fulfillment || {};
  const a = o.amounts || {};
  const actions = detailActions(o, () => route());
  // Cards an order has no use for are null: left out (append would write "null").
  view.append(...[
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
          .map((k) => h('th', { class: k === 'title' || k === 'sku' ? '' : 'num' }, t(k))), h('th', {}, ''))),
        h('tbody', {}, (o.lines || []).map((l) => h('tr', { testid: 'line-row', 'data-line-id': l.line_id },
          h('td', { class: 'mono' }, l.sku), h('td', {}, l.title), h('td', { class: 'num', testid: 'line-quantity' },
            (l.to_ship == null ? `${l.quantity}` : `${l.quantity} → ${l.to_ship}`)
              + (l.shipped == null ? '' : ` (${t('shipped_units')} ${l.shipped})`)),
          h('td', { class: 'num' }, l.unit_price), h('td', { class: 'num' }, l.discount),
          h('td', { class: 'num' }, l.paid_amount), h('td', {}, refundLineButton(o, l))))))),
    parcelsCard(o),
    await orderCasesCard(o.order_id),
    await orderExceptionsCard(o.order_id),
    editAddressCard(o),
    editLogCard(log),
    timelineCard(tl)].filter((c) => c != null));
}

// ---- after-sales -------------------------------------------------------------------------------

const SHIPPED = ['shipped', 'in_transit', 'delivered', 'completed'];

// Opens a case on one order line: refund only before shipment, return and refund after delivery
// or pickup (the hub decides what approving does; the case shows it as its effect).
function refundLineButton(o, l) {
  if (!(me.after_sales || []).includes('open') || ['pending_payment', 'cancelled'].includes(o.status)) return null;
  const kind = ['in_transit', 'delivered', 'completed'].includes(o.status) ? 'return_and_refund' : 'refund_only';
  return h('button', {
    type: 'button', class: 'danger', testid: 'refund-line', 'data-line-id': l.line_id,
    onclick: async (ev) => {
      const q = prompt(t('as.quantity'), String(l.quantity));
      if (q == null) return;
      const reason = prompt(t('as.reason'), 'console');
      if (reason == null) return;
      ev.target.disabled = true;
      try {
        await api(`/v1/orders/${o.order_id}/after-sales`, { method: 'POST', idempotent: true,
          body: { kind, lines: [{ line_id: l.line_id, quantity: Number(q) }], reason } });
        toast(`${t(kind === 'refund_only' ? 'as.refund_line' : 'as.return_line')}: ${t('action.done')}`);
        route();
      } catch (e) {
        ev.target.disabled = false;
        toast(e.message, true);
      }
    },
  }, t(kind === 'refund_only' ? 'as.refund_line' : 'as.return_line'));
}

// What may be done to a case in its state (the hub's table decides; this only offers the buttons).
function caseActions(c) {
  const next = {
    requested: ['approve', 'refuse'], approved: c.kind === 'refund_only' ? ['refund'] : [],
    goods_returning: ['receive'], qc_passed: ['refund'], qc_failed: ['refund', 'close'], refunded: ['close'],
  }[c.state] || [];
  const mine = new Set(me.after_sales || []);
  return next.filter((a) => mine.has(a));
}

function caseButton(c, action, after) {
  return h('button', {
    type: 'button', class: action === 'refuse' ? 'danger' : 'primary', testid: `case-${action}`,
    'data-case-id': c.case_id,
    onclick: async (ev) => {
      const body = {};
      if (action === 'refuse') {
        const reason = prompt(t('as.refuse_reason'), 'console');
        if (reason == null) return;
        body.reason = reason;
      } else if (action === 'receive') {
        body.qc_passed = confirm(t('as.qc_passed'));
      }
      ev.target.disabled = true;
      const post = (b) => api(`/v1/after-sales/${c.case_id}/${action}`, { method: 'POST', body: b, idempotent: true });
      try {
        try {
          await post(body);
        } catch (e) {
          // The order moved on since the case was opened: say what approving means now.
          const m = action === 'approve' && e.code === 'after_sale_effect_changed' && /approving would (\w+)/.exec(e.message);
          if (!m || !confirm(t('as.effect_prompt').replace('{effect}', m[1]))) throw e;
          await post({ effect: m[1] });
        }
        toast(`${t(`as.${action}`)}: ${t('action.done')}`);
        after();
      } catch (e) {
        ev.target.disabled = false;
        toast(e.message, true);
      }
    },
  }, t(`as.${action}`));
}

function casesTable(cases, after, withOrder) {
  const cols = ['case_id', ...(withOrder ? ['order_id'] : []), 'kind', 'state', 'effect', 'lines', 'amount',
    'source', 'created_at', 'exc.actions'];
  return h('table', { testid: 'cases-table' },
    h('thead', {}, h('tr', {}, cols.map((k) => h('th', { class: k === 'amount' ? 'num' : '' }, t(k))))),
    h('tbody', {}, cases.map((c) => h('tr', { testid: 'case-row', 'data-case-id': c.case_id, 'data-state': c.state },
      h('td', { class: 'mono' }, c.case_id.slice(-12)),
      withOrder ? h('td', { class: 'mono' }, h('a', { href: `#/orders/${c.order_id}`, testid: 'case-order-link' }, c.order_id)) : null,
      h('td', {}, c.kind), h('td', { testid: 'case-state' }, caseStateLabel(c.state)), h('td', {}, c.effect || ''),
      h('td', {}, c.lines.map((l) => `#${l.line_id} ${l.sku} ×${l.quantity}`).join(', ')),
      h('td', { class: 'num' }, c.amount), h('td', {}, c.source), h('td', {}, fmtTime(c.created_at)),
      h('td', {}, caseActions(c).map((a) => caseButton(c, a, after)))))));
}

async function orderCasesCard(orderId) {
  const page = await api(`/v1/after-sales?order_id=${encodeURIComponent(orderId)}&limit=200`);
  return h('div', { class: 'card', testid: 'order-cases' }, h('h2', {}, t('as.order_cases')),
    page.cases.length ? casesTable(page.cases, () => route(), false) : h('p', { class: 'muted' }, t('as.empty')));
}

let caseFilter = '';

async function afterSalesPage(view) {
  const sel = h('select', { testid: 'cases-state', onchange: (ev) => { caseFilter = ev.target.value; route(); } },
    h('option', { value: '' }, t('any')),
    CASE_STATES.map((s) => h('option', { value: s, selected: caseFilter === s }, caseStateLabel(s))));
  const params = new URLSearchParams({ limit: '200' });
  if (caseFilter) params.set('state', caseFilter);
  const page = await api(`/v1/after-sales?${params}`);
  view.append(h('h2', {}, t('as.title')), h('p', { class: 'card' }, h('label', {}, t('as.state_filter'), ' ', sel)),
    h('div', { class: 'card', testid: 'after-sales' },
      page.cases.length ? casesTable(page.cases, () => route(), true) : h('p', { class: 'muted', testid: 'cases-empty' }, t('as.empty'))));
}

// ---- order edits (issue 21) ------------------------------------------------------------------

const EDITABLE = ['pending_payment', 'paid', 'on_hold', 'allocated'];

// The receiver form: the whole new address and a reason; applied at once or sent for approval.
function editAddressCard(o) {
  if (!me.orders_edit || !EDITABLE.includes(o.status)) return null;
  const r = o.receiver || {};
  // A masked value is never sent back as the new one: those fields start empty.
  const clear = (v) => (r.masked ? '' : v || '');
  const inp = (name, value, required = true) => h('label', {}, t(name),
    h('input', { name, testid: `edit-${name}`, value: value || '', required }));
  const form = h('form', { class: 'search', testid: 'edit-address-form', hidden: true },
    inp('name', clear(r.name)), inp('phone', clear(r.phone)), inp('province', r.province), inp('city', r.city),
    inp('district', r.district, false), inp('detail', clear(r.detail)),
    inp('edit.reason', '', true),
    h('button', { type: 'submit', class: 'primary', testid: 'edit-submit' }, t('edit.submit')));
  form.querySelector('[name="edit.reason"]').dataset.testid = 'edit-reason';
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const v = Object.fromEntries(new FormData(form).entries());
    const receiver = { name: v.name, phone: v.phone, province: v.province, city: v.city, detail: v.detail };
    if (v.district) receiver.district = v.district;
    const btn = form.querySelector('button[type=submit]');
    btn.disabled = true;
    try {
      const res = await api(`/v1/orders/${o.order_id}/edits`, { method: 'POST', idempotent: true,
        body: { reason: v['edit.reason'], receiver } });
      toast(res.edit.state === 'pending' ? t('edit.pending') : t('edit.applied'));
      route();
    } catch (e) {
      btn.disabled = false;
      toast(e.message, true);
    }
  });
  const open = h('button', { type: 'button', testid: 'edit-address', onclick: () => { form.hidden = !form.hidden; } },
    t('edit.address'));
  return h('div', { class: 'card', testid: 'edit-address-card' }, h('h2', {}, t('edit.address')), open, form);
}

const editState = (s) => t(`edit_state_${s}`);

// What an edit changes, in one line: each field, and the receiver's new address as shown to the key.
function changeSummary(e) {
  return e.changes.map((c) => {
    if (c.field === 'receiver' && c.after) {
      const a = c.after;
      return `${t('receiver')}: ${[a.name, a.phone, a.province, a.city, a.district, a.detail].filter(Boolean).join(' ')}`;
    }
    if (c.field === 'lines' || c.field === 'amounts') return t(c.field === 'lines' ? 'lines' : 'amounts');
    return `${c.field}: ${c.after == null ? '∅' : JSON.stringify(c.after)}`;
  }).join('; ');
}

function editLogCard(log) {
  if (!log.edits.length) return null;
  return h('div', { class: 'card', testid: 'edit-log' }, h('h2', {}, t('edit.log')),
    h('table', {},
      h('thead', {}, h('tr', {}, ['at', 'state', 'fields', 'reason', 'requested_by', 'approvals']
        .map((k) => h('th', {}, t(k))))),
      h('tbody', {}, log.edits.slice().reverse().map((e) => h('tr', { testid: 'edit-log-row', 'data-edit-id': e.edit_id,
        'data-state': e.state },
      h('td', {}, fmtTime(e.updated_at)),
      h('td', { testid: 'edit-log-state' }, editState(e.state), e.failure ? ` (${e.failure})` : ''),
      h('td', {}, changeSummary(e)), h('td', {}, e.reason), h('td', { class: 'mono' }, e.requested_by.actor),
      h('td', { class: 'mono' }, e.approvals.map((a) => a.actor).join(', ')))))));
}

// The approvers' queue: pending edits with approve and reject for keys that may decide them.
async function editsPage(view) {
  const page = await api('/v1/edits?state=pending&limit=200');
  view.append(h('h2', {}, t('edits.title')));
  if (!page.edits.length) {
    view.append(h('p', { class: 'card muted', testid: 'edits-empty' }, t('edits.empty')));
    return;
  }
  const decide = (e, how) => async (ev) => {
    const body = {};
    if (how === 'reject') {
      const reason = prompt(t('edit.reject_reason'), 'console');
      if (reason == null) return;
      body.reason = reason;
    }
    ev.target.disabled = true;
    try {
      const r = await api(`/v1/edits/${e.edit_id}/${how}`, { method: 'POST', body, idempotent: true });
      toast(`${t(`edit.${how}`)}: ${editState(r.edit.state)}`);
    } catch (err) {
      toast(err.message, true);
    }
    route();
  };
  view.append(h('div', { class: 'card' }, h('table', { testid: 'edits-table' },
    h('thead', {}, h('tr', {}, ['order_id', 'at', 'fields', 'reason', 'requested_by', 'approvals', 'exc.actions']
      .map((k) => h('th', {}, t(k))))),
    h('tbody', {}, page.edits.map((e) => h('tr', { testid: 'edit-row', 'data-edit-id': e.edit_id, 'data-order-id': e.order_id },
      h('td', { class: 'mono' }, h('a', { href: `#/orders/${e.order_id}`, testid: 'edit-order-link' }, e.order_id)),
      h('td', {}, fmtTime(e.created_at)), h('td', { testid: 'edit-changes' }, changeSummary(e)), h('td', {}, e.reason),
      h('td', { class: 'mono' }, e.requested_by.actor),
      h('td', {}, `${e.approvals.length}/${e.approvals_required}`),
      h('td', {}, me.edits_approve ? [
        h('button', { type: 'button', class: 'primary', testid: 'edit-approve', onclick: decide(e, 'approve') }, t('edit.approve')),
        h('button', { type: 'button', class: 'danger', testid: 'edit-reject', onclick: decide(e, 'reject') }, t('edit.reject')),
      ] : null)))))));
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

// The board's filters, kept while the operator moves between pages.
let excFilter = { assignee: '', overdue: false, sort: '' };

async function exceptionsPage(view) {
  const params = new URLSearchParams({ limit: '500' });
  if (excFilter.assignee) params.set('assignee', excFilter.assignee);
  if (excFilter.overdue) params.set('overdue', 'true');
  if (excFilter.sort) params.set('sort', excFilter.sort);
  const board = await api(`/v1/exceptions?${params}`);
  const reload = () => route();
  const chips = h('div', { class: 'chips', testid: 'exception-counts' },
    Object.entries(board.counts).map(([k, n]) => h('span', { class: 'chip', testid: `exception-count-${k}` }, kindLabel(k), h('b', {}, n))));
  const assigneeSel = h('select', { testid: 'exc-filter-assignee',
    onchange: (ev) => { excFilter.assignee = ev.target.value; reload(); } },
  [['', t('any')], ['me', t('exc.mine')], ['unassigned', t('exc.unassigned')]]
    .map(([v, label]) => h('option', { value: v, selected: excFilter.assignee === v }, label)));
  const overdue = h('input', { type: 'checkbox', testid: 'exc-filter-overdue', checked: excFilter.overdue,
    onchange: (ev) => { excFilter.overdue = ev.target.checked; reload(); } });
  const byDue = h('input', { type: 'checkbox', testid: 'exc-sort-due', checked: excFilter.sort === 'due',
    onchange: (ev) => { excFilter.sort = ev.target.checked ? 'due' : ''; reload(); } });
  const filters = h('div', { class: 'search card', testid: 'exc-filters' },
    h('label', {}, t('exc.filter_assignee'), assigneeSel),
    h('label', {}, h('span', {}, overdue, ' ', t('exc.only_overdue'))),
    h('label', {}, h('span', {}, byDue, ' ', t('exc.sort_due'))));
  view.append(h('h2', {}, t('exc.title')), h('p', { class: 'muted' }, t('exc.legend')), chips, filters);
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
        h('thead', {}, h('tr', {}, ['order_id', 'external_order_id', 'shop', 'status', 'exc.since', 'exc.age', 'exc.due',
          'exc.assignee', 'exc.notes', 'exc.actions'].map((k) => h('th', {}, t(k))))),
        h('tbody', {}, list.map((e) => h('tr', {
          class: e.overdue || (e.age_seconds ?? 0) > RED_AFTER_SECONDS ? 'age-red' : 'age-yellow',
          testid: 'exception-row', 'data-order-id': e.order_id, 'data-kind': e.kind,
        },
        h('td', { class: 'mono' }, h('a', { href: `#/orders/${e.order_id}`, testid: 'exception-order-link' }, e.order_id)),
        h('td', {}, e.external_order_id), h('td', {}, e.shop_id),
        h('td', {}, statusLabel(e.status)), h('td', {}, fmtTime(e.since)),
        h('td', { testid: 'exception-age' }, fmtMs((e.age_seconds ?? 0) * 1000)),
        h('td', { testid: 'exception-due' }, fmtTime(e.due_at),
          e.overdue ? h('span', { class: 'badge exc', testid: 'exception-overdue' }, t('exc.overdue')) : null,
          e.escalated_at ? h('span', { class: 'badge exc', testid: 'exception-escalated' }, t('exc.escalated')) : null),
        h('td', { testid: 'exception-assignee' }, e.assignee_name || '—'),
        h('td', { class: 'num', testid: 'exception-notes' }, e.notes_count),
        h('td', {}, e.actions.map((a) => actionButton(e.order_id, a, reload)), workButtons(e, reload))))))));
  }
}

// Take, release and annotate an exception (keys with exceptions_work).
function workButtons(e, after) {
  if (!me.exceptions_work) return null;
  const base = `/v1/orders/${e.order_id}/exceptions/${e.kind}`;
  const call = (path, body, done) => async (ev) => {
    ev.target.disabled = true;
    try {
      await api(`${base}/${path}`, { method: 'POST', body, idempotent: true });
      toast(`${done}: ${t('action.done')}`);
      after();
    } catch (err) {
      ev.target.disabled = false;
      toast(err.message, true);
    }
  };
  const mine = e.assignee === me.key_id;
  return [
    mine ? null : h('button', { type: 'button', testid: 'exc-take',
      onclick: call('assign', e.assignee ? { assignee: 'me', replace: e.assignee } : { assignee: 'me' }, t('exc.take')) }, t('exc.take')),
    e.assignee ? h('button', { type: 'button', testid: 'exc-unassign', onclick: call('unassign', {}, t('exc.unassign')) }, t('exc.unassign')) : null,
    h('button', { type: 'button', testid: 'exc-note', onclick: async (ev) => {
      const text = prompt(t('exc.note_prompt'), '');
      if (text == null || !text.trim()) return;
      await call('notes', { text }, t('exc.note'))(ev);
    } }, t('exc.note')),
  ];
}

// An order's exceptions as work: state, due time, assignee and the notes written on them.
async function orderExceptionsCard(orderId) {
  const w = await api(`/v1/orders/${encodeURIComponent(orderId)}/exceptions`);
  if (!w.exceptions.length) return null;
  return h('div', { class: 'card', testid: 'order-exceptions' }, h('h2', {}, t('exc.work')),
    h('table', {},
      h('thead', {}, h('tr', {}, ['kind', 'state', 'exc.raised', 'exc.due', 'exc.assignee', 'exc.notes']
        .map((k) => h('th', {}, t(k))))),
      h('tbody', {}, w.exceptions.map((x) => h('tr', { testid: 'order-exception', 'data-kind': x.kind },
        h('td', {}, kindLabel(x.kind)), h('td', {}, t(`exc.state_${x.state}`)),
        h('td', {}, fmtTime(x.raised_at)),
        h('td', {}, fmtTime(x.due_at), x.overdue ? h('span', { class: 'badge exc' }, t('exc.overdue')) : null),
        h('td', {}, x.assignee_name || '—'),
        h('td', {}, (x.notes || []).map((n) => h('div', { testid: 'exception-note' },
          h('span', { class: 'muted' }, `${fmtTime(n.at)} ${n.actor}: `), n.text))))))));
}

// ---- bulk actions ------------------------------------------------------------------------------

// The order search as it stands, as the bulk route takes it (the filters of GET /v1/orders).
function searchObject() {
  const out = {};
  for (const k of ['q', 'external_order_id', 'buyer', 'status', 'channel', 'shop', 'exception']) {
    if (lastSearch[k] && lastSearch[k].trim()) out[k] = lastSearch[k].trim();
  }
  const from = localToIso(lastSearch.created_from);
  const to = localToIso(lastSearch.created_to);
  if (from) out.created_from = from;
  if (to) out.created_to = to;
  return out;
}

function bulkTable(answer) {
  return h('table', { testid: 'bulk-table' },
    h('thead', {}, h('tr', {}, ['order_id', 'status', 'outcome', 'error'].map((k) => h('th', {}, t(k))))),
    h('tbody', {}, answer.results.map((r) => h('tr', { testid: 'bulk-row', 'data-order-id': r.order_id, 'data-outcome': r.outcome },
      h('td', { class: 'mono' }, r.order_id), h('td', {}, r.status ? statusLabel(r.status) : ''),
      h('td', { testid: 'bulk-outcome' }, t(`bulk.${r.outcome === 'done' ? 'done_row' : r.outcome}`)),
      h('td', { class: 'muted' }, r.error ? `${r.error.code}: ${r.error.message}` : '')))));
}

// "Bulk approve" on a search result: the preview first (nothing written), then the run on confirm.
function bulkApproveCard(search) {
  if (!me.transitions.includes('approve')) return null;
  const out = h('div', { testid: 'bulk-result' });
  const summary = (a) => t('bulk.summary').replace('{ok}', a.succeeded).replace('{no}', a.refused);
  const button = h('button', { type: 'button', class: 'primary', testid: 'bulk-approve', onclick: async () => {
    button.disabled = true;
    try {
      const preview = await api('/v1/orders/bulk', { method: 'POST', body: { action: 'approve', search, preview: true } });
      const confirm = h('button', { type: 'button', class: 'primary', testid: 'bulk-confirm', onclick: async () => {
        confirm.disabled = true;
        try {
          const done = await api('/v1/orders/bulk', { method: 'POST', body: { action: 'approve', search }, idempotent: true });
          out.replaceChildren(h('h2', {}, t('bulk.done')), h('p', { testid: 'bulk-summary' }, summary(done)), bulkTable(done));
          toast(`${t('bulk.done')}: ${summary(done)}`);
        } catch (e) {
          confirm.disabled = false;
          toast(e.message, true);
        }
      } }, t('bulk.confirm'));
      out.replaceChildren(h('h2', {}, t('bulk.preview')), h('p', { testid: 'bulk-preview-summary' }, summary(preview)),
        bulkTable(preview), h('p', {}, preview.succeeded ? confirm : null,
          h('button', { type: 'button', testid: 'bulk-close', onclick: () => { out.replaceChildren(); button.disabled = false; } }, t('bulk.cancel'))));
    } catch (e) {
      button.disabled = false;
      toast(e.message, true);
    }
  } }, t('bulk.approve'));
  return h('div', { class: 'bulk', testid: 'bulk' }, h('p', {}, button), out);
}

// ---- interventions ------------------------------------------------------------------------------

let ivDays = 30;

// A stacked bar chart of interventions per day by kind, drawn as plain SVG.
function interventionChart(days, kinds) {
  const NS = 'http://www.w3.org/2000/svg';
  const el = (tag, attrs, text) => {
    const n = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    if (text != null) n.textContent = String(text);
    return n;
  };
  const colours = ['#1f4e79', '#2e7d32', '#c62828', '#e0b000', '#6a1b9a', '#00838f', '#ef6c00', '#5d4037',
    '#3949ab', '#9e9d24', '#ad1457'];
  const W = 900; const H = 260; const left = 36; const bottom = 40; const top = 10;
  const max = Math.max(1, ...days.map((d) => d.total));
  const step = (W - left) / Math.max(1, days.length);
  const bar = Math.max(2, step * 0.7);
  const svg = el('svg', { viewBox: `0 0 ${W} ${H + 30}`, width: '100%', role: 'img', 'data-testid': 'interventions-chart' });
  svg.append(el('line', { x1: left, y1: H - bottom, x2: W, y2: H - bottom, stroke: '#dde3ea' }));
  svg.append(el('text', { x: 2, y: top + 10, 'font-size': 11, fill: '#6b778a' }, max));
  svg.append(el('text', { x: 2, y: H - bottom, 'font-size': 11, fill: '#6b778a' }, 0));
  days.forEach((d, i) => {
    let y = H - bottom;
    const x = left + i * step + (step - bar) / 2;
    kinds.forEach((k, ki) => {
      const n = d.by_kind[k] || 0;
      if (!n) return;
      const hgt = (n / max) * (H - bottom - top);
      y -= hgt;
      const r = el('rect', { x, y, width: bar, height: hgt, fill: colours[ki % colours.length], 'data-kind': k });
      r.append(el('title', {}, `${d.day} ${t(`iv.kind_${k}`)}: ${n}`));
      svg.append(r);
    });
    if (days.length <= 31 && (i % Math.ceil(days.length / 10) === 0 || i === days.length - 1)) {
      svg.append(el('text', { x: x + bar / 2, y: H - bottom + 14, 'font-size': 10, 'text-anchor': 'middle', fill: '#6b778a' }, d.day.slice(5)));
    }
  });
  kinds.forEach((k, ki) => {
    const x = left + (ki % 6) * 140; const y = H + (ki < 6 ? 0 : 16);
    svg.append(el('rect', { x, y: y - 9, width: 10, height: 10, fill: colours[ki % colours.length] }));
    svg.append(el('text', { x: x + 14, y, 'font-size': 11, fill: '#1d2633' }, t(`iv.kind_${k}`)));
  });
  return svg;
}

async function interventionsPage(view) {
  if (!me.interventions) {
    view.append(h('p', { class: 'card muted', testid: 'interventions-forbidden' }, t('forbidden')));
    return;
  }
  const offset = -new Date().getTimezoneOffset();
  const d = await api(`/v1/interventions?days=${ivDays}&tz_offset_minutes=${offset}`);
  const daysSel = h('select', { testid: 'iv-days', onchange: (ev) => { ivDays = Number(ev.target.value); route(); } },
    [7, 30, 90].map((n) => h('option', { value: n, selected: n === ivDays }, n)));
  const kinds = Object.keys(d.by_kind);
  const table = (obj, label, testid) => h('table', { testid },
    h('thead', {}, h('tr', {}, h('th', {}, label), h('th', { class: 'num' }, t('count')))),
    h('tbody', {}, Object.entries(obj).sort((a, b) => b[1] - a[1])
      .map(([k, n]) => h('tr', {}, h('td', {}, label === t('kind') ? t(`iv.kind_${k}`) : k), h('td', { class: 'num' }, n)))));
  view.append(h('h2', {}, t('iv.title'), ' ', h('span', { class: 'muted' }, `${t('iv.total')}: `, h('b', { testid: 'iv-total' }, d.total))),
    h('div', { class: 'search card' }, h('label', {}, t('iv.days'), daysSel)),
    h('div', { class: 'card', testid: 'iv-by-day' }, h('h2', {}, t('iv.by_day')),
      d.total ? interventionChart(d.by_day, kinds) : h('p', { class: 'muted', testid: 'iv-empty' }, t('iv.empty'))),
    h('div', { class: 'grid' },
      sectionCard(t('iv.by_kind'), 'iv-by-kind', table(d.by_kind, t('kind'), 'iv-kind-table')),
      sectionCard(t('iv.by_actor'), 'iv-by-actor', table(d.by_actor, t('actor'), 'iv-actor-table'))));
}

// ---- status differences (the status reconciler's month) ------------------------------------------

let sdMonth = null;

// Channels on the x axis, each a bar stacked by kind.
function differencesChart(rows, channels, kinds) {
  const NS = 'http://www.w3.org/2000/svg';
  const el = (tag, attrs, text) => {
    const n = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    if (text != null) n.textContent = String(text);
    return n;
  };
  const colours = ['#c62828', '#1f4e79', '#e0b000', '#2e7d32'];
  const per = {};
  rows.forEach((r) => { per[r.channel] = per[r.channel] || {}; per[r.channel][r.kind] = (per[r.channel][r.kind] || 0) + r.count; });
  const W = 900; const H = 240; const left = 36; const bottom = 30; const top = 10;
  const max = Math.max(1, ...channels.map((c) => Object.values(per[c] || {}).reduce((a, b) => a + b, 0)));
  const step = (W - left) / Math.max(1, channels.length);
  const bar = Math.min(80, step * 0.6);
  const svg = el('svg', { viewBox: `0 0 ${W} ${H + 20}`, width: '100%', role: 'img', 'data-testid': 'differences-chart' });
  svg.append(el('line', { x1: left, y1: H - bottom, x2: W, y2: H - bottom, stroke: '#dde3ea' }));
  svg.append(el('text', { x: 2, y: top + 10, 'font-size': 11, fill: '#6b778a' }, max));
  channels.forEach((c, i) => {
    let y = H - bottom;
    const x = left + i * step + (step - bar) / 2;
    kinds.forEach((k, ki) => {
      const n = (per[c] || {})[k] || 0;
      if (!n) return;
      const hgt = (n / max) * (H - bottom - top);
      y -= hgt;
      const r = el('rect', { x, y, width: bar, height: hgt, fill: colours[ki % colours.length], 'data-kind': k });
      r.append(el('title', {}, `${c} ${t(`sd.kind_${k}`)}: ${n}`));
      svg.append(r);
    });
    svg.append(el('text', { x: x + bar / 2, y: H - bottom + 14, 'font-size': 11, 'text-anchor': 'middle', fill: '#1d2633' }, c));
  });
  kinds.forEach((k, ki) => {
    const x = left + ki * 200;
    svg.append(el('rect', { x, y: H + 1, width: 10, height: 10, fill: colours[ki % colours.length] }));
    svg.append(el('text', { x: x + 14, y: H + 10, 'font-size': 11, fill: '#1d2633' }, t(`sd.kind_${k}`)));
  });
  return svg;
}

async function differencesPage(view) {
  const month = sdMonth || new Date().toISOString().slice(0, 7);
  const d = await api(`/v1/reports/status-differences?month=${encodeURIComponent(month)}`);
  const input = h('input', { type: 'month', value: d.month, testid: 'sd-month',
    onchange: (ev) => { sdMonth = ev.target.value || null; route(); } });
  const counts = (list, label, name, testid) => h('table', { testid },
    h('thead', {}, h('tr', {}, h('th', {}, label), h('th', { class: 'num' }, t('count')))),
    h('tbody', {}, list.map((c) => h('tr', {}, h('td', {}, name(c.name)), h('td', { class: 'num' }, c.count)))));
  view.append(h('h2', {}, t('sd.title'), ' ', h('span', { class: 'muted' }, `${t('iv.total')}: `, h('b', { testid: 'sd-total' }, d.total))),
    h('div', { class: 'search card' }, h('label', {}, t('sd.month'), input)),
    h('div', { class: 'card', testid: 'sd-by-channel' }, h('h2', {}, t('sd.by_channel')),
      d.total ? differencesChart(d.rows, d.channels.map((c) => c.name), d.by_kind.map((k) => k.name))
        : h('p', { class: 'muted', testid: 'sd-empty' }, t('sd.empty'))),
    h('div', { class: 'grid' },
      sectionCard(t('iv.by_kind'), 'sd-by-kind', counts(d.by_kind, t('kind'), (n) => t(`sd.kind_${n}`), 'sd-kind-table')),
      sectionCard(t('sd.carriers'), 'sd-carriers', counts(d.carriers, t('carrier'), (n) => n, 'sd-carrier-table'))));
}

// ---- order health (issue 24) -------------------------------------------------------------------

let hlDimension = 'shop';
let hlDays = 14;
// The live view's window in seconds: a minute suits the demo's day of minutes, an hour a real day.
let hlWindow = 3600;
const HL_WINDOWS = [[60, '1 min'], [300, '5 min'], [3600, '1 h'], [21600, '6 h'], [86400, '24 h']];

// The live view of the dimension: a grade per key over the orders paid in the window.
async function healthLive(box) {
  const q = new URLSearchParams({ dimension: hlDimension, window_seconds: String(hlWindow) });
  const d = await api(`/v1/health/live?${q}`);
  const rows = [...d.scores].sort((a, b) => Number(a.score ?? 101) - Number(b.score ?? 101) || a.key.localeCompare(b.key));
  box.replaceChildren(rows.length ? h('table', { testid: 'hl-live-table' },
    h('thead', {}, h('tr', {}, h('th', {}, t('hl.key')), h('th', {}, t('hl.grade')),
      h('th', { class: 'num' }, t('hl.score')), h('th', { class: 'num' }, t('hl.orders_n')), h('th', {}, t('hl.components')))),
    h('tbody', {}, rows.map((s) => h('tr', { 'data-key': s.key },
      h('td', {}, s.key),
      h('td', { 'data-grade': s.grade || '', class: `hl-cell grade-${s.grade || 'none'}` }, s.grade || '-'),
      h('td', { class: 'num' }, s.score ?? '-'),
      h('td', { class: 'num' }, s.orders),
      h('td', {}, s.components.filter((c) => c.judged > 0 && c.failing > 0).map((c) => `${t(`hl.c_${c.name}`)} ${c.failing}/${c.judged}`).join('、')))))
  ) : h('p', { class: 'muted', testid: 'hl-live-empty' }, t('hl.live_empty')));
}

const GRADE_COLOURS = { A: '#2e7d32', B: '#1f4e79', C: '#e0b000', D: '#c62828' };

// One line per key (score over the days), at most 10 keys: the lowest on the last day first.
function healthChart(scores, days, keys, d) {
  const NS = 'http://www.w3.org/2000/svg';
  const el = (tag, attrs, text) => {
    const n = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    if (text != null) n.textContent = String(text);
    return n;
  };
  const colours = ['#c62828', '#1f4e79', '#2e7d32', '#e0b000', '#6a1b9a', '#00838f', '#ef6c00', '#5d4037', '#455a64', '#ad1457'];
  const W = 900; const H = 240; const left = 36; const bottom = 24; const top = 10;
  const x = (i) => left + (days.length > 1 ? i * (W - left - 10) / (days.length - 1) : (W - left) / 2);
  const y = (v) => H - bottom - (v / 100) * (H - bottom - top);
  const svg = el('svg', { viewBox: `0 0 ${W} ${H + 20}`, width: '100%', role: 'img', 'data-testid': 'health-chart' });
  for (const [g, v] of [['A', d.grade_a], ['B', d.grade_b], ['C', d.grade_c]]) {
    svg.append(el('line', { x1: left, y1: y(v), x2: W, y2: y(v), stroke: GRADE_COLOURS[g], 'stroke-dasharray': '4 4', 'stroke-opacity': 0.5 }));
    svg.append(el('text', { x: 2, y: y(v) + 4, 'font-size': 11, fill: GRADE_COLOURS[g] }, `${g} ${v}`));
  }
  days.forEach((day, i) => {
    if (days.length <= 16 || i % 2 === 0) svg.append(el('text', { x: x(i), y: H - bottom + 14, 'font-size': 10, 'text-anchor': 'middle', fill: '#6b778a' }, day.slice(5)));
  });
  keys.forEach((k, ki) => {
    const pts = [];
    days.forEach((day, i) => {
      const s = scores[`${day}|${k}`];
      if (s && s.score != null) pts.push([x(i), y(Number(s.score)), s]);
    });
    const c = colours[ki % colours.length];
    if (pts.length > 1) svg.append(el('polyline', { points: pts.map((p) => `${p[0]},${p[1]}`).join(' '), fill: 'none', stroke: c, 'stroke-width': 2, 'data-key': k }));
    pts.forEach(([px, py, s]) => {
      const dot = el('circle', { cx: px, cy: py, r: 3, fill: c });
      dot.append(el('title', {}, `${k} ${s.day}: ${s.score} ${s.grade}`));
      svg.append(dot);
    });
    svg.append(el('rect', { x: left + ki * 86, y: H + 1, width: 10, height: 10, fill: c }));
    svg.append(el('text', { x: left + ki * 86 + 14, y: H + 10, 'font-size': 11, fill: '#1d2633' }, k.length > 10 ? `${k.slice(0, 9)}…` : k));
  });
  return svg;
}

async function healthOrders(box, dimension, key, day) {
  box.replaceChildren(h('p', { class: 'muted' }, '…'));
  const body = await guarded(async () => {
    const q = new URLSearchParams({ dimension, key, date: day, limit: '100' });
    const r = await api(`/v1/health/orders?${q}`);
    if (!r.orders.length) return h('p', { class: 'muted', testid: 'hl-no-orders' }, t('hl.no_orders'));
    return h('table', { testid: 'hl-orders-table' },
      h('thead', {}, h('tr', {}, h('th', {}, 'ID'), h('th', {}, t('hl.failing')))),
      h('tbody', {}, r.orders.map((o) => h('tr', {},
        h('td', {}, h('a', { href: `#/orders/${o.order_id}` }, o.order_id)),
        h('td', {}, o.failing.map((c) => t(`hl.c_${c}`)).join('、'))))));
  });
  box.replaceChildren(h('h2', {}, `${t('hl.orders')}: ${key} ${day}`), body);
}

async function healthPage(view) {
  const today = new Date();
  const iso = (dt) => dt.toISOString().slice(0, 10);
  const from = new Date(today.getTime() - (hlDays - 1) * 86400000);
  const q = new URLSearchParams({ dimension: hlDimension, from: iso(from), to: iso(today) });
  const d = await api(`/v1/health/scores?${q}`);
  const days = [];
  for (let i = 0; i < hlDays; i++) days.push(iso(new Date(from.getTime() + i * 86400000)));
  const scores = {};
  d.scores.forEach((s) => { scores[`${s.day}|${s.key}`] = s; });
  const last = (k) => { for (let i = days.length - 1; i >= 0; i--) { const s = scores[`${days[i]}|${k}`]; if (s && s.score != null) return Number(s.score); } return 101; };
  const keys = [...new Set(d.scores.map((s) => s.key))].sort((a, b) => last(a) - last(b) || a.localeCompare(b));
  const select = h('select', { testid: 'hl-dimension', onchange: (ev) => { hlDimension = ev.target.value; route(); } },
    ['shop', 'channel', 'warehouse', 'carrier', 'region'].map((dim) => h('option', { value: dim, selected: dim === hlDimension }, t(`hl.dim_${dim}`))));
  const range = h('select', { testid: 'hl-days', onchange: (ev) => { hlDays = Number(ev.target.value); route(); } },
    [7, 14, 30, 92].map((n) => h('option', { value: n, selected: n === hlDays }, n)));
  const compute = h('button', { testid: 'hl-compute', onclick: async () => {
    try { await api(`/v1/health/compute?date=${iso(today)}`, { method: 'POST', body: {} }); route(); } catch (e) { alert(e.message); }
  } }, t('hl.compute'));
  const ordersBox = h('div', { class: 'card', testid: 'hl-orders' });
  const liveBox = h('div', { testid: 'hl-live' });
  const windowSelect = h('select', { testid: 'hl-window', onchange: (ev) => { hlWindow = Number(ev.target.value); healthLive(liveBox).catch((e) => toast(e.message, true)); } },
    HL_WINDOWS.map(([secs, label]) => h('option', { value: secs, selected: secs === hlWindow }, label)));
  const cell = (k, day) => {
    const s = scores[`${day}|${k}`];
    if (!s) return h('td', { class: 'muted' }, '·');
    const title = `${s.score ?? '-'} — ${s.components.filter((c) => c.score != null).map((c) => `${t(`hl.c_${c.name}`)} ${c.score} (${c.failing}/${c.judged})`).join(', ')}`;
    return h('td', { title, 'data-grade': s.grade || '', class: `hl-cell grade-${s.grade || 'none'}`,
      onclick: () => healthOrders(ordersBox, hlDimension, k, day) }, s.grade || '-');
  };
  const grid = keys.length
    ? h('div', { class: 'scroll-x' }, h('table', { testid: 'hl-grades' },
      h('thead', {}, h('tr', {}, h('th', {}, t('hl.key')), days.map((day) => h('th', {}, day.slice(5))))),
      h('tbody', {}, keys.map((k) => h('tr', { 'data-key': k }, h('td', {}, k), days.map((day) => cell(k, day)))))))
    : h('p', { class: 'muted', testid: 'hl-empty' }, t('hl.empty'));
  view.append(h('h2', {}, t('hl.title')),
    h('div', { class: 'search card' }, h('label', {}, t('hl.dimension'), select), h('label', {}, t('hl.days'), range), compute),
    h('div', { class: 'card', testid: 'hl-live-card' }, h('h2', {}, t('hl.live')), h('label', {}, t('hl.window'), windowSelect), liveBox),
    h('div', { class: 'card', testid: 'hl-trend' }, h('h2', {}, t('hl.trend')),
      keys.length ? healthChart(scores, days, keys.slice(0, 10), d) : h('p', { class: 'muted' }, t('hl.empty'))),
    sectionCard(t('hl.grades'), 'hl-grade-card', grid),
    ordersBox);
  await healthLive(liveBox);
  timers.push(setInterval(() => healthLive(liveBox).catch((e) => toast(e.message, true)), LIVE_REFRESH_MS));
}

// ---- rules -------------------------------------------------------------------------------------

// The editor's text across re-renders ("new draft from this set" fills it, then the list shows it).
let ruleDraft = null;
let sandboxDays = 1;

const ruleStateLabel = (s) => t(`rules.state_${s}`);
const can = (step) => (me.rules || []).includes(step);

// Offers `obj` as a JSON file (export of a set or of a sandbox report).
function download(name, obj) {
  const url = URL.createObjectURL(new Blob([JSON.stringify(obj, null, 2)], { type: 'application/json' }));
  const a = h('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// The file format of a set: the body of POST /v1/rule-sets, so an exported file imports as is.
const ruleFile = (s) => ({ name: s.name, rules: s.rules });

async function rulesPage(view, id) {
  if (!can('read')) {
    view.append(h('p', { class: 'card muted', testid: 'rules-forbidden' }, t('forbidden')));
    return;
  }
  if (id) { await ruleSetPage(view, id); return; }
  const page = await api('/v1/rule-sets?limit=50');
  const live = page.live_version;
  const rows = page.rule_sets.map((s) => h('tr', { testid: 'rule-set-row' },
    h('td', {}, h('a', { href: `#/rules/${s.rule_set_id}`, testid: 'rule-set-link' }, `v${s.version}`)),
    h('td', {}, s.name),
    h('td', {}, ruleStateLabel(s.state), ' ', s.version === live ? h('span', { class: 'badge', testid: 'rule-set-live' }, t('rules.live')) : null),
    h('td', { class: 'num' }, s.rules.length),
    h('td', {}, s.author), h('td', {}, s.approved_by || ''), h('td', {}, fmtTime(s.effective_at))));
  view.append(h('h2', {}, t('rules.title'), ' ',
    h('span', { class: 'muted', testid: 'rules-live-version' }, live ? `${t('rules.live')}: v${live}` : t('rules.live_none'))),
  h('div', { class: 'card' }, rows.length
    ? h('table', { testid: 'rule-sets-table' },
      h('thead', {}, h('tr', {}, [t('version'), t('rules.name'), t('state'), t('rules.count'), t('rules.author'),
        t('rules.approved_by'), t('rules.effective_at')].map((k) => h('th', {}, k)))),
      h('tbody', {}, rows))
    : h('p', { class: 'muted' }, t('rules.none'))));
  if (can('write')) view.append(ruleEditor());
}

// A new draft: name and rules as JSON (typed, or imported from an exported file). A refusal lists
// every rule at fault with its field and, for a condition, the line and column.
function ruleEditor() {
  const start = ruleDraft || { name: '', rules: [] };
  ruleDraft = null;
  const name = h('input', { name: 'name', testid: 'rule-draft-name', value: start.name, required: true, size: 40 });
  const text = h('textarea', { testid: 'rule-draft-json', rows: 14, cols: 100, spellcheck: 'false', class: 'mono' });
  text.value = JSON.stringify(start.rules, null, 2);
  const errors = h('div', { testid: 'rule-errors-box' });
  const file = h('input', { type: 'file', accept: 'application/json,.json', testid: 'rule-import',
    onchange: async (ev) => {
      const f = ev.target.files[0];
      if (!f) return;
      try {
        const doc = JSON.parse(await f.text());
        if (doc.name) name.value = doc.name;
        text.value = JSON.stringify(doc.rules ?? doc, null, 2);
      } catch (e) { toast(e.message, true); }
    } });
  const save = async (ev) => {
    ev.preventDefault();
    errors.replaceChildren();
    let rules;
    try { rules = JSON.parse(text.value); } catch (e) {
      errors.append(h('p', { class: 'error', testid: 'rule-errors' }, `JSON: ${e.message}`));
      return;
    }
    let saved;
    try {
      saved = await api('/v1/rule-sets', { method: 'POST', body: { name: name.value, rules }, idempotent: true });
    } catch (e) {
      if (e.status !== 400) throw e;
      // A refusal lists every rule at fault: shown beside the editor, nothing saved.
      const list = (e.body && e.body.errors) || [];
      errors.append(h('p', { class: 'error' }, t('rules.errors'), ' ', e.message),
      list.length ? h('table', { testid: 'rule-errors' },
        h('thead', {}, h('tr', {}, [t('rule'), t('field'), t('rules.place'), t('reason')].map((k) => h('th', {}, k)))),
        h('tbody', {}, list.map((r) => h('tr', { testid: 'rule-error' }, h('td', {}, r.rule), h('td', {}, r.field),
          h('td', { testid: 'rule-error-at' }, r.at ? `${r.at[0]}:${r.at[1]}` : ''), h('td', {}, r.message))))) : null);
      return;
    }
    toast(t('rules.saved'));
    location.hash = `#/rules/${saved.rule_set_id}`;
  };
  return h('form', { class: 'card', testid: 'rule-editor', onsubmit: (ev) => save(ev).catch((e) => toast(e.message, true)) },
    h('h2', {}, t('rules.new')),
    h('p', {}, h('label', {}, `${t('rules.name')} `, name), ' ', h('label', {}, `${t('rules.import')} `, file)),
    h('label', {}, t('rules.json')), h('div', {}, text), errors,
    h('p', {}, h('button', { type: 'submit', class: 'primary', testid: 'rule-draft-save' }, t('rules.save'))));
}

async function ruleSetPage(view, id) {
  const s = await api(`/v1/rule-sets/${encodeURIComponent(id)}`);
  const reload = () => route();
  const stepButton = (stepName, label) => h('button', { type: 'button', class: 'primary', testid: `rule-set-${stepName}`,
    onclick: acting(async () => {
      await api(`/v1/rule-sets/${s.rule_set_id}/${stepName}`, { method: 'POST', body: {}, idempotent: true });
      toast(t('action.done'));
      reload();
    }) }, label);
  const steps = [];
  if (s.state === 'draft' && can('write')) steps.push(stepButton('submit', t('rules.submit')));
  if (s.state === 'submitted' && can('approve')) steps.push(stepButton('approve', t('rules.approve')));
  if (s.state === 'approved' && can('approve')) steps.push(stepButton('publish', t('rules.publish')));
  steps.push(h('button', { type: 'button', testid: 'rule-set-export',
    onclick: () => download(`rule-set-v${s.version}.json`, ruleFile(s)) }, t('rules.export')));
  if (can('write')) {
    steps.push(h('button', { type: 'button', testid: 'rule-set-copy',
      onclick: () => { ruleDraft = ruleFile(s); location.hash = '#/rules'; } }, t('rules.copy')));
  }
  const rules = h('table', { testid: 'rule-set-rules' },
    h('thead', {}, h('tr', {}, ['id', t('rules.name'), t('kind'), t('rules.condition'), t('rules.action'),
      t('rules.priority'), t('rules.enabled')].map((k) => h('th', {}, k)))),
    h('tbody', {}, s.rules.map((r) => h('tr', { testid: 'rule-row' }, h('td', {}, r.id), h('td', {}, r.name), h('td', {}, r.kind),
      h('td', {}, h('code', {}, r.condition)), h('td', {}, h('code', {}, JSON.stringify(r.action || {}))),
      h('td', { class: 'num' }, r.priority), h('td', {}, r.enabled ? '✓' : '—')))));
  view.append(h('p', {}, h('a', { href: '#/rules' }, `← ${t('back')}`)),
    h('h2', {}, `v${s.version} ${s.name} `, h('span', { class: 'badge', testid: 'rule-set-state' }, ruleStateLabel(s.state))),
    h('div', { class: 'card' },
      h('dl', { class: 'kv' }, h('dt', {}, t('rules.author')), h('dd', {}, s.author),
        h('dt', {}, t('rules.approved_by')), h('dd', {}, s.approved_by || '—'),
        h('dt', {}, t('rules.effective_at')), h('dd', {}, s.effective_at ? fmtTime(s.effective_at) : '—')),
      h('p', { class: 'chips' }, steps), rules),
    ruleTestCard(s), sandboxCard(s));
}

function ruleTestCard(s) {
  const input = h('input', { name: 'order_id', testid: 'rule-test-order', size: 40, required: true });
  const out = h('pre', { class: 'mono', testid: 'rule-test-result' });
  return h('form', { class: 'card', onsubmit: (ev) => {
    ev.preventDefault();
    acting(async () => {
      const r = await api(`/v1/rule-sets/${s.rule_set_id}/test`, { method: 'POST', body: { order_id: input.value.trim() } });
      out.textContent = JSON.stringify(r.decisions, null, 2);
    })();
  } }, h('h2', {}, t('rules.test')), input, ' ', h('button', { type: 'submit' }, t('rules.test_run')), out);
}

// Grouped bars per carrier, the live set's beside this set's, as plain SVG.
function carrierMixChart(live, draft, testid = 'sandbox-chart') {
  const NS = 'http://www.w3.org/2000/svg';
  const el = (tag, attrs, text) => {
    const n = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    if (text != null) n.textContent = String(text);
    return n;
  };
  const carriers = [...new Set([...Object.keys(live), ...Object.keys(draft)])].sort();
  const W = 640; const H = 220; const left = 40; const bottom = 30; const top = 10;
  const max = Math.max(1, ...carriers.map((c) => Math.max(live[c] || 0, draft[c] || 0)));
  const step = (W - left) / Math.max(1, carriers.length);
  const bar = Math.max(4, step * 0.35);
  const svg = el('svg', { viewBox: `0 0 ${W} ${H + 24}`, width: '100%', role: 'img', 'data-testid': testid });
  svg.append(el('line', { x1: left, y1: H - bottom, x2: W, y2: H - bottom, stroke: '#dde3ea' }));
  svg.append(el('text', { x: 2, y: top + 10, 'font-size': 11, fill: '#6b778a' }, max));
  carriers.forEach((c, i) => {
    [[live, '#9fb3c8', 'live'], [draft, '#1f4e79', 'draft']].forEach(([m, colour, which], j) => {
      const n = m[c] || 0;
      const hgt = (n / max) * (H - bottom - top);
      const x = left + i * step + (step - 2 * bar) / 2 + j * bar;
      const r = el('rect', { x, y: H - bottom - hgt, width: bar - 2, height: hgt, fill: colour, 'data-carrier': c, 'data-set': which });
      r.append(el('title', {}, `${c} ${t(`sb.${which}`)}: ${n}`));
      svg.append(r);
    });
    svg.append(el('text', { x: left + i * step + step / 2, y: H - bottom + 14, 'font-size': 11, 'text-anchor': 'middle', fill: '#1d2633' }, c));
  });
  [['#9fb3c8', 'sb.live'], ['#1f4e79', 'sb.draft']].forEach(([colour, k], i) => {
    svg.append(el('rect', { x: left + i * 140, y: H + 6, width: 10, height: 10, fill: colour }));
    svg.append(el('text', { x: left + i * 140 + 14, y: H + 15, 'font-size': 11, fill: '#1d2633' }, t(k)));
  });
  return svg;
}

function sandboxCard(s) {
  const box = h('div', { testid: 'sandbox-box' });
  const days = h('select', { testid: 'sandbox-days', onchange: (ev) => { sandboxDays = Number(ev.target.value); } },
    [1, 7, 30, 90].map((n) => h('option', { value: n, selected: n === sandboxDays }, n)));
  const run = acting(async () => {
    box.replaceChildren(h('p', { class: 'muted' }, '…'));
    const answer = await api(`/v1/rule-sets/${s.rule_set_id}/sandbox?days=${sandboxDays}`);
    const r = answer.report;
    const sample = (c) => (c && c.sample && c.sample.length ? c.sample.map((id) => h('a', { href: `#/orders/${id}`, class: 'mono' }, id.slice(0, 8), ' ')) : '');
    const row = (k, n, c) => h('tr', { testid: `sandbox-${k}` }, h('td', {}, t(`sb.${k}`)), h('td', { class: 'num', testid: `sandbox-${k}-n` }, n), h('td', {}, sample(c)));
    const changes = ['would_hold', 'would_release', 'hold_rule_changed', 'carrier_changed', 'tags_changed', 'deadline_changed',
      'gifts_changed', 'warehouse_changed', 'late_against_draft', 'draft_errors'];
    box.replaceChildren(
      r.truncated ? h('p', { class: 'error' }, t('sb.truncated')) : null,
      h('div', { class: 'grid' },
        h('table', { testid: 'sandbox-report' },
          h('thead', {}, h('tr', {}, h('th', {}, t('sb.change')), h('th', { class: 'num' }, t('count')), h('th', {}, t('sb.sample')))),
          h('tbody', {}, row('orders', r.orders), row('held_live', r.held_live), row('held_draft', r.held_draft),
            changes.map((k) => row(k, r[k].count, r[k])), row('late_against_live', r.late_against_live),
            row('gift_lines_live', r.gift_lines_live), row('gift_lines_draft', r.gift_lines_draft))),
        h('div', {}, h('h2', {}, t('sb.carrier_mix')), carrierMixChart(r.carrier_mix_live, r.carrier_mix_draft),
          h('h2', {}, t('sb.warehouse_mix')), carrierMixChart(r.warehouse_mix_live, r.warehouse_mix_draft, 'sandbox-warehouse-chart'))),
      h('p', {}, h('button', { type: 'button', testid: 'sandbox-export',
        onclick: () => download(`sandbox-v${s.version}-${sandboxDays}d.json`, answer) }, t('sb.export'))));
  });
  return h('div', { class: 'card', testid: 'sandbox' }, h('h2', {}, t('rules.sandbox')),
    h('p', {}, h('label', {}, `${t('rules.days')} `, days), ' ',
      h('button', { type: 'button', class: 'primary', testid: 'sandbox-run', onclick: run }, t('rules.sandbox_run'))), box);
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

// The seller authorizes the app on the platform's page (issue 20): the hub signs the page's state
// and stores the tokens when the platform sends the browser back to its callback.
async function authorizeShop(channel, shop) {
  const body = {};
  if (channel === 'kuaishou') body.scope = window.prompt(t('ch.authorize_scope'), 'merchant_order,merchant_item,merchant_refund,merchant_logistics') || undefined;
  if (channel === 'douyin') body.service_id = window.prompt(t('ch.authorize_service')) || undefined;
  // Opened before the call: a window opened after an await is a pop-up browsers block.
  const win = window.open('about:blank', '_blank');
  try {
    const r = await api(`/v1/channels/${encodeURIComponent(channel)}/shops/${encodeURIComponent(shop)}/authorize`, { method: 'POST', body });
    if (win) { win.opener = null; win.location.href = r.authorize_url; } else window.location.href = r.authorize_url;
    toast(t('ch.authorize_opened'));
  } catch (e) {
    if (win) win.close();
    toast(e.message, true);
  }
}

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
      ? simple(['channel', 'shop', 'cursor', 'holder', 'token', 'ch.authorize'], stats.pull_cursors.map((c) => [c.channel, c.shop_id, fmtTime(c.cursor), c.holder,
        // The token's state (never the token); on hover, why a renewal was refused, or until
        // when the seller's authorization lasts (expiring), or the access token's expiry.
        h('td', { class: `token-${c.token_state}`, title: c.token_problem
          || (c.token_state === 'expiring' && c.refresh_token_expires_at ? fmtTime(c.refresh_token_expires_at)
            : (c.token_expires_at ? fmtTime(c.token_expires_at) : '')) }, t(`token_${c.token_state}`)),
        h('td', {}, h('button', { type: 'button', testid: `authorize-${c.channel}-${c.shop_id}`,
          onclick: () => authorizeShop(c.channel, c.shop_id) }, t('ch.authorize')))]), 'pull-cursors-table')
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
