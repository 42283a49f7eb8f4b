-- migrations sha256 7d1e9c1410a8c239a13affeae36e0f774013e1a3144d06f3ba12a6f7ed619b08
BEGIN TRANSACTION;
CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL, 
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
CREATE TABLE accounts (
	id VARCHAR(64) NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	currency VARCHAR(3) NOT NULL, 
	timezone VARCHAR(64) NOT NULL, 
	bill_day SMALLINT NOT NULL, 
	combine_invoices BOOLEAN, 
	start_date DATE NOT NULL, 
	onboarded_on DATE NOT NULL, 
	hold_until DATE, 
	body_hash VARCHAR(64) NOT NULL, 
	created_at DATETIME NOT NULL, 
	CONSTRAINT pk_accounts PRIMARY KEY (id), 
	CONSTRAINT ck_accounts_bill_day CHECK (bill_day BETWEEN 1 AND 31)
);
CREATE TABLE bill_runs (
	id INTEGER NOT NULL, 
	run_date DATE, 
	message_id VARCHAR(64), 
	requested_at DATETIME NOT NULL, 
	started_at DATETIME, 
	finished_at DATETIME, 
	status VARCHAR(16) NOT NULL, 
	accounts_due INTEGER DEFAULT '0' NOT NULL, 
	invoiced INTEGER DEFAULT '0' NOT NULL, 
	skipped INTEGER DEFAULT '0' NOT NULL, 
	failed INTEGER DEFAULT '0' NOT NULL, 
	CONSTRAINT pk_bill_runs PRIMARY KEY (id), 
	CONSTRAINT ck_bill_runs_status CHECK (status IN ('running', 'finished', 'failed'))
);
CREATE TABLE invoice_counters (
	series VARCHAR(40) NOT NULL, 
	last_number BIGINT NOT NULL, 
	CONSTRAINT pk_invoice_counters PRIMARY KEY (series), 
	CONSTRAINT ck_invoice_counters_last_number CHECK (last_number >= 0)
);
CREATE TABLE message_deliveries (
	message_id VARCHAR(64) NOT NULL, 
	message_type VARCHAR(40) NOT NULL, 
	broker_message_id VARCHAR(64) NOT NULL, 
	deliveries INTEGER NOT NULL, 
	first_seen_at DATETIME NOT NULL, 
	last_seen_at DATETIME NOT NULL, resent_broker_message_id VARCHAR(64), 
	CONSTRAINT pk_message_deliveries PRIMARY KEY (message_id)
);
CREATE TABLE parked_messages (
	id INTEGER NOT NULL, 
	message_id VARCHAR(64) NOT NULL, 
	account_id VARCHAR(64) NOT NULL, 
	message_type VARCHAR(40) NOT NULL, 
	envelope TEXT NOT NULL, 
	first_seen_at DATETIME NOT NULL, 
	retry_at DATETIME NOT NULL, 
	CONSTRAINT pk_parked_messages PRIMARY KEY (id), 
	CONSTRAINT uq_parked_messages_message_id UNIQUE (message_id)
);
CREATE INDEX ix_parked_messages_account_id ON parked_messages (account_id);
CREATE INDEX ix_parked_messages_retry_at ON parked_messages (retry_at);
CREATE TABLE processed_messages (
	"key" VARCHAR(200) NOT NULL, 
	message_type VARCHAR(40) NOT NULL, 
	message_id VARCHAR(64) NOT NULL, 
	body_hash VARCHAR(64) NOT NULL, 
	outcome VARCHAR(16) NOT NULL, 
	processed_at DATETIME NOT NULL, 
	CONSTRAINT pk_processed_messages PRIMARY KEY ("key")
);
CREATE TABLE rejections (
	id INTEGER NOT NULL, 
	message_id VARCHAR(64), 
	message_type VARCHAR(40), 
	producer VARCHAR(100), 
	code VARCHAR(32) NOT NULL, 
	reason TEXT NOT NULL, 
	payload TEXT NOT NULL, 
	created_at DATETIME NOT NULL, 
	replayed_at DATETIME, 
	replay_message_id VARCHAR(64), envelope TEXT, 
	CONSTRAINT pk_rejections PRIMARY KEY (id)
);
CREATE INDEX ix_rejections_code ON rejections (code);
CREATE INDEX ix_rejections_created_at ON rejections (created_at);
CREATE INDEX ix_rejections_message_id ON rejections (message_id);
CREATE TABLE balance_lines (
	id INTEGER NOT NULL, 
	line_id VARCHAR(100) NOT NULL, 
	account_id VARCHAR(64) NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	amount_minor BIGINT, 
	percent NUMERIC(7, 4), 
	currency VARCHAR(3) NOT NULL, 
	label VARCHAR(200) NOT NULL, 
	reason VARCHAR(500) NOT NULL, 
	author VARCHAR(200) NOT NULL, 
	producer VARCHAR(100) NOT NULL, 
	message_id VARCHAR(64) NOT NULL, 
	effective_date DATE NOT NULL, 
	expires_on DATE, 
	requires_approval BOOLEAN NOT NULL, 
	body_hash VARCHAR(64) NOT NULL, 
	created_at DATETIME NOT NULL, 
	CONSTRAINT pk_balance_lines PRIMARY KEY (id), 
	CONSTRAINT ck_balance_lines_kind CHECK (kind IN ('credit', 'gift', 'referral', 'discount', 'adjustment')), 
	CONSTRAINT ck_balance_lines_amount_xor_percent CHECK ((amount_minor IS NULL) <> (percent IS NULL)), 
	CONSTRAINT ck_balance_lines_amount_sign CHECK (amount_minor IS NULL OR amount_minor > 0 OR (kind = 'adjustment' AND amount_minor <> 0)), 
	CONSTRAINT ck_balance_lines_percent CHECK (percent IS NULL OR (kind = 'discount' AND percent > 0 AND percent <= 100)), 
	CONSTRAINT ck_balance_lines_expiry CHECK (expires_on IS NULL OR expires_on >= effective_date), 
	CONSTRAINT fk_balance_lines_account_id_accounts FOREIGN KEY(account_id) REFERENCES accounts (id), 
	CONSTRAINT uq_balance_lines_line_id UNIQUE (line_id)
);
CREATE INDEX ix_balance_lines_account_id ON balance_lines (account_id);
CREATE TABLE balance_line_decisions (
	id INTEGER NOT NULL, 
	balance_line_id INTEGER NOT NULL, 
	decision VARCHAR(16) NOT NULL, 
	identity VARCHAR(200) NOT NULL, 
	reason VARCHAR(500) NOT NULL, 
	created_at DATETIME NOT NULL, 
	CONSTRAINT pk_balance_line_decisions PRIMARY KEY (id), 
	CONSTRAINT ck_balance_line_decisions_decision CHECK (decision IN ('approved', 'declined')), 
	CONSTRAINT fk_balance_line_decisions_balance_line_id_balance_lines FOREIGN KEY(balance_line_id) REFERENCES balance_lines (id)
);
CREATE INDEX ix_balance_line_decisions_balance_line_id ON balance_line_decisions (balance_line_id);
CREATE TABLE bill_run_failures (
	id INTEGER NOT NULL, 
	bill_run_id INTEGER NOT NULL, 
	account_id VARCHAR(64) NOT NULL, 
	code VARCHAR(32) NOT NULL, 
	reason TEXT NOT NULL, 
	created_at DATETIME NOT NULL, 
	CONSTRAINT pk_bill_run_failures PRIMARY KEY (id), 
	CONSTRAINT fk_bill_run_failures_bill_run_id_bill_runs FOREIGN KEY(bill_run_id) REFERENCES bill_runs (id)
);
CREATE INDEX ix_bill_run_failures_bill_run_id ON bill_run_failures (bill_run_id);
CREATE TABLE balance_entries (
	id INTEGER NOT NULL, 
	balance_line_id INTEGER NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	amount_minor BIGINT NOT NULL, 
	invoice_id INTEGER, 
	invoice_line_id INTEGER, 
	message_id VARCHAR(64), 
	created_at DATETIME NOT NULL, producer VARCHAR(100), author VARCHAR(200), reason VARCHAR(500), 
	CONSTRAINT pk_balance_entries PRIMARY KEY (id), 
	CONSTRAINT ck_balance_entries_kind CHECK (kind IN ('applied', 'lapsed', 'reversed')), 
	CONSTRAINT ck_balance_entries_amount_minor CHECK (amount_minor >= 0), 
	CONSTRAINT fk_balance_entries_balance_line_id_balance_lines FOREIGN KEY(balance_line_id) REFERENCES balance_lines (id), 
	CONSTRAINT fk_balance_entries_invoice_id_invoices FOREIGN KEY(invoice_id) REFERENCES invoices (id), 
	CONSTRAINT fk_balance_entries_invoice_line_id_invoice_lines FOREIGN KEY(invoice_line_id) REFERENCES invoice_lines (id)
);
CREATE INDEX ix_balance_entries_balance_line_id ON balance_entries (balance_line_id);
CREATE TABLE balance_rejections (
	id INTEGER NOT NULL, 
	rejection_id INTEGER NOT NULL, 
	account_id VARCHAR(64) NOT NULL, 
	message_type VARCHAR(40), 
	message_id VARCHAR(64), 
	line_id VARCHAR(100), 
	kind VARCHAR(16), 
	amount_minor BIGINT, 
	currency VARCHAR(3), 
	producer VARCHAR(100), 
	authenticated BOOLEAN NOT NULL, 
	author VARCHAR(200), 
	created_at DATETIME NOT NULL, 
	CONSTRAINT pk_balance_rejections PRIMARY KEY (id), 
	CONSTRAINT fk_balance_rejections_rejection_id_rejections FOREIGN KEY(rejection_id) REFERENCES rejections (id)
);
CREATE INDEX ix_balance_rejections_account_id ON balance_rejections (account_id);
CREATE INDEX ix_balance_rejections_rejection_id ON balance_rejections (rejection_id);
CREATE INDEX ix_balance_lines_producer_created_at ON balance_lines (producer, created_at);
CREATE TABLE "invoices" (
	id INTEGER NOT NULL, 
	number VARCHAR(40), 
	account_id VARCHAR(64) NOT NULL, 
	issue_date DATE NOT NULL, 
	currency VARCHAR(3) NOT NULL, 
	subtotal_minor BIGINT NOT NULL, 
	discount_minor BIGINT NOT NULL, 
	credit_minor BIGINT NOT NULL, 
	total_minor BIGINT NOT NULL, 
	bill_run_id INTEGER, 
	created_at DATETIME NOT NULL, 
	CONSTRAINT pk_invoices PRIMARY KEY (id), 
	CONSTRAINT fk_invoices_account_id_accounts FOREIGN KEY(account_id) REFERENCES accounts (id), 
	CONSTRAINT ck_invoices_total_minor CHECK (total_minor >= 0), 
	CONSTRAINT fk_invoices_bill_run_id_bill_runs FOREIGN KEY(bill_run_id) REFERENCES bill_runs (id), 
	CONSTRAINT uq_invoices_number UNIQUE (number)
);
CREATE INDEX ix_invoices_account_id ON invoices (account_id);
CREATE TABLE "outbox" (
	id INTEGER NOT NULL, 
	event_id VARCHAR(36) NOT NULL, 
	account_id VARCHAR(64) NOT NULL, 
	event_type VARCHAR(40) NOT NULL, 
	payload TEXT NOT NULL, 
	created_at DATETIME NOT NULL, 
	sent_at DATETIME, 
	invoice_id INTEGER, 
	CONSTRAINT pk_outbox PRIMARY KEY (id), 
	CONSTRAINT uq_outbox_event_id UNIQUE (event_id), 
	CONSTRAINT fk_outbox_invoice_id_invoices FOREIGN KEY(invoice_id) REFERENCES invoices (id)
);
CREATE INDEX ix_outbox_sent_at ON outbox (sent_at, id);
CREATE TABLE "subscriptions" (
	id INTEGER NOT NULL, 
	account_id VARCHAR(64) NOT NULL, 
	position SMALLINT NOT NULL, 
	"plan" VARCHAR(100) NOT NULL, 
	amount_minor BIGINT NOT NULL, 
	currency VARCHAR(3) NOT NULL, 
	interval VARCHAR(8) NOT NULL, 
	interval_count SMALLINT NOT NULL, 
	timing VARCHAR(8) NOT NULL, 
	proration VARCHAR(8) NOT NULL, 
	bill_day SMALLINT NOT NULL, 
	bill_month SMALLINT, 
	bill_weekday SMALLINT, 
	start_date DATE NOT NULL, 
	billed_until DATE, 
	next_bill_date DATE, 
	"key" VARCHAR(100) NOT NULL, 
	has_changes BOOLEAN NOT NULL, 
	recheck_from DATE, 
	settle_on DATE, 
	CONSTRAINT pk_subscriptions PRIMARY KEY (id), 
	CONSTRAINT ck_subscriptions_bill_month CHECK (bill_month IS NULL OR bill_month BETWEEN 1 AND 12), 
	CONSTRAINT ck_subscriptions_bill_weekday CHECK (bill_weekday IS NULL OR bill_weekday BETWEEN 1 AND 7), 
	CONSTRAINT ck_subscriptions_bill_day CHECK (bill_day BETWEEN 1 AND 31), 
	CONSTRAINT ck_subscriptions_interval CHECK (interval IN ('month', 'year', 'week')), 
	CONSTRAINT ck_subscriptions_proration CHECK (proration IN ('daily', 'full', 'none')), 
	CONSTRAINT ck_subscriptions_amount_minor CHECK (amount_minor >= 0), 
	CONSTRAINT ck_subscriptions_interval_count CHECK (interval_count BETWEEN 1 AND 120), 
	CONSTRAINT ck_subscriptions_timing CHECK (timing IN ('advance', 'arrears')), 
	CONSTRAINT uq_subscriptions_account_id_position UNIQUE (account_id, position), 
	CONSTRAINT fk_subscriptions_account_id_accounts FOREIGN KEY(account_id) REFERENCES accounts (id), 
	CONSTRAINT uq_subscriptions_account_id_key UNIQUE (account_id, "key")
);
CREATE INDEX ix_subscriptions_next_bill_date ON subscriptions (next_bill_date, account_id);
CREATE TABLE subscription_changes (
	id INTEGER NOT NULL, 
	subscription_id INTEGER NOT NULL, 
	account_id VARCHAR(64) NOT NULL, 
	change_id VARCHAR(100) NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	effective DATE NOT NULL, 
	until DATE, 
	"plan" VARCHAR(100), 
	amount_minor BIGINT, 
	bill_day SMALLINT, 
	message_type VARCHAR(40) NOT NULL, 
	message_id VARCHAR(64) NOT NULL, 
	producer VARCHAR(64) NOT NULL, 
	author VARCHAR(200) NOT NULL, 
	reason VARCHAR(500) NOT NULL, 
	created_at DATETIME NOT NULL, 
	CONSTRAINT pk_subscription_changes PRIMARY KEY (id), 
	CONSTRAINT ck_subscription_changes_kind CHECK (kind IN ('change', 'pause', 'resume', 'cancel', 'bill_day')), 
	CONSTRAINT fk_subscription_changes_subscription_id_subscriptions FOREIGN KEY(subscription_id) REFERENCES subscriptions (id)
);
CREATE INDEX ix_subscription_changes_subscription_id ON subscription_changes (subscription_id);
CREATE INDEX ix_subscription_changes_account_id ON subscription_changes (account_id);
CREATE TABLE "invoice_lines" (
	id INTEGER NOT NULL, 
	invoice_id INTEGER NOT NULL, 
	position SMALLINT NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	subscription_id INTEGER, 
	"plan" VARCHAR(100), 
	period_start DATE, 
	period_end DATE, 
	days SMALLINT, 
	period_days SMALLINT, 
	amount_minor BIGINT NOT NULL, 
	balance_line_id INTEGER, 
	billing_period_start DATE, 
	billing_period_end DATE, 
	rate_minor BIGINT, 
	CONSTRAINT pk_invoice_lines PRIMARY KEY (id), 
	CONSTRAINT uq_invoice_lines_invoice_id_position UNIQUE (invoice_id, position), 
	CONSTRAINT fk_invoice_lines_balance_line_id_balance_lines FOREIGN KEY(balance_line_id) REFERENCES balance_lines (id), 
	CONSTRAINT ck_invoice_lines_period CHECK (period_end >= period_start), 
	CONSTRAINT fk_invoice_lines_subscription_id_subscriptions FOREIGN KEY(subscription_id) REFERENCES subscriptions (id), 
	CONSTRAINT fk_invoice_lines_invoice_id_invoices FOREIGN KEY(invoice_id) REFERENCES invoices (id), 
	CONSTRAINT ck_invoice_lines_kind CHECK (kind IN ('recurring', 'proration', 'credit', 'gift', 'referral', 'discount', 'adjustment')), 
	CONSTRAINT ck_invoice_lines_refs CHECK ((kind IN ('recurring', 'proration') AND subscription_id IS NOT NULL AND period_start IS NOT NULL AND period_end IS NOT NULL AND balance_line_id IS NULL) OR (kind NOT IN ('recurring', 'proration') AND balance_line_id IS NOT NULL))
);
CREATE INDEX ix_invoice_lines_balance_line_id ON invoice_lines (balance_line_id);
CREATE UNIQUE INDEX ix_invoice_lines_recurring_range ON invoice_lines (subscription_id, period_start) WHERE kind = 'recurring';
CREATE TABLE webhook_deliveries (
	id INTEGER NOT NULL, 
	endpoint VARCHAR(64) NOT NULL, 
	event_id VARCHAR(36) NOT NULL, 
	event_type VARCHAR(40) NOT NULL, 
	account_id VARCHAR(64) NOT NULL, 
	body TEXT NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	attempts INTEGER NOT NULL, 
	next_attempt_at DATETIME NOT NULL, 
	retry_until DATETIME NOT NULL, 
	last_error TEXT, 
	created_at DATETIME NOT NULL, 
	delivered_at DATETIME, 
	replayed_at DATETIME, 
	CONSTRAINT pk_webhook_deliveries PRIMARY KEY (id), 
	CONSTRAINT uq_webhook_deliveries_endpoint_event_id UNIQUE (endpoint, event_id)
);
CREATE INDEX ix_webhook_deliveries_endpoint ON webhook_deliveries (endpoint, status, next_attempt_at);
CREATE INDEX ix_webhook_deliveries_account ON webhook_deliveries (endpoint, account_id, id);
CREATE TABLE balance_line_reversals (
	id INTEGER NOT NULL, 
	reversal_id VARCHAR(100) NOT NULL, 
	balance_line_id INTEGER NOT NULL, 
	account_id VARCHAR(64) NOT NULL, 
	amount_minor BIGINT NOT NULL, 
	producer VARCHAR(100) NOT NULL, 
	author VARCHAR(200) NOT NULL, 
	reason VARCHAR(500) NOT NULL, 
	message_id VARCHAR(64) NOT NULL, 
	created_at DATETIME NOT NULL, 
	CONSTRAINT pk_balance_line_reversals PRIMARY KEY (id), 
	CONSTRAINT ck_balance_line_reversals_amount_minor CHECK (amount_minor > 0), 
	CONSTRAINT fk_balance_line_reversals_balance_line_id_balance_lines FOREIGN KEY(balance_line_id) REFERENCES balance_lines (id), 
	CONSTRAINT fk_balance_line_reversals_account_id_accounts FOREIGN KEY(account_id) REFERENCES accounts (id), 
	CONSTRAINT uq_balance_line_reversals_reversal_id UNIQUE (reversal_id)
);
CREATE INDEX ix_balance_line_reversals_balance_line_id ON balance_line_reversals (balance_line_id);
CREATE INDEX ix_balance_line_reversals_account_id ON balance_line_reversals (account_id);
CREATE TABLE reversal_decisions (
	id INTEGER NOT NULL, 
	reversal_id VARCHAR(100) NOT NULL, 
	decision VARCHAR(16) NOT NULL, 
	identity VARCHAR(200) NOT NULL, 
	reason VARCHAR(500) NOT NULL, 
	applied_minor BIGINT, 
	created_at DATETIME NOT NULL, 
	CONSTRAINT pk_reversal_decisions PRIMARY KEY (id), 
	CONSTRAINT ck_reversal_decisions_decision CHECK (decision IN ('approved', 'declined')), 
	CONSTRAINT ck_reversal_decisions_applied_minor CHECK ((decision = 'approved' AND applied_minor >= 0) OR (decision = 'declined' AND applied_minor IS NULL)), 
	CONSTRAINT fk_reversal_decisions_reversal_id_balance_line_reversals FOREIGN KEY(reversal_id) REFERENCES balance_line_reversals (reversal_id), 
	CONSTRAINT uq_reversal_decisions_reversal_id UNIQUE (reversal_id)
);
INSERT INTO "alembic_version" VALUES('0009');
COMMIT;
