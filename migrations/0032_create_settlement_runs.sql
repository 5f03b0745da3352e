-- One row per settlement run and state change; the row with the highest revision wins.
CREATE TABLE IF NOT EXISTS settlement_runs
(
    run_id UInt64 COMMENT 'Run id, increasing; settlement lines carry the id of the run that wrote them',
    day Date COMMENT 'Settled day in SETTLEMENT_TZ',
    state LowCardinality(String) COMMENT 'running (started, not committed: its lines are invisible), committed (its lines are the day''s result if it is the day''s latest committed run) or failed',
    status LowCardinality(String) COMMENT 'provisional (inside the lateness window, may be recomputed) or final (never changes)',
    revision UInt8 COMMENT 'Version of this row: 1 started, 2 committed or failed, 3 committed and folded into the cumulative tables (final runs)',
    trigger LowCardinality(String) COMMENT 'What started the run: cli, scheduler, http, cascade (recomputed because an earlier day changed) or test',
    rate_card_version UInt32 COMMENT 'Rate card the run priced with',
    pricing_mode LowCardinality(String) COMMENT 'graduated or volume, from the rate card',
    started_at DateTime64(3, 'UTC') COMMENT 'When the run started',
    finished_at Nullable(DateTime64(3, 'UTC')) COMMENT 'When the run committed or failed; NULL while running',
    video_lines UInt64 COMMENT 'Video-day lines written',
    ad_lines UInt64 COMMENT '(video, ad)-day lines written',
    views UInt64 COMMENT 'Counted views settled',
    video_revenue_krw UInt64 COMMENT 'Sum of the truncated video lines, won',
    ad_impressions UInt64 COMMENT 'Counted ad impressions settled',
    ad_revenue_krw UInt64 COMMENT 'Sum of the truncated ad lines, won',
    checksum String COMMENT 'Order-independent hash of every line written (all columns but run id, status and time): equal checksums mean identical results',
    error String COMMENT 'Why the run failed; empty otherwise'
)
ENGINE = ReplacingMergeTree(revision)
ORDER BY (day, run_id)
COMMENT 'Settlement runs: every run of every day, with its outcome (read with FINAL)'
