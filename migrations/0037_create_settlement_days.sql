-- The visible result of each settled day: its latest committed run (every column commented:
-- analysts read it directly).
CREATE VIEW IF NOT EXISTS settlement_days
(
    day Date COMMENT 'Settled day in SETTLEMENT_TZ',
    run_id UInt64 COMMENT 'The run whose lines are visible for the day (its latest committed run)',
    status LowCardinality(String) COMMENT 'provisional (may still be recomputed) or final (never changes)',
    rate_card_version UInt32 COMMENT 'Rate card the run priced with',
    pricing_mode LowCardinality(String) COMMENT 'graduated or volume',
    finished_at Nullable(DateTime64(3, 'UTC')) COMMENT 'When the run committed',
    video_lines UInt64 COMMENT 'Video-day lines of the run',
    ad_lines UInt64 COMMENT '(video, ad)-day lines of the run',
    views UInt64 COMMENT 'Counted views settled on the day',
    video_revenue_krw UInt64 COMMENT 'Sum of the truncated video lines, won',
    ad_impressions UInt64 COMMENT 'Counted ad impressions settled on the day',
    ad_revenue_krw UInt64 COMMENT 'Sum of the truncated ad lines, won',
    checksum String COMMENT 'Checksum of the run''s lines (equal checksums mean identical results)'
)
AS SELECT
    day,
    run_id,
    status,
    rate_card_version,
    pricing_mode,
    finished_at,
    video_lines,
    ad_lines,
    views,
    video_revenue_krw,
    ad_impressions,
    ad_revenue_krw,
    checksum
FROM settlement_runs FINAL
WHERE state = 'committed'
ORDER BY day ASC, run_id DESC
LIMIT 1 BY day
COMMENT 'One row per settled day: the committed run whose lines are visible, its status (provisional or final) and totals'
