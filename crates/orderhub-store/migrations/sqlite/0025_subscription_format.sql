-- Notification targets (issue 24): a subscription delivers either orderhub's signed webhook
-- (`webhook`, every subscription made before) or a message to a group bot (`wecom`, `dingtalk`,
-- `feishu`), whose signing secret, if any, is the bot's and is kept in `secret` (encrypted).
ALTER TABLE subscriptions ADD COLUMN format TEXT NOT NULL DEFAULT 'webhook';
